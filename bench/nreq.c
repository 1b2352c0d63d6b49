/*
 * nreq.c - send exactly N HTTP/1.1 keep-alive requests, one at a time, on a
 * single connection, and check each response. A deterministic load for
 * instruction counting (bench/callgrind.sh): the same bytes every run.
 *
 *   usage: nreq PORT N [PATH [EXPECTED_BODY]]     (connects to 127.0.0.1:PORT)
 *
 * Exits 0 only if all N responses arrived with status 200 and a
 * Content-Length body (equal to EXPECTED_BODY when given); prints one
 * summary line.
 * Build: cc -O2 -o nreq nreq.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 65536

static char rbuf[RBUF];
static size_t rlen;
static const char *expected;     /* expected body, or NULL */
static size_t expected_len;

static void die(const char *what) {
    fprintf(stderr, "nreq: %s: %s\n", what, errno ? strerror(errno) : "protocol error");
    exit(1);
}

static void fill(int fd) {
    if (rlen == RBUF) { errno = 0; die("response head too large"); }
    ssize_t n;
    do { n = recv(fd, rbuf + rlen, RBUF - rlen, 0); } while (n < 0 && errno == EINTR);
    if (n == 0) { errno = 0; die("connection closed by peer"); }
    if (n < 0) die("recv");
    rlen += (size_t)n;
}

/* Read one response; returns its status code. */
static int read_response(int fd) {
    char *end;
    while ((end = memmem(rbuf, rlen, "\r\n\r\n", 4)) == NULL) fill(fd);
    size_t head = (size_t)(end - rbuf) + 4;
    int status = 0;
    if (rlen < 12 || sscanf(rbuf, "HTTP/1.%*d %d", &status) != 1) { errno = 0; die("bad status line"); }
    long clen = -1;
    for (char *p = memchr(rbuf, '\n', head); p != NULL && p < rbuf + head; p = memchr(p, '\n', (size_t)(rbuf + head - p))) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0) clen = strtol(p + 15, NULL, 10);
        if (strncasecmp(p, "transfer-encoding:", 18) == 0) { errno = 0; die("chunked responses not supported"); }
    }
    if (clen < 0) { errno = 0; die("response without Content-Length"); }
    size_t total = head + (size_t)clen;
    if (total > RBUF) { errno = 0; die("response too large"); }
    while (rlen < total) fill(fd);
    if (expected != NULL && ((size_t)clen != expected_len || memcmp(rbuf + head, expected, expected_len) != 0))
        status = -1;    /* counted as bad */
    memmove(rbuf, rbuf + total, rlen - total);
    rlen -= total;
    return status;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT N [PATH [EXPECTED_BODY]]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[2]);
    const char *path = argc > 3 ? argv[3] : "/";
    if (argc > 4) { expected = argv[4]; expected_len = strlen(expected); }
    char req[1024];
    int reqlen = snprintf(req, sizeof req,
                          "GET %s HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: switchyard-nreq\r\n"
                          "Accept: */*\r\n\r\n", path);
    if (reqlen <= 0 || (size_t)reqlen >= sizeof req) { errno = 0; die("path too long"); }

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long bad = 0;
    for (long i = 0; i < n; i++) {
        ssize_t off = 0;
        while (off < reqlen) {
            ssize_t w = send(fd, req + off, (size_t)(reqlen - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) die("send");
            off += w;
        }
        if (read_response(fd) != 200) bad++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("nreq: %ld requests, %ld not 200 with the expected body, %.3f s, %.0f req/s\n", n, bad, secs, secs > 0 ? (double)n / secs : 0.0);
    return bad == 0 ? 0 : 1;
}

/*
 * wsecho.c - the upstream of bench/websocket.sh: a single-threaded epoll
 * WebSocket echo server (RFC 6455, server side).
 *
 * It answers any GET that carries a Sec-WebSocket-Key with 101 Switching
 * Protocols, then echoes every data frame back as an unmasked frame with the
 * same first byte (FIN, opcode) and length, streaming: the header goes out as
 * soon as it is read and the payload follows as it arrives, unmasked in
 * place, so a 1 MiB message never needs a 1 MiB buffer. Ping gets a pong,
 * close gets a close and the connection ends. Bounded memory: when a peer
 * does not take the echo, the server stops reading from it.
 *
 *   usage: wsecho PORT        (listens on 127.0.0.1:PORT; stops on SIGTERM/SIGINT)
 *
 * Build: cc -O2 -o wsecho wsecho.c   (SHA-1 is in ws.h: no libraries)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ws.h"

#define IN_CAP (64 * 1024)
#define OUT_CAP (64 * 1024 + 2 * WS_MAX_HEADER)
#define MAX_HEAD 8192
#define MAX_EVENTS 256

enum state { HANDSHAKE, OPEN, CLOSING };

struct conn {
    int fd;
    enum state state;
    int dead;
    unsigned interest;
    unsigned char *in, *out;
    size_t in_off, in_len;       /* unread input is in[in_off, in_len) */
    size_t out_off, out_len;     /* unsent output is out[out_off, out_len) */
    uint64_t remaining, pos;     /* payload of the data frame being echoed */
    unsigned char key[4];        /* its masking key */
    struct conn *next_dead;
};

static int ep;
static volatile sig_atomic_t stop;
static struct conn *graveyard;
static unsigned long long n_accepted, n_upgraded, n_frames, n_bytes;

static void on_signal(int sig) { (void)sig; stop = 1; }

static void close_conn(struct conn *c) {
    if (c->dead) return;
    c->dead = 1;
    close(c->fd);
    c->next_dead = graveyard;
    graveyard = c;
}

static void append(struct conn *c, const void *p, size_t n) {
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static size_t out_space(const struct conn *c) { return OUT_CAP - c->out_len; }

/* The opening handshake (RFC 6455 section 4.2). Returns bytes consumed, 0 if
 * the head is incomplete, -1 to close. */
static long handshake(struct conn *c) {
    const char *head = (const char *)c->in + c->in_off;
    size_t avail = c->in_len - c->in_off;
    const char *end = memmem(head, avail, "\r\n\r\n", 4);
    if (end == NULL) return avail >= MAX_HEAD ? -1 : 0;
    size_t head_len = (size_t)(end - head) + 4, klen;
    const char *key = ws_header_value(head, head_len, "Sec-WebSocket-Key", &klen);
    if (key == NULL || klen == 0 || klen > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        append(c, bad, sizeof bad - 1);
        c->state = CLOSING;
        return (long)head_len;
    }
    char accept[29], resp[160];
    ws_accept(key, klen, accept);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    append(c, resp, (size_t)n);
    c->state = OPEN;
    n_upgraded++;
    return (long)head_len;
}

/* Turns as much input into output as the output space allows. Returns -1 to
 * close the connection. */
static int process(struct conn *c) {
    if (c->state == HANDSHAKE) {
        long used = handshake(c);
        if (used < 0) return -1;
        c->in_off += (size_t)used;
    }
    while (c->state == OPEN) {
        unsigned char *p = c->in + c->in_off;
        size_t avail = c->in_len - c->in_off;
        if (c->remaining > 0) {
            size_t n = avail < out_space(c) ? avail : out_space(c);
            if (n > c->remaining) n = (size_t)c->remaining;
            if (n == 0) break;
            ws_mask(c->out + c->out_len, p, n, c->key, c->pos);
            c->out_len += n;
            c->in_off += n;
            c->pos += n;
            c->remaining -= n;
            n_bytes += n;
            continue;
        }
        if (avail < 2) break;
        /* RFC 6455 section 5.1: a server closes on an unmasked client frame. */
        if (!(p[1] & 0x80)) return -1;
        size_t base = ws_header_base(p[1]);
        if (avail < base + 4) break;
        uint64_t len = ws_payload_len(p);
        unsigned opcode = p[0] & 0x0F;
        const unsigned char *key = p + base;
        if (opcode >= WS_OP_CLOSE) {
            /* Section 5.5: control frames are at most 125 bytes, never fragmented. */
            if (len > 125 || !(p[0] & WS_FIN)) return -1;
            if (avail < base + 4 + len) break;
            if (out_space(c) < 2 + len) break;
            if (opcode == WS_OP_PING || opcode == WS_OP_CLOSE) {
                unsigned char hdr[WS_MAX_HEADER];
                append(c, hdr, ws_frame_header(hdr, WS_FIN | (opcode == WS_OP_PING ? WS_OP_PONG : WS_OP_CLOSE), len, NULL));
                ws_mask(c->out + c->out_len, p + base + 4, (size_t)len, key, 0);
                c->out_len += (size_t)len;
                if (opcode == WS_OP_CLOSE) c->state = CLOSING;
            }
            c->in_off += base + 4 + (size_t)len;
            continue;
        }
        if (out_space(c) < WS_MAX_HEADER) break;
        unsigned char hdr[WS_MAX_HEADER];
        append(c, hdr, ws_frame_header(hdr, p[0], len, NULL));
        memcpy(c->key, key, 4);
        c->remaining = len;
        c->pos = 0;
        c->in_off += base + 4;
        n_frames++;
    }
    if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
    return 0;
}

/* Sends pending output. Returns -1 on a fatal error. */
static int flush(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    } else if (c->out_off > OUT_CAP / 2) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return 0;
}

/* Readable while there is room for input (and not closing), writable while
 * output is pending. */
static void update_interest(struct conn *c) {
    if (c->dead) return;
    if (c->state == CLOSING && c->out_len == 0) { close_conn(c); return; }
    unsigned want = 0;
    if (c->state != CLOSING && c->in_len < IN_CAP) want |= EPOLLIN;
    if (c->out_len > 0) want |= EPOLLOUT;
    if (want == c->interest) return;
    struct epoll_event ev = { .events = want, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) { close_conn(c); return; }
    c->interest = want;
}

static void on_readable(struct conn *c) {
    if (c->in_off > 0 && IN_CAP - c->in_len < IN_CAP / 4) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len == IN_CAP) return;
    ssize_t n;
    do {
        n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) { close_conn(c); return; }
    if (n < 0) return;
    c->in_len += (size_t)n;
    if (process(c) < 0 || flush(c) < 0) { close_conn(c); return; }
}

static void on_writable(struct conn *c) {
    if (flush(c) < 0) { close_conn(c); return; }
    /* Room in the output may let buffered input through. */
    if (process(c) < 0 || flush(c) < 0) close_conn(c);
}

static void accept_all(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) perror("wsecho: accept4");
            return;
        }
        ws_nodelay(fd);
        struct conn *c = calloc(1, sizeof *c);
        /* Untouched pages of the buffers cost no memory: idle connections stay cheap. */
        if (c != NULL) { c->in = malloc(IN_CAP); c->out = malloc(OUT_CAP); }
        if (c == NULL || c->in == NULL || c->out == NULL) {
            if (c) { free(c->in); free(c->out); free(c); }
            close(fd);
            continue;
        }
        c->fd = fd;
        c->interest = EPOLLIN;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd); free(c->in); free(c->out); free(c);
            continue;
        }
        n_accepted++;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char *endp;
    long port = strtol(argv[1], &endp, 10);
    if (*argv[1] == '\0' || *endp != '\0' || port <= 0 || port > 65535) {
        fprintf(stderr, "wsecho: bad port '%s'\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) { perror("wsecho: socket"); return 1; }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in la;
    memset(&la, 0, sizeof la);
    la.sin_family = AF_INET;
    la.sin_port = htons((uint16_t)port);
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) { perror("wsecho: bind"); return 1; }
    if (listen(lfd, 4096) < 0) { perror("wsecho: listen"); return 1; }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("wsecho: epoll_create1"); return 1; }
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) { perror("wsecho: epoll_ctl"); return 1; }

    struct epoll_event events[MAX_EVENTS];
    while (!stop) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("wsecho: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            unsigned ev = events[i].events;
            if (c == NULL) { accept_all(lfd); continue; }
            if (c->dead) continue;
            if (ev & EPOLLOUT) on_writable(c);
            if (!c->dead && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
            update_interest(c);
        }
        while (graveyard != NULL) {
            struct conn *next = graveyard->next_dead;
            free(graveyard->in);
            free(graveyard->out);
            free(graveyard);
            graveyard = next;
        }
    }
    fprintf(stderr, "wsecho: %llu accepted, %llu upgraded, %llu data frames, %llu payload bytes echoed\n",
            n_accepted, n_upgraded, n_frames, n_bytes);
    return 0;
}

/*
 * wsload.c - the WebSocket client of bench/websocket.sh: single-threaded,
 * epoll, RFC 6455 client side (masked frames with a fresh masking key per
 * frame, Sec-WebSocket-Accept checked).
 *
 *   wsload probe PORT                 one connection: handshake + one 32-byte echo;
 *                                     exit 0, or print why not and exit 1
 *   wsload idle PORT -c N -r FILE     open N connections (handshake + one echo each,
 *                                     at most -k at a time), write "ok=.. failed=.." to
 *                                     FILE, then hold them idle; on SIGUSR1 send one more
 *                                     echo on each, print RESULT (how many answered), exit
 *   wsload run PORT -c N -s SIZE -d SECONDS -w WARMUP [-t PIDS] [-u PIDS]
 *                                     N connections, each a ping-pong loop: send one
 *                                     binary message of SIZE bytes, wait for its whole
 *                                     echo, send the next. Messages completed during the
 *                                     measured window (after WARMUP) are counted and their
 *                                     round-trip times recorded; CPU of the processes in
 *                                     -t (the proxy) and -u (the upstream) is read from
 *                                     /proc/<pid>/stat at the window's edges.
 *
 * Output: one line "RESULT key=value ..." on stdout; "ERROR ..." lines on
 * stderr. Echoed payloads are compared byte for byte with what was sent.
 *
 * Build: cc -O2 -o wsload wsload.c   (SHA-1 is in ws.h: no libraries)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ws.h"

#define MAX_EVENTS 512
#define RBUF_SIZE (256 * 1024)
#define MAX_RESP_HEAD 4096
#define MAX_TRIES 3
#define MAX_PIDS 64

enum mode { PROBE, IDLE, RUN };
enum cstate { FREE, CONNECTING, HANDSHAKE, OPEN, FAILED };

struct cl {
    int fd;
    enum cstate state;
    int tries;
    unsigned interest;
    char key[25], accept[29];
    char *head;                     /* handshake response so far */
    size_t head_len;
    unsigned char *tx;              /* what is being sent: request, then frames */
    size_t tx_len, tx_off;
    unsigned char hdr[WS_MAX_HEADER];
    size_t hdr_len;                 /* bytes of the incoming frame header so far */
    int in_payload, skip;           /* reading a payload; it is a control frame's */
    uint64_t rx_len, rx_got;
    int waiting;                    /* a message is out and its echo incomplete */
    uint64_t t_start;
    int idle_done;                  /* idle mode: first echo done */
    int settled;                    /* counted in `settled` (open, or failed for good) */
};

static enum mode mode;
static struct sockaddr_in addr;
static int ep, nconns = 1, concurrency = 200;
static size_t msg_size = 32;
static double duration_s = 5, warmup_s = 1;
static const char *ready_file, *path = "/";
static struct cl *conns;
static unsigned char *payload, *rbuf;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static volatile sig_atomic_t stop, verify_req;
static char first_error[256];
static unsigned long errors;
static int pids_proxy[MAX_PIDS], n_proxy, pids_up[MAX_PIDS], n_up;

/* Measurement state (run mode) */
static int measuring, sending = 1;
static uint64_t win_start, win_end, win_bytes, win_msgs;
static uint64_t *lat;
static size_t lat_n, lat_cap;
static int open_now, settled, inflight, echoed;

/* A connection has reached its end state for open_all(): counted once. */
static void settle(struct cl *c) {
    if (c->settled) return;
    c->settled = 1;
    settled++;
}

static void on_signal(int sig) {
    if (sig == SIGUSR1) verify_req = 1; else stop = 1;
}

static uint64_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static void fail(struct cl *c, const char *fmt, ...) {
    errors++;
    if (first_error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(first_error, sizeof first_error, fmt, ap);
        va_end(ap);
    }
    (void)c;
}

static void set_interest(struct cl *c, unsigned want) {
    if (want == c->interest) return;
    struct epoll_event ev = { .events = want, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->interest = want;
}

static void start_conn(struct cl *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { fail(c, "socket: %s", strerror(errno)); c->state = FAILED; settle(c); return; }
    ws_nodelay(c->fd);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        fail(c, "connect: %s", strerror(errno));
        close(c->fd);
        c->state = FAILED;
        settle(c);
        return;
    }
    c->state = CONNECTING;
    c->interest = EPOLLOUT;
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    inflight++;
    /* The request is ready before the connect completes. */
    unsigned char k[16];
    for (int i = 0; i < 16; i += 8) { uint64_t r = rnd(); memcpy(k + i, &r, 8); }
    ws_base64(k, 16, c->key);
    ws_accept(c->key, 24, c->accept);
    c->tx_len = (size_t)snprintf((char *)c->tx, 512,
                                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                                 "User-Agent: switchyard-wsload\r\n\r\n",
                                 path, ntohs(addr.sin_port), c->key);
    c->tx_off = 0;
    c->head_len = 0;
    c->hdr_len = 0;
    c->in_payload = 0;
    c->waiting = 0;
}

/* A connection failed before it was open: retry it a few times (a proxy's
 * accept queue can overflow while thousands connect), else give up. */
static void drop_conn(struct cl *c, int retry) {
    int was_open = c->state == OPEN;
    close(c->fd);
    c->fd = -1;
    free(c->head);
    c->head = NULL;
    if (c->state == CONNECTING || c->state == HANDSHAKE || (c->state == OPEN && !c->idle_done && mode != RUN)) inflight--;
    if (was_open) open_now--;
    if (retry && !was_open && ++c->tries < MAX_TRIES) { c->state = FREE; return; }
    c->state = FAILED;
    settle(c);
}

/* Queues one message: a binary frame with a fresh masking key (RFC 6455 5.3). */
static void send_message(struct cl *c) {
    unsigned char key[4];
    uint32_t r = (uint32_t)rnd();
    memcpy(key, &r, 4);
    size_t h = ws_frame_header(c->tx, WS_FIN | WS_OP_BINARY, msg_size, key);
    ws_mask(c->tx + h, payload, msg_size, key, 0);
    c->tx_len = h + msg_size;
    c->tx_off = 0;
    c->waiting = 1;
    c->t_start = ws_now_ns();
}

static int flush_tx(struct cl *c) {
    while (c->tx_off < c->tx_len) {
        ssize_t n = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
        if (n > 0) c->tx_off += (size_t)n;
        else if (n < 0 && errno == EINTR) continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        else { fail(c, "send: %s", strerror(errno)); return -1; }
    }
    return 0;
}

static void update(struct cl *c) {
    if (c->fd < 0) return;
    unsigned want = EPOLLIN;
    if (c->tx_off < c->tx_len || c->state == CONNECTING) want |= EPOLLOUT;
    if (c->state == CONNECTING) want = EPOLLOUT;
    set_interest(c, want);
}

static void record(uint64_t ns) {
    if (lat_n == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 65536;
        lat = realloc(lat, lat_cap * sizeof *lat);
        if (lat == NULL) { perror("wsload: realloc"); exit(1); }
    }
    lat[lat_n++] = ns;
}

/* The whole echo of the outstanding message has arrived. */
static void on_echo(struct cl *c) {
    uint64_t now = ws_now_ns();
    c->waiting = 0;
    echoed++;
    if (mode == RUN) {
        if (measuring && now >= win_start && now <= win_end) {
            win_msgs++;
            record(now - c->t_start);
        }
        if (sending) send_message(c);
    } else if (!c->idle_done) {
        c->idle_done = 1;
        inflight--;
        settle(c);
    }
}

/* Handshake response bytes. Returns bytes consumed, or -1 after a failure. */
static long feed_head(struct cl *c, const unsigned char *p, size_t n) {
    size_t take = n;
    if (c->head_len + take > MAX_RESP_HEAD) take = MAX_RESP_HEAD - c->head_len;
    if (c->head == NULL) c->head = malloc(MAX_RESP_HEAD);
    memcpy(c->head + c->head_len, p, take);
    size_t before = c->head_len;
    c->head_len += take;
    char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->head_len == MAX_RESP_HEAD) { fail(c, "handshake response head too long"); return -1; }
        return (long)take;
    }
    size_t hl = (size_t)(end - c->head) + 4;
    if (c->head_len < 12 || memcmp(c->head, "HTTP/1.1 101", 12) != 0) {
        char *eol = memchr(c->head, '\r', c->head_len);
        fail(c, "handshake answered \"%.*s\"", (int)((eol ? eol : c->head + c->head_len) - c->head), c->head);
        return -1;
    }
    size_t vlen;
    const char *v = ws_header_value(c->head, hl, "Sec-WebSocket-Accept", &vlen);
    if (v == NULL || vlen != 28 || memcmp(v, c->accept, 28) != 0) {
        fail(c, "bad or missing Sec-WebSocket-Accept in the 101");
        return -1;
    }
    free(c->head);
    c->head = NULL;
    c->state = OPEN;
    open_now++;
    if (mode != RUN) {
        send_message(c);
    } else {
        inflight--;
        settle(c);
    }
    return (long)(hl - before);
}

/* Frame bytes from the server. Returns -1 after a failure. */
static int feed_frames(struct cl *c, const unsigned char *p, size_t n) {
    while (n > 0) {
        if (!c->in_payload) {
            size_t need = c->hdr_len < 2 ? 2 : ws_header_base(c->hdr[1]);
            size_t k = need - c->hdr_len < n ? need - c->hdr_len : n;
            memcpy(c->hdr + c->hdr_len, p, k);
            c->hdr_len += k; p += k; n -= k;
            if (c->hdr_len < need || (need == 2 && ws_header_base(c->hdr[1]) > 2)) continue;
            if (c->hdr[1] & 0x80) { fail(c, "masked frame from the server"); return -1; }
            unsigned op = c->hdr[0] & 0x0F;
            c->rx_len = ws_payload_len(c->hdr);
            c->rx_got = 0;
            c->hdr_len = 0;
            c->in_payload = 1;
            c->skip = op >= WS_OP_CLOSE;
            if (op == WS_OP_CLOSE) { fail(c, "close frame from the server"); return -1; }
            if (!c->skip) {
                if (!c->waiting) { fail(c, "unexpected data frame"); return -1; }
                if (c->hdr[0] != (WS_FIN | WS_OP_BINARY) || c->rx_len != msg_size) {
                    fail(c, "echo frame 0x%02x of %llu bytes, sent 0x%02x of %zu", c->hdr[0],
                         (unsigned long long)c->rx_len, WS_FIN | WS_OP_BINARY, msg_size);
                    return -1;
                }
            }
        }
        size_t k = c->rx_len - c->rx_got < n ? (size_t)(c->rx_len - c->rx_got) : n;
        if (!c->skip) {
            if (memcmp(p, payload + c->rx_got, k) != 0) { fail(c, "echoed payload differs from the message"); return -1; }
            if (measuring) {
                uint64_t now = ws_now_ns();
                if (now >= win_start && now <= win_end) win_bytes += k;
            }
        }
        c->rx_got += k; p += k; n -= k;
        if (c->rx_got == c->rx_len) {
            c->in_payload = 0;
            if (!c->skip) on_echo(c);
        }
    }
    return 0;
}

static void on_event(struct cl *c, unsigned ev) {
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            if (c->tries + 1 >= MAX_TRIES) fail(c, "connect: %s", strerror(err));
            drop_conn(c, 1);
            return;
        }
        c->state = HANDSHAKE;
    }
    if ((ev & EPOLLOUT) || c->tx_off < c->tx_len) {
        if (flush_tx(c) < 0) { drop_conn(c, 0); return; }
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            ssize_t n = recv(c->fd, rbuf, RBUF_SIZE, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n <= 0) {
                int retry = c->state == HANDSHAKE;
                if (!retry || c->tries + 1 >= MAX_TRIES)
                    fail(c, n == 0 ? "connection closed by the peer (%s)" : "recv: %s",
                         n == 0 ? (c->state == OPEN ? "open" : "during the handshake") : strerror(errno));
                drop_conn(c, retry);
                return;
            }
            size_t off = 0;
            if (c->state == HANDSHAKE) {
                long used = feed_head(c, rbuf, (size_t)n);
                if (used < 0) { drop_conn(c, 0); return; }
                off = (size_t)used;
            }
            if (off < (size_t)n && feed_frames(c, rbuf + off, (size_t)n - off) < 0) { drop_conn(c, 0); return; }
            if (n < RBUF_SIZE) break;
        }
        if (c->tx_off < c->tx_len && flush_tx(c) < 0) { drop_conn(c, 0); return; }
    }
    update(c);
}

/* Starts connections until `concurrency` are in progress. */
static void top_up(void) {
    for (int i = 0; i < nconns && inflight < concurrency; i++)
        if (conns[i].state == FREE) start_conn(&conns[i]);
}

static void loop_once(int timeout_ms) {
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(ep, events, MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) on_event(events[i].data.ptr, events[i].events);
}

/* utime + stime of the listed processes, in clock ticks. */
static long long proc_ticks(const int *pids, int n) {
    long long t = 0;
    for (int i = 0; i < n; i++) {
        char fn[64], buf[1024];
        snprintf(fn, sizeof fn, "/proc/%d/stat", pids[i]);
        FILE *f = fopen(fn, "r");
        if (f == NULL) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strrchr(buf, ')');
        if (p == NULL) continue;
        unsigned long long ut = 0, st = 0;
        /* fields 3.. after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) t += (long long)(ut + st);
    }
    return t;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Machine-wide: total and idle (+iowait) jiffies, and steal, from /proc/stat. */
static void machine_ticks(unsigned long long *total, unsigned long long *idle, unsigned long long *steal) {
    unsigned long long v[10] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    *total = *idle = *steal = 0;
    if (f == NULL) return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 8; i++) *total += v[i];
        *idle = v[3] + v[4];
        *steal = v[7];
    }
    fclose(f);
}

static int parse_pids(const char *s, int *out) {
    int n = 0;
    while (*s && n < MAX_PIDS) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s) break;
        out[n++] = (int)v;
        s = *e ? e + 1 : e;
    }
    return n;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(double q) {
    if (lat_n == 0) return 0;
    size_t i = (size_t)(q * (double)lat_n + 0.999999);
    if (i < 1) i = 1;
    if (i > lat_n) i = lat_n;
    return (double)lat[i - 1] / 1e3;
}

/* Opens every connection (and, in probe/idle mode, waits for its first echo). */
static void open_all(double timeout_s) {
    uint64_t deadline = ws_now_ns() + (uint64_t)(timeout_s * 1e9);
    while (!stop && settled < nconns && ws_now_ns() < deadline) {
        top_up();
        loop_once(50);
    }
}

static int run_mode(void) {
    uint64_t t0 = ws_now_ns();
    open_all(60);
    double open_s = (double)(ws_now_ns() - t0) / 1e9;
    if (open_now == 0) {
        fprintf(stderr, "ERROR no connection opened: %s\n", first_error);
        return 1;
    }
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == OPEN) { send_message(&conns[i]); flush_tx(&conns[i]); update(&conns[i]); }
    uint64_t start = ws_now_ns();
    win_start = start + (uint64_t)(warmup_s * 1e9);
    win_end = win_start + (uint64_t)(duration_s * 1e9);
    measuring = 1;
    while (!stop && ws_now_ns() < win_start) loop_once(10);
    long long p0 = proc_ticks(pids_proxy, n_proxy), u0 = proc_ticks(pids_up, n_up);
    double c0 = self_cpu_s();
    unsigned long long mt0, mi0, ms0, mt1, mi1, ms1;
    machine_ticks(&mt0, &mi0, &ms0);
    for (;;) {
        uint64_t now = ws_now_ns();
        if (stop || now >= win_end) break;
        int ms = (int)((win_end - now) / 1000000) + 1;
        loop_once(ms < 10 ? ms : 10);
    }
    long long p1 = proc_ticks(pids_proxy, n_proxy), u1 = proc_ticks(pids_up, n_up);
    double c1 = self_cpu_s();
    machine_ticks(&mt1, &mi1, &ms1);
    sending = 0;
    /* Let outstanding echoes finish (uncounted) so every close is clean. */
    uint64_t drain_end = ws_now_ns() + 2000000000ull;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < nconns; i++) busy += conns[i].state == OPEN && conns[i].waiting;
        if (busy == 0 || ws_now_ns() >= drain_end) break;
        loop_once(10);
    }
    double win = (double)(win_end - win_start) / 1e9;
    long hz = sysconf(_SC_CLK_TCK);
    qsort(lat, lat_n, sizeof *lat, cmp_u64);
    double mean = 0;
    for (size_t i = 0; i < lat_n; i++) mean += (double)lat[i];
    mean = lat_n ? mean / (double)lat_n / 1e3 : 0;
    unsigned long long mt = mt1 - mt0;
    printf("RESULT conns=%d size=%zu opened=%d open_s=%.3f window_s=%.3f messages=%llu bytes=%llu msgs_per_s=%.1f "
           "mib_per_s=%.2f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%lu "
           "proxy_cpu_s=%.2f upstream_cpu_s=%.2f client_cpu_s=%.2f machine_busy_pct=%.1f steal_pct=%.1f\n",
           nconns, msg_size, open_now, open_s, win, (unsigned long long)win_msgs, (unsigned long long)win_bytes,
           win_msgs / win, win_bytes / win / 1048576.0, pct_us(0.50), pct_us(0.90), pct_us(0.99), pct_us(0.999),
           pct_us(1.0), mean, errors, (double)(p1 - p0) / hz, (double)(u1 - u0) / hz, c1 - c0,
           mt ? 100.0 * (double)(mt - (mi1 - mi0)) / (double)mt : 0, mt ? 100.0 * (double)(ms1 - ms0) / (double)mt : 0);
    if (first_error[0]) fprintf(stderr, "ERROR %s\n", first_error);
    return 0;
}

static int idle_mode(void) {
    uint64_t t0 = ws_now_ns();
    open_all(mode == PROBE ? 5 : 120);
    double open_s = (double)(ws_now_ns() - t0) / 1e9;
    int ok = 0;
    for (int i = 0; i < nconns; i++) ok += conns[i].state == OPEN && conns[i].idle_done;
    if (mode == PROBE) {
        if (ok == 1) return 0;
        printf("%s\n", first_error[0] ? first_error : "no answer within 5 s");
        return 1;
    }
    if (ready_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "ok=%d failed=%d open_s=%.3f\n", ok, nconns - ok, open_s) < 0 || fclose(f) != 0 ||
            rename(tmp, ready_file) != 0) {
            perror("wsload: ready file");
            return 1;
        }
    }
    /* Idle: nothing to send; watch for closes until asked to verify. */
    while (!stop && !verify_req) loop_once(100);
    if (stop) return 0;
    int held = 0;
    echoed = 0;
    for (int i = 0; i < nconns; i++) {
        struct cl *c = &conns[i];
        if (c->state != OPEN) continue;
        held++;
        send_message(c);
        if (flush_tx(c) < 0) { drop_conn(c, 0); continue; }
        update(c);
    }
    uint64_t deadline = ws_now_ns() + 20000000000ull;
    while (!stop && echoed < held && ws_now_ns() < deadline) loop_once(50);
    printf("RESULT ok=%d failed=%d open_s=%.3f held=%d echoed=%d errors=%lu\n", ok, nconns - ok, open_s, held, echoed,
           errors);
    if (first_error[0]) fprintf(stderr, "ERROR %s\n", first_error);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: wsload probe PORT\n"
            "       wsload idle PORT -c CONNS -r READY_FILE [-k CONCURRENCY]\n"
            "       wsload run PORT -c CONNS -s SIZE -d SECONDS -w WARMUP [-t PID,..] [-u PID,..]\n"
            "options: -P PATH (request target, default /)\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) usage();
    if (strcmp(argv[1], "probe") == 0) mode = PROBE;
    else if (strcmp(argv[1], "idle") == 0) mode = IDLE;
    else if (strcmp(argv[1], "run") == 0) mode = RUN;
    else usage();
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535) usage();
    int opt;
    optind = 3;
    while ((opt = getopt(argc, argv, "c:s:d:w:r:k:t:u:P:")) != -1) {
        switch (opt) {
        case 'c': nconns = atoi(optarg); break;
        case 's': msg_size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'd': duration_s = atof(optarg); break;
        case 'w': warmup_s = atof(optarg); break;
        case 'r': ready_file = optarg; break;
        case 'k': concurrency = atoi(optarg); break;
        case 't': n_proxy = parse_pids(optarg, pids_proxy); break;
        case 'u': n_up = parse_pids(optarg, pids_up); break;
        case 'P': path = optarg; break;
        default: usage();
        }
    }
    if (mode == PROBE) { nconns = 1; msg_size = 32; }
    if (nconns < 1 || msg_size < 1 || duration_s <= 0 || warmup_s < 0 || concurrency < 1) usage();

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rng ^= (uint64_t)getpid() << 32 ^ ws_now_ns();

    payload = malloc(msg_size);
    rbuf = malloc(RBUF_SIZE);
    conns = calloc((size_t)nconns, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (payload == NULL || rbuf == NULL || conns == NULL || ep < 0) { perror("wsload: setup"); return 1; }
    for (size_t i = 0; i < msg_size; i++) payload[i] = (unsigned char)rnd();
    size_t txcap = msg_size + WS_MAX_HEADER > 512 ? msg_size + WS_MAX_HEADER : 512;
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].tx = malloc(txcap);
        if (conns[i].tx == NULL) { perror("wsload: malloc"); return 1; }
    }
    return mode == RUN ? run_mode() : idle_mode();
}

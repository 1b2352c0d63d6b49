/*
 * tlshs.c - the TLS handshake client of bench/tls.sh: single-threaded, epoll,
 * N non-blocking connections, each one a loop of
 *     connect + TLS handshake + "GET / HTTP/1.1" (Connection: close) + whole
 *     response read (status 200, body by Content-Length) + close
 * so every request pays one handshake.
 *
 *   tlshs probe PORT [-n SNI] [-V 1.2|1.3]
 *       one full handshake + GET, then one more connection offering the ticket
 *       it got; prints "PROBE ok=1 proto=.. cipher=.. group=.. alpn=..
 *       tickets=.. resumed=0|1" and exits 0 when the first GET returned 200
 *   tlshs run PORT -m full|resume|reuse -c N -d SECONDS -w WARMUP [-n SNI] [-V 1.2|1.3]
 *                 [-t PIDS] [-u PIDS]
 *       full:   never offers a session: every handshake is a full one
 *       resume: each connection slot offers the newest ticket (session) its
 *               previous connections received, once: OpenSSL clients use a
 *               TLS 1.3 ticket only once (RFC 8446 C.4; browsers do the same),
 *               so a server that issues no new ticket on a resumed handshake
 *               gets a full handshake next time. The server decides whether it
 *               resumes; the client counts what actually happened
 *               (SSL_session_reused), and how many connections offered a ticket
 *       reuse:  the same, but a ticket is offered again and again (a copy of the
 *               newest session, SSL_SESSION_dup, each time: the copy is used up,
 *               the original never) until a newer one arrives: the server's
 *               resumption capacity whatever its ticket policy
 *       Connections completed during the measured window (after WARMUP) are
 *       counted and their times (connect to last response byte) recorded; CPU of
 *       the processes in -t (the proxy) and -u (the upstream) is read from
 *       /proc/<pid>/stat at the window's edges, the client's own from getrusage.
 *
 * The client offers ALPN "http/1.1" and SNI (default "localhost"), verifies no
 * certificate chain (the certificate is self-signed) but OpenSSL still checks the
 * server's CertificateVerify signature: an ECDSA verification per full handshake,
 * which is why this client, not the server, usually sets the rate. A finished
 * connection is closed without close_notify (quiet shutdown), so its session stays
 * resumable and no extra record is sent; any unread bytes make the close an RST.
 *
 * Output: one line "RESULT key=value ..." on stdout; "ERROR ..." on stderr.
 *
 * Build: cc -O2 -o tlshs tlshs.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define MAX_CONNS 1024
#define MAX_PIDS 64
#define MAX_CPUS 64
#define HEAD_MAX 8192

enum cstate { IDLE, CONNECTING, HANDSHAKE, WRITING, READING };

struct conn {
    int fd;
    SSL *ssl;
    enum cstate state;
    unsigned interest;
    uint64_t t0;
    char buf[HEAD_MAX];
    size_t len;                 /* bytes of head (+ body start) in buf */
    long head_end;              /* offset just past "\r\n\r\n", -1 until seen */
    long clen;                  /* Content-Length, -1 if none */
    size_t body;                /* body bytes received */
    SSL_SESSION *sess;          /* newest session (ticket) this slot received */
    int tickets;                /* NewSessionTicket messages on this connection */
    int offered;                /* this connection offered a ticket */
};

enum mode { FULL, RESUME, REUSE };

static int ep, port, nconns = 20, tls_max = TLS1_3_VERSION;
static enum mode mode = FULL;
static const char *sni = "localhost";
static SSL_CTX *ctx;
static struct conn conns[MAX_CONNS];
static char request[256];
static size_t request_len;
static volatile sig_atomic_t stop;
static int running = 1;

static uint64_t win_start, win_end;
static uint64_t done_win, resumed_win, full_win, tickets_win, offered_win, errors, done_all, started;
static uint64_t *lat;
static size_t lat_n, lat_cap;
static char first_error[256];
static char last_proto[32], last_cipher[64], last_group[32], last_alpn[32];

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void note_error(const char *fmt, ...) {
    errors++;
    if (first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_error, sizeof first_error, fmt, ap);
    va_end(ap);
}

static const char *ssl_reason(void) {
    static char b[160];
    unsigned long e = ERR_get_error();
    if (e == 0) return errno ? strerror(errno) : "no OpenSSL error";
    ERR_error_string_n(e, b, sizeof b);
    ERR_clear_error();
    return b;
}

/* A new session (TLS 1.3: one per NewSessionTicket) for the slot that owns this SSL. */
static int on_new_session(SSL *ssl, SSL_SESSION *s) {
    struct conn *c = SSL_get_app_data(ssl);
    if (c == NULL) return 0;
    c->tickets++;
    if (mode == FULL) return 0;   /* not kept: OpenSSL frees it */
    if (c->sess) SSL_SESSION_free(c->sess);
    c->sess = s;                  /* we keep the reference OpenSSL handed us */
    return 1;
}

static void set_interest(struct conn *c, unsigned ev) {
    if (c->interest == ev) return;
    struct epoll_event e = { .events = ev, .data.ptr = c };
    if (epoll_ctl(ep, c->interest ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) != 0) {
        note_error("epoll_ctl: %s", strerror(errno));
        return;
    }
    c->interest = ev;
}

static void release(struct conn *c) {
    if (c->ssl) {
        /* Quiet shutdown: mark both directions shut so that SSL_free does not flag the
         * session as bad (which would make it non-resumable), and send nothing. */
        SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) close(c->fd);   /* close also drops it from the epoll set */
    c->fd = -1;
    c->interest = 0;
    c->state = IDLE;
}

static void start_conn(struct conn *c);

static void finish(struct conn *c, int ok) {
    uint64_t t = now_ns();
    if (ok) {
        done_all++;
        if (t >= win_start && t < win_end) {
            done_win++;
            if (SSL_session_reused(c->ssl)) resumed_win++; else full_win++;
            tickets_win += (uint64_t)c->tickets;
            offered_win += (uint64_t)c->offered;
            if (lat_n == lat_cap) {
                lat_cap = lat_cap ? lat_cap * 2 : 65536;
                lat = realloc(lat, lat_cap * sizeof *lat);
                if (lat == NULL) { perror("realloc"); exit(2); }
            }
            lat[lat_n++] = t - c->t0;
        }
        snprintf(last_proto, sizeof last_proto, "%s", SSL_get_version(c->ssl));
        snprintf(last_cipher, sizeof last_cipher, "%s", SSL_get_cipher_name(c->ssl));
        int nid = SSL_get_negotiated_group(c->ssl);
        const char *g = nid ? OBJ_nid2sn(nid & ~TLSEXT_nid_unknown) : NULL;
        snprintf(last_group, sizeof last_group, "%s", g ? g : "none");
        const unsigned char *a;
        unsigned alen;
        SSL_get0_alpn_selected(c->ssl, &a, &alen);
        snprintf(last_alpn, sizeof last_alpn, "%.*s", alen ? (int)alen : 4, alen ? (const char *)a : "none");
    }
    release(c);
    if (running) start_conn(c);
}

static void start_conn(struct conn *c) {
    c->len = 0;
    c->head_end = -1;
    c->clen = -1;
    c->body = 0;
    c->tickets = 0;
    c->offered = 0;
    c->t0 = now_ns();
    started++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { note_error("socket: %s", strerror(errno)); c->state = IDLE; return; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        note_error("connect: %s", strerror(errno));
        release(c);
        return;
    }
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL) { note_error("SSL_new: %s", ssl_reason()); release(c); return; }
    SSL_set_app_data(c->ssl, c);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, sni);
    if (mode == RESUME && c->sess && SSL_SESSION_is_resumable(c->sess)) {
        SSL_set_session(c->ssl, c->sess);
        c->offered = 1;
    } else if (mode == REUSE && c->sess && SSL_SESSION_is_resumable(c->sess)) {
        /* A copy, so that OpenSSL marks the copy used (not resumable), not the original. */
        SSL_SESSION *s = SSL_SESSION_dup(c->sess);
        if (s) {
            SSL_set_session(c->ssl, s);
            SSL_SESSION_free(s);
            c->offered = 1;
        }
    }
    c->state = CONNECTING;
    set_interest(c, EPOLLOUT);
}

/* Parse the response head once "\r\n\r\n" is in: status must be 200. */
static int parse_head(struct conn *c) {
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL) return c->len < sizeof c->buf ? 0 : -1;
    c->head_end = end + 4 - c->buf;
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 200", 12) != 0) return -2;
    for (char *p = c->buf; p < end; p++) {
        if (*p == '\n' && strncasecmp(p + 1, "content-length:", 15) == 0) {
            c->clen = strtol(p + 16, NULL, 10);
            break;
        }
    }
    c->body = c->len - (size_t)c->head_end;
    return 1;
}

/* Drive one connection as far as it goes without blocking. */
static void drive(struct conn *c) {
    int r;
    for (;;) {
        switch (c->state) {
        case IDLE:
            return;
        case CONNECTING: {
            int err = 0;
            socklen_t l = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
            if (err) { note_error("connect: %s", strerror(err)); finish(c, 0); return; }
            c->state = HANDSHAKE;
            break;
        }
        case HANDSHAKE:
            ERR_clear_error();
            r = SSL_do_handshake(c->ssl);
            if (r == 1) { c->state = WRITING; break; }
            goto want;
        case WRITING:
            ERR_clear_error();
            r = SSL_write(c->ssl, request, (int)request_len);
            if (r > 0) { c->state = READING; break; }
            goto want;
        case READING: {
            ERR_clear_error();
            char *dst = c->head_end < 0 ? c->buf + c->len : c->buf;   /* body bytes are counted, not kept */
            size_t room = c->head_end < 0 ? sizeof c->buf - c->len : sizeof c->buf;
            r = SSL_read(c->ssl, dst, (int)room);
            if (r > 0) {
                if (c->head_end < 0) {
                    c->len += (size_t)r;
                    int h = parse_head(c);
                    if (h == -1) { note_error("response head too long"); finish(c, 0); return; }
                    if (h == -2) { note_error("status: %.40s", c->buf); finish(c, 0); return; }
                } else {
                    c->body += (size_t)r;
                }
                if (c->head_end >= 0 && c->clen >= 0 && c->body >= (size_t)c->clen) {
                    if (c->body > (size_t)c->clen) { note_error("body longer than Content-Length"); finish(c, 0); return; }
                    finish(c, 1);
                    return;
                }
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if ((e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) && c->head_end >= 0 && c->clen < 0) {
                finish(c, 1);   /* no Content-Length: the body ends at close */
                return;
            }
            goto want;
        }
        }
        continue;
    want:
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ: set_interest(c, EPOLLIN); return;
        case SSL_ERROR_WANT_WRITE: set_interest(c, EPOLLOUT); return;
        case SSL_ERROR_ZERO_RETURN: note_error("closed by the server in state %d", c->state); break;
        case SSL_ERROR_SYSCALL: note_error("syscall error in state %d: %s", c->state, errno ? strerror(errno) : "EOF"); break;
        default: note_error("TLS error in state %d: %s", c->state, ssl_reason()); break;
        }
        finish(c, 0);
        return;
    }
}

static void loop_once(int timeout_ms) {
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(ep, ev, MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) drive(ev[i].data.ptr);
    /* Slots that failed to start (socket or connect error) get another try. */
    if (running)
        for (int i = 0; i < nconns; i++)
            if (conns[i].state == IDLE) start_conn(&conns[i]);
}

/* utime + stime of the listed processes (all their threads), in clock ticks. */
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
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) t += (long long)(ut + st);
    }
    return t;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* /proc/stat: total and idle(+iowait) jiffies of the machine (index 0) and of each cpuN (1+N);
 * steal of the machine. Returns how many CPU lines were read. */
static int cpu_ticks(unsigned long long tot[MAX_CPUS + 1], unsigned long long idle[MAX_CPUS + 1], unsigned long long *steal) {
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    int n = 0;
    if (f == NULL) return 0;
    while (fgets(line, sizeof line, f) && strncmp(line, "cpu", 3) == 0) {
        unsigned long long v[8] = { 0 };
        int idx = 0;
        char *p = line + 3;
        if (*p != ' ') idx = 1 + (int)strtol(p, &p, 10);
        if (idx > MAX_CPUS) continue;
        if (sscanf(p, " %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8) continue;
        tot[idx] = 0;
        for (int i = 0; i < 8; i++) tot[idx] += v[i];
        idle[idx] = v[3] + v[4];
        if (idx == 0) *steal = v[7];
        if (idx + 1 > n) n = idx + 1;
    }
    fclose(f);
    return n;
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
    size_t i = (size_t)(q * (double)(lat_n - 1) + 0.5);
    return (double)lat[i] / 1e3;
}

static void on_signal(int s) { (void)s; stop = 1; }

static void make_ctx(void) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) { fprintf(stderr, "ERROR SSL_CTX_new: %s\n", ssl_reason()); exit(2); }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, tls_max);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    /* Sessions are kept per slot by the callback, never in OpenSSL's client cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
}

static void usage(void) {
    fprintf(stderr, "usage: tlshs probe PORT [-n SNI] [-V 1.2|1.3]\n"
                    "       tlshs run PORT -m full|resume|reuse [-c N] [-d SECONDS] [-w WARMUP] [-n SNI] [-V 1.2|1.3] [-t PIDS] [-u PIDS]\n");
    exit(2);
}

/* probe: one full handshake, then one connection offering the ticket it got. */
static int probe(void) {
    mode = RESUME;
    nconns = 1;
    running = 0;
    win_start = 0;
    win_end = UINT64_MAX;
    struct conn *c = &conns[0];
    int ok_first = 0, resumed = 0, tickets = 0;
    char proto[32] = "", cipher[64] = "", group[32] = "", alpn[32] = "";
    for (int round = 0; round < 2; round++) {
        uint64_t before = done_all, deadline = now_ns() + 3000000000ull;
        uint64_t r0 = resumed_win, t0 = tickets_win;
        start_conn(c);
        while (c->state != IDLE && now_ns() < deadline) loop_once(50);
        if (c->state != IDLE) { note_error("timeout"); release(c); }
        if (done_all == before) break;
        if (round == 0) {
            ok_first = 1;
            tickets = (int)(tickets_win - t0);
            snprintf(proto, sizeof proto, "%s", last_proto);
            snprintf(cipher, sizeof cipher, "%s", last_cipher);
            snprintf(group, sizeof group, "%s", last_group);
            snprintf(alpn, sizeof alpn, "%s", last_alpn);
        } else {
            resumed = resumed_win > r0;
        }
    }
    if (!ok_first) {
        printf("PROBE ok=0 error=\"%s\"\n", first_error[0] ? first_error : "no response");
        return 1;
    }
    printf("PROBE ok=1 proto=%s cipher=%s group=%s alpn=%s tickets=%d resumed=%d\n", proto, cipher, group, alpn, tickets, resumed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) usage();
    const char *cmd = argv[1];
    port = atoi(argv[2]);
    double duration_s = 5, warmup_s = 1;
    int pids_proxy[MAX_PIDS], pids_up[MAX_PIDS], n_proxy = 0, n_up = 0;
    int opt;
    optind = 3;
    while ((opt = getopt(argc, argv, "m:c:d:w:n:V:t:u:")) != -1) {
        switch (opt) {
        case 'm':
            if (strcmp(optarg, "full") == 0) mode = FULL;
            else if (strcmp(optarg, "resume") == 0) mode = RESUME;
            else if (strcmp(optarg, "reuse") == 0) mode = REUSE;
            else usage();
            break;
        case 'c': nconns = atoi(optarg); break;
        case 'd': duration_s = atof(optarg); break;
        case 'w': warmup_s = atof(optarg); break;
        case 'n': sni = optarg; break;
        case 'V': tls_max = strcmp(optarg, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION; break;
        case 't': n_proxy = parse_pids(optarg, pids_proxy); break;
        case 'u': n_up = parse_pids(optarg, pids_up); break;
        default: usage();
        }
    }
    if (port <= 0 || nconns < 1 || nconns > MAX_CONNS) usage();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlshs\r\nConnection: close\r\n\r\n", sni);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("epoll_create1"); return 2; }
    make_ctx();
    for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;

    if (strcmp(cmd, "probe") == 0) return probe();
    if (strcmp(cmd, "run") != 0) usage();

    uint64_t start = now_ns();
    win_start = start + (uint64_t)(warmup_s * 1e9);
    win_end = win_start + (uint64_t)(duration_s * 1e9);
    for (int i = 0; i < nconns; i++) start_conn(&conns[i]);
    while (!stop && now_ns() < win_start) {
        loop_once(10);
        if (errors > 1000 && done_all == 0) break;
    }
    long long p0 = proc_ticks(pids_proxy, n_proxy), u0 = proc_ticks(pids_up, n_up);
    double c0 = self_cpu_s();
    unsigned long long t0[MAX_CPUS + 1] = { 0 }, i0[MAX_CPUS + 1] = { 0 }, t1[MAX_CPUS + 1] = { 0 }, i1[MAX_CPUS + 1] = { 0 };
    unsigned long long s0 = 0, s1 = 0;
    int ncpu = cpu_ticks(t0, i0, &s0);
    for (;;) {
        uint64_t now = now_ns();
        if (stop || now >= win_end) break;
        if (errors > 1000 && done_all == 0) break;
        int ms = (int)((win_end - now) / 1000000) + 1;
        loop_once(ms < 10 ? ms : 10);
    }
    uint64_t end = now_ns() < win_end ? now_ns() : win_end;
    long long p1 = proc_ticks(pids_proxy, n_proxy), u1 = proc_ticks(pids_up, n_up);
    double c1 = self_cpu_s();
    cpu_ticks(t1, i1, &s1);
    running = 0;
    for (int i = 0; i < nconns; i++) release(&conns[i]);

    double win = end > win_start ? (double)(end - win_start) / 1e9 : 0;
    long hz = sysconf(_SC_CLK_TCK);
    qsort(lat, lat_n, sizeof *lat, cmp_u64);
    double mean = 0;
    for (size_t i = 0; i < lat_n; i++) mean += (double)lat[i];
    mean = lat_n ? mean / (double)lat_n / 1e3 : 0;
    unsigned long long mt = t1[0] - t0[0];
    printf("RESULT mode=%s conns=%d window_s=%.3f handshakes=%llu hs_per_s=%.1f resumed=%llu full=%llu resumed_pct=%.2f "
           "offered_pct=%.2f tickets_per_conn=%.2f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f errors=%llu "
           "proxy_cpu_s=%.2f upstream_cpu_s=%.2f client_cpu_s=%.2f machine_busy_pct=%.1f steal_pct=%.1f "
           "proto=%s cipher=%s group=%s alpn=%s",
           mode == FULL ? "full" : mode == RESUME ? "resume" : "reuse", nconns, win, (unsigned long long)done_win, win > 0 ? done_win / win : 0,
           (unsigned long long)resumed_win, (unsigned long long)full_win,
           done_win ? 100.0 * (double)resumed_win / (double)done_win : 0,
           done_win ? 100.0 * (double)offered_win / (double)done_win : 0,
           done_win ? (double)tickets_win / (double)done_win : 0,
           pct_us(0.50), pct_us(0.90), pct_us(0.99), pct_us(0.999), pct_us(1.0), mean, (unsigned long long)errors,
           (double)(p1 - p0) / hz, (double)(u1 - u0) / hz, c1 - c0,
           mt ? 100.0 * (double)(mt - (i1[0] - i0[0])) / (double)mt : 0, mt ? 100.0 * (double)(s1 - s0) / (double)mt : 0,
           last_proto[0] ? last_proto : "none", last_cipher[0] ? last_cipher : "none", last_group[0] ? last_group : "none",
           last_alpn[0] ? last_alpn : "none");
    for (int k = 1; k < ncpu; k++) {
        unsigned long long d = t1[k] - t0[k];
        printf(" cpu%d_busy_pct=%.1f", k - 1, d ? 100.0 * (double)(d - (i1[k] - i0[k])) / (double)d : 0);
    }
    printf("\n");
    if (first_error[0]) fprintf(stderr, "ERROR %s\n", first_error);
    return done_win > 0 ? 0 : 1;
}

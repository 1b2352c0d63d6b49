/*
 * relay.c - the benchmark floor: a single-threaded epoll TCP byte relay.
 *
 * It parses nothing. Every accepted client connection gets its own upstream
 * connection, and bytes are copied both ways until either side closes. No
 * pooling, no HTTP awareness: whatever a real proxy costs above this is the
 * price of understanding HTTP (parsing, routing, pooling, header rewriting).
 *
 *   usage: relay LISTEN_PORT UPSTREAM_PORT      (both on 127.0.0.1)
 *
 * Build: cc -O2 -o relay relay.c
 * Stops on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define MAX_EVENTS 256

/* One socket of a pair. `buf` holds bytes read from this socket that still
 * have to be written to the peer. */
struct end {
    int fd;
    int dead;              /* pair closed; freed after the current batch */
    unsigned interest;     /* events currently registered with epoll */
    struct end *peer;
    struct end *next_dead;
    size_t off, len;
    char buf[BUF_SIZE];
};

static int ep;
static volatile sig_atomic_t stop;
static struct end *graveyard;
static struct sockaddr_in upstream_addr;

static void on_signal(int sig) { (void)sig; stop = 1; }

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void close_pair(struct end *e) {
    struct end *ends[2] = { e, e->peer };
    for (int i = 0; i < 2; i++) {
        struct end *x = ends[i];
        if (x == NULL || x->dead) continue;
        x->dead = 1;
        close(x->fd);       /* also drops it from the epoll set */
        x->next_dead = graveyard;
        graveyard = x;
    }
}

/* Recompute what each end of the pair waits for: readable while its own
 * buffer is empty, writable while the peer has bytes queued for it. */
static void update_interest(struct end *e) {
    struct end *ends[2] = { e, e->peer };
    for (int i = 0; i < 2; i++) {
        struct end *x = ends[i];
        if (x->dead) continue;
        unsigned want = 0;
        if (x->len == 0) want |= EPOLLIN;
        if (x->peer->len > 0) want |= EPOLLOUT;
        if (want != x->interest) {
            struct epoll_event ev = { .events = want, .data.ptr = x };
            if (epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev) < 0) {
                close_pair(x);
                return;
            }
            x->interest = want;
        }
    }
}

/* Write src's pending bytes into dst. Returns -1 on a fatal error. */
static int flush(struct end *src, struct end *dst) {
    while (src->len > 0) {
        ssize_t n = send(dst->fd, src->buf + src->off, src->len, MSG_NOSIGNAL);
        if (n > 0) {
            src->off += (size_t)n;
            src->len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;       /* includes "upstream connect still in progress" */
        } else {
            return -1;
        }
    }
    src->off = 0;
    return 0;
}

static void on_readable(struct end *e) {
    ssize_t n;
    do {
        n = recv(e->fd, e->buf, BUF_SIZE, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        close_pair(e);
        return;
    }
    if (n < 0) return;
    e->off = 0;
    e->len = (size_t)n;
    if (flush(e, e->peer) < 0) { close_pair(e); return; }
    update_interest(e);
}

static void on_writable(struct end *e) {
    if (flush(e->peer, e) < 0) { close_pair(e); return; }
    update_interest(e);
}

static struct end *new_end(int fd) {
    struct end *e = calloc(1, sizeof *e);
    if (e == NULL) return NULL;
    e->fd = fd;
    return e;
}

static int add_end(struct end *e) {
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };
    e->interest = EPOLLIN;
    return epoll_ctl(ep, EPOLL_CTL_ADD, e->fd, &ev);
}

static void accept_all(int lfd) {
    for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;         /* EAGAIN, or EMFILE and friends: try later */
        }
        int ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ufd < 0) { close(cfd); continue; }
        if (connect(ufd, (struct sockaddr *)&upstream_addr, sizeof upstream_addr) < 0 &&
            errno != EINPROGRESS) {
            close(ufd); close(cfd); continue;
        }
        set_nodelay(cfd);
        set_nodelay(ufd);
        struct end *c = new_end(cfd), *u = new_end(ufd);
        if (c == NULL || u == NULL) {
            free(c); free(u); close(cfd); close(ufd); continue;
        }
        c->peer = u;
        u->peer = c;
        if (add_end(c) < 0 || add_end(u) < 0) {
            close(cfd); close(ufd); free(c); free(u); continue;
        }
    }
}

static int parse_port(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 65535) {
        fprintf(stderr, "relay: bad port '%s'\n", s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_PORT\n", argv[0]);
        return 2;
    }
    int lport = parse_port(argv[1]), uport = parse_port(argv[2]);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    memset(&upstream_addr, 0, sizeof upstream_addr);
    upstream_addr.sin_family = AF_INET;
    upstream_addr.sin_port = htons((uint16_t)uport);
    upstream_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) { perror("relay: socket"); return 1; }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in la;
    memset(&la, 0, sizeof la);
    la.sin_family = AF_INET;
    la.sin_port = htons((uint16_t)lport);
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) { perror("relay: bind"); return 1; }
    if (listen(lfd, 4096) < 0) { perror("relay: listen"); return 1; }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) { perror("relay: epoll_create1"); return 1; }
    /* The listener is registered with a NULL pointer to tell it apart. */
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) { perror("relay: epoll_ctl"); return 1; }

    struct epoll_event events[MAX_EVENTS];
    while (!stop) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("relay: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct end *e = events[i].data.ptr;
            unsigned ev = events[i].events;
            if (e == NULL) { accept_all(lfd); continue; }
            if (e->dead) continue;
            if (ev & (EPOLLERR | EPOLLHUP)) {
                /* Drain what can still be read before giving up. */
                if ((ev & EPOLLIN) && e->len == 0) on_readable(e);
                if (!e->dead) close_pair(e);
                continue;
            }
            if (ev & EPOLLOUT) on_writable(e);
            if (!e->dead && (ev & EPOLLIN) && e->len == 0) on_readable(e);
        }
        while (graveyard != NULL) {
            struct end *next = graveyard->next_dead;
            free(graveyard);
            graveyard = next;
        }
    }
    return 0;
}

#define _GNU_SOURCE
#include "CLinux.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>


int cl_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int cl_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = { .events = events, .data.u64 = data };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int cl_epoll_del(int epfd, int fd) {
    struct epoll_event ev = { 0 };
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

int cl_epoll_wait(int epfd, cl_event *out, int max, int timeout_ms) {
    // struct epoll_event is packed on x86_64 (12 bytes); copy into the Swift-friendly layout.
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    // Through syscall(2), like the socket calls below: the libc wrapper is a cancellation
    // point, and switching asynchronous cancellation on and off around it costs more user-space
    // instructions than the call. We never cancel threads. (epoll_pwait with no mask: aarch64
    // has no plain epoll_wait.)
    int n = (int)syscall(SYS_epoll_pwait, epfd, evs, max, timeout_ms, NULL, 8);
    for (int i = 0; i < n; i++) {
        out[i].events = evs[i].events;
        out[i].data = evs[i].data.u64;
    }
    return n;
}

ssize_t cl_recv(int fd, void *buf, size_t n) { return syscall(SYS_recvfrom, fd, buf, n, 0, NULL, NULL); }

ssize_t cl_send(int fd, const void *buf, size_t n) {
    return syscall(SYS_sendto, fd, buf, n, MSG_NOSIGNAL, NULL, 0);
}

ssize_t cl_sendmsg(int fd, const struct msghdr *m) { return syscall(SYS_sendmsg, fd, m, MSG_NOSIGNAL); }

int cl_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int cl_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int cl_socket_stream(int family) { return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int cl_set_reuseport(int fd) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return -1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

int cl_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int cl_set_linger_zero(int fd) {
    struct linger l = {1, 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

int cl_set_keepalive(int fd, int idle_s, int interval_s, int count) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s) != 0) return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

int cl_pipe(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

ssize_t cl_splice(int from, int to, size_t len) {
    return splice(from, NULL, to, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int cl_so_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
}

uint64_t cl_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cl_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cl_wall_clock(int64_t *sec, int32_t *msec) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    *sec = ts.tv_sec;
    *msec = (int32_t)(ts.tv_nsec / 1000000);
}

int cl_getrandom(void *buf, size_t len) { return (int)getrandom(buf, len, 0); }

static void fill_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

void cl_block_signals(void) {
    sigset_t set;
    fill_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    // A peer that closes while we write must give EPIPE, not kill the process.
    signal(SIGPIPE, SIG_IGN);
}

int cl_wait_signal_ms(int timeout_ms) {
    sigset_t set;
    fill_set(&set);
    struct timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L };
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig >= 0) return sig;
        if (errno == EAGAIN) return 0;
        if (errno != EINTR) return -1;
    }
}

int cl_wait_signal(void) {
    sigset_t set;
    fill_set(&set);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    return sig;
}

size_t cl_release_code_pages(void) {
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return 0;
    char line[512];
    size_t released = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        char perms[8];
        int path = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path) < 3) continue;
        // Executable, private, file-backed (a path, not [vdso]): text, never written, so the
        // kernel can fault it back from the page cache. Writable or read-only data (RELRO holds
        // relocated pages) is never touched.
        if (strcmp(perms, "r-xp") != 0 || path == 0 || line[path] != '/') continue;
        if (madvise((void *)start, end - start, MADV_DONTNEED) == 0) released += end - start;
    }
    fclose(f);
    return released;
}

void cl_trim_heap(void) { malloc_trim(0); }

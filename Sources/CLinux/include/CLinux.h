// Thin C door to the Linux calls Glibc's Swift module does not expose (epoll, eventfd,
// accept4 flags, splice). Only plain functions here: _GNU_SOURCE is defined in the .c file,
// never in this header, because defining it here breaks the Glibc module import.
#ifndef CLINUX_H
#define CLINUX_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

typedef struct cl_event {
    uint32_t events;
    uint64_t data;
} cl_event;


int cl_epoll_create(void);
/// Registers fd with the given interest and 64-bit user data (EPOLL_CTL_ADD).
int cl_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
/// Waits for events; fills `out` (an array of cl_event of length max). Returns the count or -1.
/// Removes `fd` from the epoll set (a socket handed to another worker's loop).
int cl_epoll_del(int epfd, int fd);
int cl_epoll_wait(int epfd, cl_event *out, int max, int timeout_ms);

/// recv(2), send(2) and sendmsg(2) (the last two with MSG_NOSIGNAL) as plain system calls:
/// -1 and errno on failure, like the libc calls, but not pthread cancellation points.
ssize_t cl_recv(int fd, void *buf, size_t n);
ssize_t cl_send(int fd, const void *buf, size_t n);
ssize_t cl_sendmsg(int fd, const struct msghdr *m);

int cl_eventfd(void);
int cl_accept4(int fd, struct sockaddr *addr, socklen_t *len);
int cl_socket_stream(int family);
int cl_set_reuseport(int fd);
int cl_set_nodelay(int fd);
/* SO_LINGER {1, 0}: close(2) then sends RST instead of FIN (an aborted connection). */
int cl_set_linger_zero(int fd);
int cl_so_error(int fd);
/// TCP keepalive on: first probe after `idle_s` seconds of silence, then every `interval_s`,
/// the connection dropped after `count` unanswered probes.
int cl_set_keepalive(int fd, int idle_s, int interval_s, int count);
/// A non-blocking, close-on-exec pipe; fds[0] reads, fds[1] writes.
int cl_pipe(int fds[2]);
/// splice(2) with SPLICE_F_MOVE|SPLICE_F_NONBLOCK and no offsets; -1 with errno on failure.
ssize_t cl_splice(int from, int to, size_t len);
/// Milliseconds from CLOCK_MONOTONIC_COARSE (cheap; a few ms of resolution is enough for timeouts).
uint64_t cl_monotonic_ms(void);
/// Microseconds from CLOCK_MONOTONIC.
uint64_t cl_monotonic_us(void);
/// Wall clock: seconds and milliseconds since the epoch.
void cl_wall_clock(int64_t *sec, int32_t *msec);
int cl_getrandom(void *buf, size_t len);
/// Blocks SIGINT, SIGTERM, SIGHUP and SIGPIPE in the calling thread (threads created later inherit it).
void cl_block_signals(void);
/// Waits for SIGINT, SIGTERM or SIGHUP (blocked beforehand); returns the signal number.
int cl_wait_signal(void);
/// As cl_wait_signal, but returns 0 when none came within `timeout_ms`.
int cl_wait_signal_ms(int timeout_ms);

/// Drops this process's mappings of executable file pages (its own text and the libraries'):
/// start-up code (argument parsing, YAML, certificate loading) then no longer counts in RSS, and
/// the code that runs again is faulted back from the page cache on first use. Returns the bytes
/// of the address ranges released.
size_t cl_release_code_pages(void);
/// Returns free heap memory (what start-up parsing left behind) to the kernel.
void cl_trim_heap(void);

/// Counters with one writer thread and other readers: relaxed atomic load and store (a plain
/// mov on x86-64, no lock prefix), so a reader never sees a torn value.
static inline void cl_counter_add(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void cl_counter_set(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint64_t cl_counter_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

#endif

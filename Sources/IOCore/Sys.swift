import CLinux
import Glibc

/// A failed system call: the operation and its errno. Would-block is never an error (see `IOResult`).
public struct SysError: Error, CustomStringConvertible, Sendable {
    public let op: StaticString
    public let errno: Int32
    public init(_ op: StaticString, _ errno: Int32) {
        self.op = op
        self.errno = errno
    }
    public var description: String {
        "\(op): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking read or write.
public enum IOResult: Equatable {
    case bytes(Int)
    case wouldBlock
    /// Read only: the peer closed its side.
    case eof
}

/// The one door to the kernel (STYLE.md point 1): EINTR is retried, EAGAIN comes back as
/// `.wouldBlock`, EBADF/EFAULT trap (only our own bug can cause them), everything else throws.
public enum Sys {
    @inlinable @inline(__always)
    public static func trapIfOurBug(_ e: Int32, _ op: StaticString) {
        if e == EBADF || e == EFAULT { fatalError("\(op): \(e == EBADF ? "EBADF" : "EFAULT") — a bug in Switchyard") }
    }

    /// Reads from a socket. recv(2) rather than read(2): it skips the VFS file-position path.
    @inlinable @inline(__always)
    public static func read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) throws(SysError) -> IOResult {
        while true {
            let r = cl_recv(fd, p, n)
            if r > 0 { return .bytes(r) }
            if r == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            trapIfOurBug(e, "read")
            throw SysError("read", e)
        }
    }

    /// Writes to a socket with send(2) (MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE).
    @inlinable @inline(__always)
    public static func write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) throws(SysError) -> IOResult {
        while true {
            let r = cl_send(fd, p, n)
            if r >= 0 { return .bytes(r) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            trapIfOurBug(e, "write")
            throw SysError("write", e)
        }
    }

    /// Writes two buffers with one sendmsg (a rewritten head and the body bytes behind it).
    /// sendmsg rather than writev: straight to the socket layer, and MSG_NOSIGNAL.
    @inlinable @inline(__always)
    public static func writev2(_ fd: Int32, _ a: UnsafeRawPointer, _ na: Int,
                               _ b: UnsafeRawPointer?, _ nb: Int) throws(SysError) -> IOResult {
        if nb == 0 || b == nil { return try write(fd, a, na) }
        var iov = (iovec(iov_base: UnsafeMutableRawPointer(mutating: a), iov_len: na),
                   iovec(iov_base: UnsafeMutableRawPointer(mutating: b), iov_len: nb))
        while true {
            let r = withUnsafeMutablePointer(to: &iov) {
                $0.withMemoryRebound(to: iovec.self, capacity: 2) { v -> Int in
                    var m = msghdr()
                    m.msg_iov = v
                    m.msg_iovlen = 2
                    return cl_sendmsg(fd, &m)
                }
            }
            if r >= 0 { return .bytes(r) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            trapIfOurBug(e, "sendmsg")
            throw SysError("sendmsg", e)
        }
    }

    /// Moves up to `n` bytes between a socket and a pipe (one of the two must be a pipe) without
    /// copying through user space. `.eof` when the source socket has sent its FIN.
    @inlinable @inline(__always)
    public static func splice(_ from: Int32, _ to: Int32, _ n: Int) throws(SysError) -> IOResult {
        while true {
            let r = cl_splice(from, to, n)
            if r > 0 { return .bytes(r) }
            if r == 0 { return .eof }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            trapIfOurBug(e, "splice")
            throw SysError("splice", e)
        }
    }

    /// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC. Returns nil when the backlog is empty.
    /// ECONNABORTED and EPROTO (a peer that gave up in the backlog) are skipped like EAGAIN's cousins.
    public static func accept(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr_storage>) throws(SysError) -> Int32? {
        while true {
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let r = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { cl_accept4(fd, $0, &len) }
            if r >= 0 { return r }
            let e = errno
            if e == EINTR || e == ECONNABORTED || e == EPROTO { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            trapIfOurBug(e, "accept4")
            throw SysError("accept4", e)
        }
    }

    /// Starts a non-blocking connect. Returns true when already connected, false when in progress.
    public static func connect(_ fd: Int32, _ addr: SocketAddress) throws(SysError) -> Bool {
        var storage = addr.storage
        let r = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, addr.length) }
        }
        if r == 0 { return true }
        let e = errno
        if e == EINPROGRESS || e == EINTR { return false }
        trapIfOurBug(e, "connect")
        throw SysError("connect", e)
    }

    /// `connect` for an address from getaddrinfo(3).
    public static func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) throws(SysError) -> Bool {
        if Glibc.connect(fd, address, length) == 0 { return true }
        let e = errno
        // EINTR: the connect goes on in the background (connect(2)), just as EINPROGRESS.
        if e == EINPROGRESS || e == EINTR { return false }
        trapIfOurBug(e, "connect")
        throw SysError("connect", e)
    }

    public static func socket(family: Int32) throws(SysError) -> Int32 {
        let fd = cl_socket_stream(family)
        if fd < 0 { throw SysError("socket", errno) }
        return fd
    }

    public static func close(_ fd: Int32) {
        // Linux closes the fd even when close reports EINTR; never retry.
        _ = Glibc.close(fd)
    }

    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    public static func listen(_ address: SocketAddress, backlog: Int32) throws(SysError) -> Int32 {
        let fd = try socket(family: Int32(address.storage.ss_family))
        if cl_set_reuseport(fd) != 0 { let e = errno; close(fd); throw SysError("setsockopt(SO_REUSEPORT)", e) }
        var storage = address.storage
        let b = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, address.length) }
        }
        if b != 0 { let e = errno; close(fd); throw SysError("bind", e) }
        if Glibc.listen(fd, backlog) != 0 { let e = errno; close(fd); throw SysError("listen", e) }
        return fd
    }

    // MARK: socket options, pipes, event fds

    /// TCP_NODELAY: heads and small frames go out at once (no Nagle delay behind an ACK).
    @inlinable @inline(__always)
    public static func setNoDelay(_ fd: Int32) {
        _ = cl_set_nodelay(fd)
    }

    /// The next close(2) of `fd` resets the connection (RST) rather than ending it (FIN): for a
    /// connection aborted mid-stream, so the peer learns at once, not after reading what its
    /// receive buffer still holds.
    public static func resetOnClose(_ fd: Int32) {
        _ = cl_set_linger_zero(fd)
    }

    /// TCP keepalive probes after `idle` seconds of silence, every `interval`, `count` times.
    public static func setKeepAlive(_ fd: Int32, idle: Int32, interval: Int32, count: Int32) {
        _ = cl_set_keepalive(fd, idle, interval, count)
    }

    /// The pending error of a socket (SO_ERROR), 0 when none: how a non-blocking connect ended.
    public static func socketError(_ fd: Int32) -> Int32 {
        cl_so_error(fd)
    }

    /// A non-blocking, close-on-exec pipe (read end, write end); nil when the process is out of fds.
    public static func pipe() -> (r: Int32, w: Int32)? {
        var fds: (Int32, Int32) = (-1, -1)
        let r = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { cl_pipe($0) }
        }
        return r == 0 ? (fds.0, fds.1) : nil
    }

    /// A non-blocking eventfd, the wake-up line into an event loop.
    public static func eventFD() throws(SysError) -> Int32 {
        let fd = cl_eventfd()
        if fd < 0 { throw SysError("eventfd", errno) }
        return fd
    }

    /// Adds one to an eventfd's counter (wakes its loop). A full counter (EAGAIN) is already a
    /// pending wake-up, so nothing is lost by ignoring it.
    public static func signalEventFD(_ fd: Int32) {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Reads and resets an eventfd's counter (0 when nothing was signalled).
    public static func drainEventFD(_ fd: Int32) -> UInt64 {
        var v: UInt64 = 0
        return Glibc.read(fd, &v, 8) == 8 ? v : 0
    }
}

import Glibc

/// Blocking socket calls, for the admin listener: it serves operators and nodes a few requests a
/// second on threads of its own, so it keeps to plain blocking I/O with timeouts rather than a
/// second event loop. Same rules as the rest of `Sys`: EINTR retried, our own bugs trap.
extension Sys {
    /// A blocking listener on `address` (SO_REUSEADDR, close-on-exec; no SO_REUSEPORT: one
    /// admin listener per process, and a second process must fail to bind rather than share it).
    public static func listenBlocking(_ address: SocketAddress, backlog: Int32) throws(SysError) -> Int32 {
        let fd = Glibc.socket(Int32(address.storage.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SysError("socket", errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, address.length) }
        }
        if bound != 0 { let e = errno; close(fd); throw SysError("bind", e) }
        if Glibc.listen(fd, backlog) != 0 { let e = errno; close(fd); throw SysError("listen", e) }
        return fd
    }

    /// Waits for a connection; nil for a peer that gave up in the backlog (try again). Throws
    /// when the listener was closed (EBADF/EINVAL after `shutdownBoth`) or the process is out of
    /// descriptors (EMFILE and the like: the caller backs off).
    public static func acceptBlocking(_ fd: Int32, _ peer: UnsafeMutablePointer<sockaddr_storage>) throws(SysError) -> Int32? {
        while true {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let r = peer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) }
            if r >= 0 {
                // The gateway never execs, so setting close-on-exec after accept loses nothing.
                _ = fcntl(r, F_SETFD, FD_CLOEXEC)
                return r
            }
            let e = errno
            if e == EINTR { continue }
            if e == ECONNABORTED || e == EPROTO { return nil }
            // EBADF here is expected: `stop` closes the listener under a blocked accept.
            throw SysError("accept", e)
        }
    }

    /// Receive and send timeouts (SO_RCVTIMEO, SO_SNDTIMEO) in seconds.
    public static func setTimeouts(_ fd: Int32, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A blocking read: bytes, `.eof`, or `.wouldBlock` when the receive timeout passed.
    public static func readBlocking(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) throws(SysError) -> IOResult {
        try read(fd, p, n)
    }

    /// Writes all of `bytes` (blocking, within the send timeout); false when the peer is gone or
    /// the timeout passed.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var sent = 0
        while sent < bytes.count {
            guard case .bytes(let n)? = try? write(fd, bytes.baseAddress! + sent, bytes.count - sent) else { return false }
            sent += n
        }
        return true
    }

    /// Shuts both directions (wakes a thread blocked in accept or read on it).
    public static func shutdownBoth(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }
}

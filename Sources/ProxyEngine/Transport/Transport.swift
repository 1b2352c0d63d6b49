import Glibc
import IOCore
import TLSTerminator

/// How one side of an exchange moves its bytes: a plain socket, a socket through TLS, or a
/// stream of an HTTP/2 connection (which owns the socket). Connection code reads, writes and
/// half-closes through this one value instead of branching on TLS and streams at every call; a
/// stream of an edge node's reverse tunnel (issue 15) is one more case here.
///
/// A value, not an owner: the socket belongs to the connection object registered for it (a
/// `Session`, an `H2Connection`, an `UpstreamConnection`), which closes it in its `close()`.
enum Transport {
    case socket(Int32)
    /// The socket's bytes pass through this TLS session (itself reading through `Sys`).
    case tls(Int32, TLSConnection)
    case stream(H2Stream)

    /// The socket behind it, -1 for a stream (its connection's socket is not this side's).
    @inline(__always)
    var fd: Int32 {
        switch self {
        case .socket(let fd), .tls(let fd, _): return fd
        case .stream: return -1
        }
    }

    /// A plain socket: a short read or write says the socket is drained or full (edge-triggered
    /// epoll reports the next change), and bytes can move with splice(2). Through TLS or a stream
    /// a short read says nothing about the socket, and bytes need user space.
    @inline(__always)
    var isPlainSocket: Bool {
        if case .socket = self { return true }
        return false
    }

    var isTLS: Bool {
        if case .tls = self { return true }
        return false
    }

    /// Reads into `p`. With TLS, `.wouldBlock` covers OpenSSL's "want read" and "want write" (a
    /// TLS 1.3 key update to answer); the next event retries.
    @inline(__always)
    func read(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SysError) -> IOResult {
        switch self {
        case .socket(let fd): return try Sys.read(fd, p, n)
        case .tls(_, let t): return try Self.map(t.read(p, n), "tls read")
        case .stream(let s): return s.read(p, n)
        }
    }

    @inline(__always)
    func write(_ p: UnsafeRawPointer, _ n: Int) throws(SysError) -> IOResult {
        switch self {
        case .socket(let fd): return try Sys.write(fd, p, n)
        case .tls(_, let t): return try Self.map(t.write(p, n), "tls write")
        case .stream(let s): return s.write(p, n)
        }
    }

    /// Two buffers in one call. With TLS, the first and as much of the second as fills one
    /// record are joined in `scratch` (`scratchSize` bytes) into one write — a response head and
    /// a small body: one record and one syscall, not two — then the rest of the second follows.
    /// As on a socket, a short result means the peer is not taking more. After "want write" the
    /// next call offers the same bytes again (the head is unchanged and the body only grows
    /// while we wait, so the length offered never shrinks, as OpenSSL requires).
    @inline(__always)
    func writev2(_ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer?, _ nb: Int,
                 scratch: UnsafeMutableRawPointer, scratchSize: Int) throws(SysError) -> IOResult {
        switch self {
        case .socket(let fd): return try Sys.writev2(fd, a, na, b, nb)
        case .stream(let s): return s.writev2(a, na, b, nb)
        case .tls(_, let t):
            var first = a, firstLength = na, rest = b, restLength = b == nil ? 0 : nb
            if let b, nb > 0, na < scratchSize {
                let take = min(nb, scratchSize - na)
                scratch.copyMemory(from: a, byteCount: na)
                (scratch + na).copyMemory(from: b, byteCount: take)
                first = UnsafeRawPointer(scratch)
                firstLength = na + take
                rest = b + take
                restLength = nb - take
            }
            let r = try Self.map(t.write(first, firstLength), "tls write")
            guard case .bytes(let k) = r, k == firstLength, let rest, restLength > 0 else { return r }
            switch try Self.map(t.write(rest, restLength), "tls write") {
            case .bytes(let m): return .bytes(k + m)
            default: return .bytes(k)
            }
        }
    }

    /// Ends this side's output after everything written so far: close_notify and FIN on a
    /// socket (RFC 8446 §6.1, so the peer can tell a complete stream from a cut one), END_STREAM
    /// on an HTTP/2 stream. Best effort; never waits.
    func finishOutput() {
        switch self {
        case .socket(let fd): Sys.shutdownWrite(fd)
        case .tls(let fd, let t):
            t.shutdown()
            Sys.shutdownWrite(fd)
        case .stream(let s): s.finishOutput()
        }
    }

    @inline(__always)
    static func map(_ r: TLSIO, _ op: StaticString) throws(SysError) -> IOResult {
        switch r {
        case .bytes(let n): return .bytes(n)
        case .wantRead, .wantWrite: return .wouldBlock
        case .closed: return .eof
        case .failed: throw SysError(op, EPROTO)
        }
    }
}

import Glibc
import TLSTerminator

/// The client side's bytes: straight on the socket, or through the connection's TLS session.
/// Plain connections pay one nil check per call.
extension Session {
    /// Reads from the client. With TLS, `.wouldBlock` covers OpenSSL's "want read" and "want
    /// write" (a TLS 1.3 key update to answer); the next event retries.
    @inline(__always)
    func clientRead(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SysError) -> IOResult {
        guard let t = tls else { return try Sys.read(fd, p, n) }
        return try TLSIOResult.map(t.read(p, n), "tls read")
    }

    @inline(__always)
    func clientWrite(_ p: UnsafeRawPointer, _ n: Int) throws(SysError) -> IOResult {
        guard let t = tls else { return try Sys.write(fd, p, n) }
        return try TLSIOResult.map(t.write(p, n), "tls write")
    }

    /// Two buffers in one call on a socket. With TLS, the first and as much of the second as
    /// fills one record (16 KiB) are joined and written as one: a response head and a small body
    /// go out as one record and one syscall, not two. A retry after "want write" joins the same
    /// bytes again (the head is unchanged and the body only grows while we wait, so the length
    /// offered never shrinks, as OpenSSL requires).
    @inline(__always)
    func clientWritev2(_ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer?, _ nb: Int) throws(SysError) -> IOResult {
        guard let t = tls else { return try Sys.writev2(fd, a, na, b, nb) }
        if let b, nb > 0, na < Worker.tlsScratchSize {
            let take = min(nb, Worker.tlsScratchSize - na)
            let s = worker.tlsScratch
            s.copyMemory(from: a, byteCount: na)
            (s + na).copyMemory(from: b, byteCount: take)
            return try TLSIOResult.map(t.write(s, na + take), "tls write")
        }
        let first = try TLSIOResult.map(t.write(a, na), "tls write")
        guard case .bytes(let k) = first, k == na, let b, nb > 0 else { return first }
        switch try TLSIOResult.map(t.write(b, nb), "tls write") {
        case .bytes(let m): return .bytes(na + m)
        default: return .bytes(na)
        }
    }

    /// The TLS handshake of a new connection, before its first request head.
    func stepHandshake() -> Bool {
        guard let t = tls else { close(); return false }
        switch t.handshake() {
        case .done:
            phase = .head
            headStartMs = worker.now
            return true
        case .wantRead:
            io.readable = false
            return false
        case .wantWrite:
            io.writable = false
            return false
        case .failed:
            // Scanners and clients that reject our certificate end here: not worth a log line each.
            close()
            return false
        }
    }
}

enum TLSIOResult {
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

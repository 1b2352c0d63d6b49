import Glibc
import HTTP1Codec
import IOCore
import TLSTerminator

/// The client side's bytes: straight on the socket, or through the connection's TLS session.
/// Plain connections pay one nil check per call.
extension Session {
    /// Reads from the client. With TLS, `.wouldBlock` covers OpenSSL's "want read" and "want
    /// write" (a TLS 1.3 key update to answer); the next event retries.
    @inline(__always)
    func clientRead(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SysError) -> IOResult {
        guard let t = tls else {
            if let s = port { return s.read(p, n) }
            return try Sys.read(fd, p, n)
        }
        return try TLSIOResult.map(t.read(p, n), "tls read")
    }

    @inline(__always)
    func clientWrite(_ p: UnsafeRawPointer, _ n: Int) throws(SysError) -> IOResult {
        guard let t = tls else {
            if let s = port { return s.write(p, n) }
            return try Sys.write(fd, p, n)
        }
        return try TLSIOResult.map(t.write(p, n), "tls write")
    }

    /// Two buffers in one call. With TLS, the first and as much of the second as fills one
    /// record (16 KiB) are joined into one write (a response head and a small body: one record
    /// and one syscall, not two), then the rest of the second follows. As on a socket, a short
    /// result means the peer is not taking more. After "want write" the next call offers the
    /// same bytes again (the head is unchanged and the body only grows while we wait, so the
    /// length offered never shrinks, as OpenSSL requires).
    @inline(__always)
    func clientWritev2(_ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer?, _ nb: Int) throws(SysError) -> IOResult {
        guard let t = tls else {
            if let s = port { return s.writev2(a, na, b, nb) }
            return try Sys.writev2(fd, a, na, b, nb)
        }
        var first = a, firstLength = na, rest = b, restLength = b == nil ? 0 : nb
        if let b, nb > 0, na < Worker.tlsScratchSize {
            let take = min(nb, Worker.tlsScratchSize - na)
            let s = worker.tlsScratch
            s.copyMemory(from: a, byteCount: na)
            (s + na).copyMemory(from: b, byteCount: take)
            first = UnsafeRawPointer(s)
            firstLength = na + take
            rest = b + take
            restLength = nb - take
        }
        let r = try TLSIOResult.map(t.write(first, firstLength), "tls write")
        guard case .bytes(let k) = r, k == firstLength, let rest, restLength > 0 else { return r }
        switch try TLSIOResult.map(t.write(rest, restLength), "tls write") {
        case .bytes(let m): return .bytes(k + m)
        default: return .bytes(k)
        }
    }

    /// The TLS handshake of a new connection, before its first request head.
    func stepHandshake() -> Bool {
        guard let t = tls else { close(); return false }
        switch t.handshake() {
        case .done:
            if t.negotiatedH2 {
                worker.adoptH2(self, leftover: nil)
                return false
            }
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

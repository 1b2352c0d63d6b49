import Glibc
import HTTP1Codec
import IOCore
import TLSTerminator

/// The client side's bytes, through the session's `Transport` (a plain socket, TLS, or an HTTP/2
/// stream), and the TLS handshake of a new connection.
extension Session {
    @inline(__always)
    func clientRead(_ p: UnsafeMutableRawPointer, _ n: Int) throws(SysError) -> IOResult {
        try transport.read(p, n)
    }

    @inline(__always)
    func clientWrite(_ p: UnsafeRawPointer, _ n: Int) throws(SysError) -> IOResult {
        try transport.write(p, n)
    }

    /// Two buffers in one call (a response head and the body behind it); see `Transport.writev2`.
    @inline(__always)
    func clientWritev2(_ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer?, _ nb: Int) throws(SysError) -> IOResult {
        try transport.writev2(a, na, b, nb, scratch: worker.tls.scratch, scratchSize: ListenerTLS.scratchSize)
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

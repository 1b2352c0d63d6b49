import CLinux
import Glibc
import HTTP1Codec
import IOCore

/// A session whose client is an HTTP/2 stream (`transport` is `.stream`) instead of a socket: it runs exactly one
/// exchange (or one RFC 8441 WebSocket tunnel) and then ends, leaving the connection to its
/// `H2Connection`.
extension Session {
    /// Starts on a stream whose request head is complete (`head`, handed over whole).
    func openStream(_ stream: H2Stream, _ connection: H2Connection, head: IOBuffer) {
        precondition(fd < 0, "a stream's session has no socket of its own")
        transport = .stream(stream)
        listenerIndex = connection.listenerIndex
        secure = connection.tls != nil
        record.clientIP.update(from: connection.clientIP, count: connection.clientIPLength)
        record.clientIPLength = connection.clientIPLength
        io = Readiness()
        io.writable = true
        io.readable = true
        requestsServed = 0
        deadline = 0
        queuedTick = 0
        phase = .head
        scanner.reset()
        inBuf = head
    }

    /// The exchange is over (response complete, or the tunnel ended both ways): the stream ends
    /// and so does the session.
    func finishStream(_ p: H2Stream) {
        p.finishOutput()
        resetExchange()
        close()
    }

    /// The client reset the stream (or the connection went away): drop the exchange.
    func streamReset() {
        if phase == .tunnel {
            endTunnel(reason: "client reset stream")
        } else {
            if record.status == 0 && (phase == .exchange || phase == .responding) { record.status = 499 }
            abort(reason: "client reset stream")
        }
    }
}

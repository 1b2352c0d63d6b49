import CNghttp2
import Glibc
import HTTP1Codec
import IOCore

/// The response side: each head a session wrote (HTTP/1.1, from our own HeadWriter) becomes a
/// HEADERS frame. Heads are submitted at flush time, after the sessions of this turn ran: a
/// response that is complete by then (an error, a 304, a HEAD) goes out as one HEADERS frame
/// with END_STREAM, with no DATA frame behind it.
extension H2Connection {
    func submitHeads() {
        guard let h2 else { return }
        let nva = worker.h2.setup!.nva
        let nvaCapacity = worker.h2.setup!.nvaCapacity
        for s in heads {
            s.headQueued = false
            guard !s.closed, !s.headSubmitted, s.headLength > 0, let b = s.out else { continue }
            let p = b.readPointer
            let n = s.headLength
            var status = UnsafePointer(p + 9)
            let code = H2Stream.statusOf(p, n)
            if code == 101 {
                guard s.tunnel else { resetStream(s, error: NGHTTP2_INTERNAL_ERROR.rawValue); continue }
                // RFC 8441 §5: the upgrade's 101 is a 200 on the CONNECT stream.
                status = H2Connection.ok.utf8Start
            } else if s.tunnel && code >= 200 && code < 300 {
                // The upstream ignored the upgrade: a 2xx here would read as "tunnel open".
                status = H2Connection.badGateway.utf8Start
            }
            var count = 0
            nva[count] = H2Nv.make(":status", status, 3)
            count += 1
            // Field lines: "Name: value\r\n", after the status line.
            var i = 0
            while i < n && p[i] != 0x0A { i += 1 }
            i += 1
            while i < n - 2 && count < nvaCapacity {
                let nameStart = i
                while i < n && p[i] != 0x3A { p[i] = p[i] | (p[i] >= 0x41 && p[i] <= 0x5A ? 0x20 : 0); i += 1 }
                let nameLength = i - nameStart
                i += 1
                while i < n && (p[i] == 0x20 || p[i] == 0x09) { i += 1 }
                let valueStart = i
                while i < n && p[i] != 0x0D { i += 1 }
                let valueLength = i - valueStart
                i += 2
                if H2Connection.dropped(p + nameStart, nameLength, tunnel: s.tunnel) { continue }
                nva[count] = H2Nv.make(p + nameStart, nameLength, p + valueStart, valueLength)
                count += 1
            }
            let body = !(s.outputEnded && b.count == n)
            let rv = csh2_submit_response(h2, s.id, nva, count, Unmanaged.passUnretained(s).toOpaque(), body ? H2Setup.readBody : nil)
            s.out!.consume(n)
            s.headLength = 0
            s.headSubmitted = true
            if rv != 0 { resetStream(s, error: NGHTTP2_INTERNAL_ERROR.rawValue) }
            if s.writerBlocked { markReady(s) }
        }
        heads.removeAll(keepingCapacity: true)
    }

    static let ok: StaticString = "200"
    static let badGateway: StaticString = "502"

    /// Connection-specific fields (RFC 9113 §8.2.2) and, on a WebSocket stream, the HTTP/1.1
    /// handshake's answer, which RFC 8441 has no use for.
    static func dropped(_ p: UnsafePointer<UInt8>, _ n: Int, tunnel: Bool) -> Bool {
        switch n {
        case 7: return H2HeaderBlock.equal(p, "upgrade")
        case 10: return H2HeaderBlock.equal(p, "connection") || H2HeaderBlock.equal(p, "keep-alive")
        case 16: return H2HeaderBlock.equal(p, "proxy-connection")
        case 17: return H2HeaderBlock.equal(p, "transfer-encoding")
        case 20: return tunnel && H2HeaderBlock.equal(p, "sec-websocket-accept")
        default: return false
        }
    }
}

import CLinux
import CNghttp2
import Glibc
import HTTP1Codec
import IOCore

/// The request side of an HTTP/2 connection: nghttp2's callbacks, and each stream's HEADERS
/// rewritten as the HTTP/1.1 head its session parses (RFC 9113 §8.3.1: the request line from
/// `:method` and `:path`, `Host` from `:authority`, the cookie fields joined with "; " as §8.2.3
/// asks, `Transfer-Encoding: chunked` for a body of unknown length). nghttp2 has already checked
/// the fields (RFC 9113 §8.2: lowercase names, no connection-specific fields, valid pseudo-header
/// set); the session's HTTP/1.1 parser checks everything again, as for any client.
extension H2Connection {
    /// A request trailer field. Forwarded in the last chunk when the body goes chunked (the
    /// client sent no content-length); with a content-length HTTP/1.1 has no place for it, so
    /// it is dropped and said in the log. Fields that frame, route or hop (RFC 9110 §6.5.1) never
    /// go on; at most 4 KiB of trailers per request.
    func trailer(_ s: H2Stream, _ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ valueLength: Int) {
        guard s.refusal == nil, !s.tunnel, nameLength > 0, name[0] != 0x3A else { return }
        guard s.chunked else {
            worker.log.error("h2_trailer_dropped", "a request with content-length cannot carry trailers to an HTTP/1.1 upstream")
            return
        }
        guard HeaderKind.classify(name, nameLength) == .other else { return }
        if s.trailers == nil { s.trailers = buffers.take() }
        let need = nameLength + valueLength + 4
        guard s.trailers!.count + need <= 4096 else { return }
        s.trailers!.append(name, nameLength)
        s.trailers!.append(": ")
        s.trailers!.append(value, valueLength)
        s.trailers!.append("\r\n")
    }

    func header(_ s: H2Stream, _ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ valueLength: Int) {
        s.headerListSize += nameLength + valueLength + 32
        if s.headerListSize > worker.h2.setup!.maxHeaderList { s.refuse(431, "request header fields too large") }
        if s.refusal != nil { return }
        if nameLength > 0 && name[0] == 0x3A {
            guard block.pseudo(name, nameLength, value, valueLength) else { s.refuse(414, "request target too long"); return }
            return
        }
        if !s.lineWritten { writeRequestLine(s) }
        switch nameLength {
        case 4 where H2HeaderBlock.equal(name, "host"):
            // :authority, when present, is the host (RFC 9113 §8.3.1); a Host field is then dropped.
            if block.authorityLength > 0 { return }
            block.recordHost(value, valueLength)
        case 6 where H2HeaderBlock.equal(name, "cookie"):
            guard block.addCookie(value, valueLength, buffers) else { s.refuse(431, "request header fields too large"); return }
            return
        case 2 where H2HeaderBlock.equal(name, "te"):
            return  // hop-by-hop ("trailers" is all HTTP/2 allows)
        case 14 where H2HeaderBlock.equal(name, "content-length"):
            s.sawContentLength = true
        default:
            break
        }
        appendLine(s, name, nameLength, value, valueLength)
    }

    /// "METHOD target HTTP/1.1" and Host. An extended CONNECT for WebSocket (RFC 8441 §5)
    /// becomes the HTTP/1.1 upgrade it stands for: GET with the same path.
    private func writeRequestLine(_ s: H2Stream) {
        s.lineWritten = true
        let b = block
        let method = UnsafeRawPointer(b.bytes + b.methodStart)
        if b.protocolLength > 0 {
            guard b.methodLength == 7 && H2HeaderBlock.equal(b.bytes + b.methodStart, "CONNECT"),
                  b.protocolLength == 9 && H2HeaderBlock.equalLower(b.bytes + b.protocolStart, "websocket") else {
                s.refuse(501, "unsupported :protocol")
                return
            }
            s.tunnel = true
            append(s, "GET ")
        } else {
            append(s, method, b.methodLength)
            append(s, " ")
        }
        if b.pathLength > 0 {
            append(s, b.bytes + b.pathStart, b.pathLength)
        } else {
            append(s, b.bytes + b.authorityStart, b.authorityLength)  // CONNECT authority-form
        }
        append(s, " HTTP/1.1\r\n")
        if b.authorityLength > 0 {
            append(s, "Host: ")
            append(s, b.bytes + b.authorityStart, b.authorityLength)
            append(s, "\r\n")
        }
    }

    /// The header block ended (END_HEADERS): finish the head and start the stream's session,
    /// or answer it here when it was refused.
    func endHeaders(_ s: H2Stream, endStream: Bool) {
        defer { block.reset(buffers) }
        if !s.lineWritten { writeRequestLine(s) }
        if s.refusal == nil, let c = block.cookie, c.count > 0 {
            append(s, "Cookie: ")
            append(s, c.readPointer, c.count)
            append(s, "\r\n")
        }
        if s.tunnel {
            // The upstream speaks RFC 6455: it wants a key, and answers 101 (which we turn into
            // the 200 of RFC 8441 §5). The key only proves the peer understood WebSocket.
            append(s, "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ")
            var key = (UInt64(0), UInt64(0))
            key.0 = worker.requestIDs.next()
            key.1 = worker.requestIDs.next()
            withUnsafeBytes(of: &key) { raw in
                var text = (UInt64(0), UInt64(0), UInt64(0))
                withUnsafeMutableBytes(of: &text) { t in
                    Base64.encode16(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), into: t.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    append(s, t.baseAddress!, 24)
                }
            }
            append(s, "\r\n")
        } else if !endStream && !s.sawContentLength {
            s.chunked = true
            append(s, "Transfer-Encoding: chunked\r\n")
        }
        append(s, "\r\n")
        s.requestEnded = endStream
        if s.refusal == nil && sniSent, let t = tls {
            // A connection is only good for the names its certificate covers (RFC 9110 §15.5.20):
            // a browser may reuse it for another site of the same IP address.
            let host = block.authorityLength > 0 ? (block.authorityStart, block.authorityLength) : (block.hostStart, block.hostLength)
            if host.1 > 0 && !t.certificate.covers(H2HeaderBlock.hostOnly(UnsafeRawBufferPointer(start: block.bytes + host.0, count: host.1))) {
                s.refuse(421, "misdirected request")
            }
        }
        if let code = s.refusal {
            respondDirect(s, status: s.refusalStatus, code: code)
            return
        }
        markReady(s)
    }

    /// Request DATA: buffered for the session (within the stream's window), or dropped (and
    /// acknowledged) when nobody will read it.
    func data(_ id: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) {
        guard let h2 else { return }
        let raw = nghttp2_session_get_stream_user_data(h2, id)
        guard let raw, n > 0 else {
            _ = nghttp2_session_consume(h2, id, n)
            return
        }
        let s = Unmanaged<H2Stream>.fromOpaque(raw).takeUnretainedValue()
        guard s.session != nil || s.head != nil, s.refusal == nil, !s.outputEnded else {
            _ = nghttp2_session_consume(h2, id, n)
            return
        }
        if s.body == nil { s.body = buffers.takeLarge() }
        if s.body!.writableCount < n { s.body!.compact() }
        guard s.body!.writableCount >= n else {
            // More than the window we advertised: the client ignores flow control.
            _ = nghttp2_session_consume(h2, id, n)
            _ = nghttp2_submit_rst_stream(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_FLOW_CONTROL_ERROR.rawValue)
            return
        }
        s.body!.append(p, n)
        s.unconsumed += n
        markReady(s)
    }

    private func append(_ s: H2Stream, _ p: UnsafeRawPointer, _ n: Int) {
        guard s.refusal == nil else { return }
        if s.head!.writableCount < n {
            guard s.head!.capacity < BufferPool.largeSize, n <= BufferPool.largeSize - s.head!.count else {
                s.refuse(431, "request header fields too large")
                return
            }
            var large = buffers.takeLarge()
            large.append(s.head!.readPointer, s.head!.count)
            buffers.give(s.head!)
            s.head = large
        }
        s.head!.append(p, n)
    }

    private func append(_ s: H2Stream, _ text: StaticString) {
        append(s, UnsafeRawPointer(text.utf8Start), text.utf8CodeUnitCount)
    }

    private func appendLine(_ s: H2Stream, _ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ valueLength: Int) {
        append(s, name, nameLength)
        append(s, ": ")
        append(s, value, valueLength)
        append(s, "\r\n")
    }

    /// Answers a stream without a session: 4xx from the gateway itself, JSON as for HTTP/1.1.
    func respondDirect(_ s: H2Stream, status: Int, code: StaticString) {
        guard let h2 else { return }
        let id = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
        defer { id.deallocate() }
        worker.requestIDs.write(id)
        if let h = s.head { buffers.give(h); s.head = nil }
        var o = buffers.take()
        HeadWriter.errorBody(into: &o, code: code, requestID: id, requestIDLength: 32)
        let bodyLength = o.count
        let meta = o.end
        o.append(decimal: UInt64(status))
        let statusEnd = o.end
        o.append(decimal: UInt64(bodyLength))
        let lengthEnd = o.end
        let p = o.base
        let nva: [nghttp2_nv] = [
            H2Nv.make(":status", p + meta, statusEnd - meta),
            H2Nv.make("content-type", "application/json"),
            H2Nv.make("cache-control", "no-store"),
            H2Nv.make("content-length", p + statusEnd, lengthEnd - statusEnd),
            H2Nv.make("x-request-id", id, 32),
        ]
        // HEAD: the same head, no body (RFC 9110 §9.3.2).
        let head = block.methodLength == 4 && H2HeaderBlock.equal(block.bytes + block.methodStart, "HEAD")
        o.end = head ? 0 : bodyLength
        s.out = o
        s.outputEnded = true
        s.headSubmitted = true
        let rv = nva.withUnsafeBufferPointer {
            csh2_submit_response(h2, s.id, $0.baseAddress, $0.count, Unmanaged.passUnretained(s).toOpaque(), H2Setup.readBody)
        }
        if rv != 0 { resetStream(s, error: NGHTTP2_INTERNAL_ERROR.rawValue) }
        worker.log.error(code, status: status, requestID: id, requestIDLength: 32, client: clientIP, clientLength: clientIPLength)
        if worker.log.accessEnabled {
            // "METHOD target" from the pseudo-header fields of the block just decoded.
            var line = buffers.take()
            line.append(block.bytes + block.methodStart, min(block.methodLength, 64))
            line.append(byte: 0x20)
            line.append(block.bytes + block.pathStart, min(block.pathLength, 512))
            worker.log.accessDirect(client: clientIP, clientLength: clientIPLength, request: line.readPointer, requestLength: line.count,
                                    status: status, bytesIn: s.headerListSize, bytesOut: bodyLength, requestID: id, requestIDLength: 32)
            buffers.give(line)
        }
        worker.stats.request(route: worker.stats.routeCount - 1, status: status, micros: 0)
        needsFlush()
    }
}

/// The pseudo-header fields and cookies of the header block being decoded.
final class H2HeaderBlock {
    let bytes: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var length = 0
    var methodStart = 0, methodLength = 0
    var pathStart = 0, pathLength = 0
    var authorityStart = 0, authorityLength = 0
    var protocolStart = 0, protocolLength = 0
    /// The Host field's value, kept when there is no :authority (for the 421 check).
    var hostStart = 0, hostLength = 0
    var cookie: IOBuffer?

    init(capacity: Int) {
        self.capacity = capacity
        bytes = .allocate(capacity: capacity)
    }

    deinit { bytes.deallocate() }

    /// Forgets the block (a new one starts, or the connection ends): nothing of one request may
    /// reach the next, whoever sends it.
    func reset(_ buffers: BufferPool) {
        if let c = cookie { buffers.give(c); cookie = nil }
        length = 0
        methodLength = 0
        pathLength = 0
        authorityLength = 0
        protocolLength = 0
        hostLength = 0
    }

    /// Records a pseudo-header field (nghttp2 has checked which are allowed). False when the
    /// values together are longer than a request line may be.
    func pseudo(_ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        guard length + n <= capacity else { return false }
        let start = length
        (bytes + start).update(from: value, count: n)
        length += n
        switch nameLength {
        case 5 where H2HeaderBlock.equal(name, ":path"): pathStart = start; pathLength = n
        case 7 where H2HeaderBlock.equal(name, ":method"): methodStart = start; methodLength = n
        case 9 where H2HeaderBlock.equal(name, ":protocol"): protocolStart = start; protocolLength = n
        case 10 where H2HeaderBlock.equal(name, ":authority"): authorityStart = start; authorityLength = n
        default: length = start  // :scheme: the listener decides X-Forwarded-Proto
        }
        return true
    }

    func recordHost(_ value: UnsafePointer<UInt8>, _ n: Int) {
        guard hostLength == 0, length + n <= capacity else { return }
        (bytes + length).update(from: value, count: n)
        hostStart = length
        hostLength = n
        length += n
    }

    func addCookie(_ value: UnsafePointer<UInt8>, _ n: Int, _ buffers: BufferPool) -> Bool {
        if cookie == nil { cookie = buffers.take() }
        let sep = cookie!.count > 0 ? 2 : 0
        guard cookie!.writableCount >= n + sep else { return false }
        if sep > 0 { cookie!.append("; ") }
        cookie!.append(value, n)
        return true
    }

    @inline(__always)
    static func equal(_ p: UnsafePointer<UInt8>, _ s: StaticString) -> Bool {
        memcmp(p, s.utf8Start, s.utf8CodeUnitCount) == 0
    }

    static func equalLower(_ p: UnsafePointer<UInt8>, _ s: StaticString) -> Bool {
        let t = s.utf8Start
        for i in 0..<s.utf8CodeUnitCount where (p[i] | 0x20) != t[i] { return false }
        return true
    }

    /// The host of an authority: without a port, brackets kept off an IPv6 literal.
    static func hostOnly(_ a: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var n = a.count
        if n > 0 && a[0] == UInt8(ascii: "[") {
            var i = 1
            while i < n && a[i] != UInt8(ascii: "]") { i += 1 }
            return UnsafeRawBufferPointer(rebasing: a[1..<i])
        }
        var i = n - 1
        while i >= 0 && a[i] >= 0x30 && a[i] <= 0x39 { i -= 1 }
        if i >= 0 && i < n - 1 && a[i] == UInt8(ascii: ":") { n = i }
        return UnsafeRawBufferPointer(rebasing: a[0..<n])
    }
}

/// Base64 (RFC 4648 §4) of 16 bytes: 24 characters, the last two "==".
enum Base64 {
    static func encode16(_ p: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<UInt8>) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        let a = alphabet.utf8Start
        var o = 0
        var i = 0
        while i + 3 <= 15 {
            let v = UInt32(p[i]) << 16 | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2])
            out[o] = a[Int(v >> 18)]
            out[o + 1] = a[Int(v >> 12 & 63)]
            out[o + 2] = a[Int(v >> 6 & 63)]
            out[o + 3] = a[Int(v & 63)]
            o += 4
            i += 3
        }
        let v = UInt32(p[15]) << 16
        out[o] = a[Int(v >> 18)]
        out[o + 1] = a[Int(v >> 12 & 63)]
        out[o + 2] = 0x3D
        out[o + 3] = 0x3D
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine

/// Properties every successfully parsed head must have, whatever bytes produced it. The fuzz test
/// and the stream driver check them on every head; each returns its violations as text.
enum Invariants {
    static func request(_ h: RequestHead, _ headers: HeaderTable, _ p: UnsafePointer<UInt8>,
                        start: Int, end: Int) -> [String] {
        var v: [String] = []
        func inside(_ s: Int, _ n: Int, _ what: String) -> Bool {
            if s < start || n < 0 || s + n > end - 2 {
                v.append("\(what) range \(s)+\(n) outside head \(start)..<\(end)")
                return false
            }
            return true
        }
        if h.methodStart != start || h.methodLength <= 0 { v.append("method range \(h.methodStart)+\(h.methodLength)") }
        if inside(h.methodStart, h.methodLength, "method") {
            for i in 0..<h.methodLength where !ByteClass.isToken(p[h.methodStart + i]) { v.append("non-token method byte") }
        }
        if inside(h.pathStart, h.pathLength, "path") {
            for i in 0..<h.pathLength where !ByteClass.isTarget(p[h.pathStart + i]) { v.append("bad byte in path") }
        }
        if h.hostStart < 0 {
            if h.hostLength != 0 || h.hostNameLength != 0 { v.append("host lengths without a host") }
            if h.version == 11 { v.append("HTTP/1.1 head without a host") }
        } else if inside(h.hostStart, h.hostLength, "host") {
            if h.hostNameLength < 0 || h.hostNameLength > h.hostLength { v.append("host name longer than host") }
            for i in 0..<h.hostLength where !isHostByte(p[h.hostStart + i]) { v.append("bad byte in host") }
        }
        if h.requestIDStart >= 0, inside(h.requestIDStart, h.requestIDLength, "request id") {
            if !RequestHead.validRequestID(p + h.requestIDStart, h.requestIDLength) { v.append("invalid request id kept") }
        }
        if h.version != 10 && h.version != 11 { v.append("version \(h.version)") }
        if h.keepAlive10 && (h.version != 10 || h.close) { v.append("keepAlive10 on \(h.version) close=\(h.close)") }
        if h.version == 10 && !h.keepAlive10 && !h.close { v.append("1.0 without keep-alive stays open") }
        if h.expectContinue && h.version != 11 { v.append("expectContinue on 1.0") }
        if h.method == .connect { v.append("CONNECT accepted") }
        v += fields(headers, p, start: start, end: end)

        var hasTE = false, length: UInt64? = nil
        for i in 0..<headers.count {
            let f = headers[i]
            if f.kind == .transferEncoding { hasTE = true }
            if f.kind == .contentLength {
                if length != nil { v.append("two Content-Length accepted") }
                length = decimal(p + Int(f.valueStart), Int(f.valueLength))
                if length == nil { v.append("non-numeric Content-Length accepted") }
            }
        }
        switch h.framing {
        case .chunked:
            if !hasTE || length != nil || h.version != 11 { v.append("chunked without a clean TE") }
        case .length(let n):
            if hasTE || length != n || n == 0 { v.append("length \(n) disagrees with fields") }
        case .none:
            if hasTE || (length ?? 0) != 0 { v.append("no body despite framing fields") }
        case .untilClose:
            v.append("request framed until close")
        }
        return v
    }

    static func response(_ h: ResponseHead, _ headers: HeaderTable, _ p: UnsafePointer<UInt8>,
                         start: Int, end: Int, method: Method) -> [String] {
        var v: [String] = []
        if h.status < 100 || h.status > 599 { v.append("status \(h.status)") }
        if h.version != 10 && h.version != 11 { v.append("version \(h.version)") }
        if h.reasonStart < start || h.reasonLength < 0 || h.reasonStart + h.reasonLength > end - 2 {
            v.append("reason range \(h.reasonStart)+\(h.reasonLength) outside head")
        } else {
            for i in 0..<h.reasonLength {
                let c = p[h.reasonStart + i]
                if c != 0x09 && (c < 0x20 || c == 0x7F) { v.append("control byte in reason") }
            }
        }
        let bodiless = method == .head || h.isInterim || h.status == 204 || h.status == 304
        if bodiless && h.framing != .none { v.append("body on a bodiless response") }
        if h.framing == .untilClose && !h.close { v.append("untilClose without close") }
        if h.framing == .chunked && h.version != 11 { v.append("chunked 1.0 response") }
        if h.version == 10 && !h.close {
            var keepAlive = false
            for i in 0..<headers.count where headers[i].kind == .connection { keepAlive = true }
            if !keepAlive { v.append("1.0 response kept open without Connection") }
        }
        v += fields(headers, p, start: start, end: end)
        return v
    }

    /// Every field lies inside the head; names are tokens followed by ':'; values are trimmed
    /// field-value bytes (so no CR, LF or NUL can reach the next hop); kinds match the names.
    static func fields(_ headers: HeaderTable, _ p: UnsafePointer<UInt8>, start: Int, end: Int) -> [String] {
        var v: [String] = []
        if headers.count < 0 || headers.count > headers.capacity { v.append("header count \(headers.count)") }
        for i in 0..<min(max(headers.count, 0), headers.capacity) {
            let f = headers[i]
            let ns = Int(f.nameStart), nl = Int(f.nameLength), vs = Int(f.valueStart), vl = Int(f.valueLength)
            guard ns >= start, nl > 0, ns + nl < end - 2, vs > ns + nl, vl >= 0, vs + vl <= end - 2 else {
                v.append("field \(i) ranges name \(ns)+\(nl) value \(vs)+\(vl) outside head \(start)..<\(end)")
                continue
            }
            for j in 0..<nl where !ByteClass.isToken(p[ns + j]) { v.append("field \(i): non-token name byte") }
            if p[ns + nl] != 0x3A { v.append("field \(i): name not followed by ':'") }
            for j in 0..<vl where !ByteClass.isFieldValue(p[vs + j]) { v.append("field \(i): bad value byte") }
            if vl > 0 {
                let first = p[vs], last = p[vs + vl - 1]
                if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { v.append("field \(i): untrimmed value") }
            }
            if f.kind != HeaderKind.classify(p + ns, nl) { v.append("field \(i): kind \(f.kind) for its name") }
            if f.dropped && f.kind != .other { v.append("field \(i): \(f.kind) dropped by Connection") }
        }
        return v
    }

    private static func decimal(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64? {
        guard n > 0 && n <= 19 else { return nil }
        var x: UInt64 = 0
        for i in 0..<n {
            guard p[i] >= 0x30 && p[i] <= 0x39 else { return nil }
            x = x * 10 + UInt64(p[i] - 0x30)
        }
        return x
    }
}

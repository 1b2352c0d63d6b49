/// How a message body ends (RFC 9112 §6.3).
public enum BodyFraming: Equatable, Sendable {
    case none
    case length(UInt64)
    case chunked
    /// Response only: the body runs until the upstream closes.
    case untilClose
}

/// Shared framing rules for requests and responses: one Content-Length of digits only, a
/// Transfer-Encoding of exactly `chunked`, never both.
public enum FramingRules {
    /// Largest Content-Length accepted (2^53): far above any real body, far below overflow.
    public static let maxContentLength: UInt64 = 1 << 53

    @inlinable @inline(__always)
    public static func contentLength(_ p: UnsafePointer<UInt8>, _ f: HeaderField) throws(HTTPError) -> UInt64 {
        let s = Int(f.valueStart), n = Int(f.valueLength)
        if n == 0 || n > 16 { throw .badContentLength }
        var v: UInt64 = 0
        for i in s..<(s + n) {
            let b = p[i]
            guard b >= 0x30 && b <= 0x39 else { throw .badContentLength }
            v = v * 10 + UInt64(b - 0x30)
        }
        if v > maxContentLength { throw .badContentLength }
        return v
    }

    /// Looks at every Content-Length and Transfer-Encoding field of a head.
    /// Returns the Content-Length (if any), whether Transfer-Encoding was present, whether it ends in
    /// exactly one `chunked`, and whether any other coding (or a second chunked) appears in it.
    public static func scan(_ p: UnsafePointer<UInt8>, _ headers: HeaderTable) throws(HTTPError)
        -> (length: UInt64?, te: Bool, chunked: Bool, other: Bool) {
        if !headers.has(.transferEncoding) {
            if !headers.has(.contentLength) { return (nil, false, false, false) }
            // One Content-Length and no Transfer-Encoding (the usual case): no walk.
            if headers.hasOne(.contentLength) {
                return (try contentLength(p, headers[headers.lastIndex(.contentLength)]), false, false, false)
            }
        }
        var length: UInt64? = nil
        var te = false
        var chunkedCount = 0
        var lastIsChunked = false
        var other = false
        for i in 0..<headers.count {
            let f = headers[i]
            switch f.kind {
            case .contentLength:
                if length != nil { throw .duplicateContentLength }
                length = try contentLength(p, f)
            case .transferEncoding:
                te = true
                var sawAny = false
                forEachListElement(p, Int(f.valueStart), Int(f.valueLength)) { s, n in
                    sawAny = true
                    if ByteClass.equalsLower(p + s, n, "chunked") {
                        chunkedCount += 1
                        lastIsChunked = true
                    } else {
                        lastIsChunked = false
                        other = true
                    }
                }
                if !sawAny { throw .badTransferEncoding }
            default:
                continue
            }
        }
        return (length, te, chunkedCount == 1 && lastIsChunked, other || chunkedCount > 1)
    }
}

/// A parsed response head from an upstream, with the framing of its body (RFC 9112 §6.3).
/// Anything malformed throws: the gateway answers 502 and never passes a bad response on.
public struct ResponseHead {
    public var status = 0
    public var version: UInt8 = 11
    /// Offsets of the reason phrase (may be empty).
    public var reasonStart = 0, reasonLength = 0
    public var framing: BodyFraming = .none
    /// The upstream will close (or wants us to): the connection cannot return to the pool.
    public var close = false

    public init() {}

    public var isInterim: Bool { status >= 100 && status < 200 }

    /// Parses `p[start..<end]`. `requestMethod` decides whether a body can follow (HEAD cannot).
    public static func parse(_ p: UnsafePointer<UInt8>, start: Int, end: Int, headers: HeaderTable,
                             requestMethod: Method) throws(HTTPError) -> ResponseHead {
        var h = ResponseHead()
        var i = start
        // "HTTP/1.x" SP 3DIGIT [SP reason-phrase] CRLF; "HTTP/1.1" in one word compare first.
        if end - i >= 14
            && UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)) == RequestHead.httpSlash11
            && p[i + 8] == 0x20 {
            h.version = 11
        } else {
            guard end - i >= 14,
              p[i] == 0x48, p[i + 1] == 0x54, p[i + 2] == 0x54, p[i + 3] == 0x50, p[i + 4] == 0x2F,
              p[i + 5] == 0x31, p[i + 6] == 0x2E, p[i + 7] == 0x31 || p[i + 7] == 0x30,
              p[i + 8] == 0x20 else { throw .badStatusLine }
            h.version = p[i + 7] == 0x31 ? 11 : 10
        }
        i += 9
        var status = 0
        for k in 0..<3 {
            let d = p[i + k]
            guard d >= 0x30 && d <= 0x39 else { throw .badStatus }
            status = status * 10 + Int(d - 0x30)
        }
        guard status >= 100 && status <= 599 else { throw .badStatus }
        h.status = status
        i += 3
        if p[i] == 0x20 {
            i += 1
            h.reasonStart = i
            while p[i] != 0x0D {
                let b = p[i]
                if b != 0x09 && (b < 0x20 || b == 0x7F) { throw .badStatusLine }
                i += 1
            }
            h.reasonLength = i - h.reasonStart
        }
        guard p[i] == 0x0D && p[i + 1] == 0x0A else { throw .badStatusLine }
        i += 2

        try headers.parse(p, from: i, to: end - 2)
        let framing = try FramingRules.scan(p, headers)
        let options = headers.applyConnectionOptions(p)
        h.close = options.close || (h.version == 10 && !options.keepAlive)

        if requestMethod == .head || h.isInterim || status == 204 || status == 304 {
            h.framing = .none
            return h
        }
        if framing.te {
            // Both framings at once is how smuggling works: refuse rather than pick one.
            if framing.length != nil { throw .contentLengthWithTransferEncoding }
            if h.version == 10 { throw .transferEncodingInHTTP10 }
            if framing.chunked {
                h.framing = .chunked
            } else {
                // RFC 9112 §6.3 (4): not chunked-final -> the body runs to the close.
                h.framing = .untilClose
                h.close = true
            }
        } else if let n = framing.length {
            h.framing = n == 0 ? .none : .length(n)
        } else {
            h.framing = .untilClose
            h.close = true
        }
        return h
    }
}

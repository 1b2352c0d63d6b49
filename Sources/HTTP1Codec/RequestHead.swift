import Glibc

/// Request methods the gateway treats specially; the rest pass through as `.other`.
public enum Method: UInt8, Sendable {
    case get, head, post, put, delete, options, trace, patch, connect, other

    /// RFC 9110 §9.2.2: a retry of these cannot change the outcome.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        default: return false
        }
    }

    public static func classify(_ p: UnsafePointer<UInt8>, _ n: Int) -> Method {
        // Methods are case-sensitive (RFC 9110 §9.1).
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            n == s.utf8CodeUnitCount && memcmp(p, s.utf8Start, n) == 0
        }
        switch n {
        case 3: return eq("GET") ? .get : eq("PUT") ? .put : .other
        case 4: return eq("HEAD") ? .head : eq("POST") ? .post : .other
        case 5: return eq("PATCH") ? .patch : eq("TRACE") ? .trace : .other
        case 6: return eq("DELETE") ? .delete : .other
        case 7: return eq("OPTIONS") ? .options : eq("CONNECT") ? .connect : .other
        default: return .other
        }
    }
}

/// A parsed request head: offsets into the buffer it was parsed from, plus what the gateway
/// decided about framing and connection handling. Header fields are in the worker's HeaderTable.
public struct RequestHead {
    public var method: Method = .other
    public var methodStart = 0, methodLength = 0
    /// The path and query to send upstream (origin-form). Empty means "/".
    public var pathStart = 0, pathLength = 0
    /// Host used for routing and X-Forwarded-Host: the absolute-form authority, else Host. -1: none.
    public var hostStart = -1, hostLength = 0
    /// Host without its port, for route matching.
    public var hostNameLength = 0
    /// 10 or 11.
    public var version: UInt8 = 11
    public var framing: BodyFraming = .none
    /// The client wants the connection closed after this exchange.
    public var close = false
    /// HTTP/1.0 client asked for keep-alive.
    public var keepAlive10 = false
    public var expectContinue = false
    /// The client asks to switch protocols (RFC 9110 §7.8): an `Upgrade` field named by a
    /// `Connection: upgrade` option, on HTTP/1.1. Forwarded; a 101 turns the connection into a tunnel.
    public var upgrade = false
    /// A valid client X-Request-Id to keep; -1: none.
    public var requestIDStart = -1, requestIDLength = 0

    public init() {}

    /// Parses a complete head `p[start..<end]` (ending with the blank line's CRLF).
    public static func parse(_ p: UnsafePointer<UInt8>, start: Int, end: Int,
                             headers: HeaderTable) throws(HTTPError) -> RequestHead {
        var h = RequestHead()
        var i = start
        // method SP
        while i < end && ByteClass.isToken(p[i]) { i += 1 }
        if i == start || i >= end || p[i] != 0x20 { throw i == start ? .badRequestLine : .badMethod }
        h.methodStart = start
        h.methodLength = i - start
        h.method = Method.classify(p + start, h.methodLength)
        i += 1
        // request-target SP
        let targetStart = i
        while i < end && ByteClass.isTarget(p[i]) { i += 1 }
        let targetLength = i - targetStart
        if targetLength == 0 || i >= end || p[i] != 0x20 { throw .badTarget }
        i += 1
        // HTTP-version CRLF; "HTTP/1.1" CRLF (nearly every request) in one word compare first.
        if end - i >= 10 && UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)) == httpSlash11
            && p[i + 8] == 0x0D && p[i + 9] == 0x0A {
            h.version = 11
        } else {
            try parseVersion(p, i, end, &h)
        }
        i += 10

        if h.method == .connect { throw .methodNotImplemented }
        try h.parseTarget(p, targetStart, targetLength)

        let headersEnd = end - 2
        try headers.parse(p, from: i, to: headersEnd)
        try h.interpretFields(p, headers)
        return h
    }

    /// "HTTP/1.1" as a little-endian word.
    public static let httpSlash11: UInt64 = 0x312E_312F_5054_5448

    private static func parseVersion(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int,
                                     _ h: inout RequestHead) throws(HTTPError) {
        guard end - i >= 10,
              p[i] == 0x48, p[i + 1] == 0x54, p[i + 2] == 0x54, p[i + 3] == 0x50, p[i + 4] == 0x2F,
              p[i + 6] == 0x2E, p[i + 8] == 0x0D, p[i + 9] == 0x0A else { throw .badVersion }
        let major = p[i + 5], minor = p[i + 7]
        guard major >= 0x30 && major <= 0x39 && minor >= 0x30 && minor <= 0x39 else { throw .badVersion }
        if major != 0x31 || (minor != 0x31 && minor != 0x30) { throw .versionNotSupported }
        h.version = minor == 0x31 ? 11 : 10
    }

    private mutating func parseTarget(_ p: UnsafePointer<UInt8>, _ s: Int, _ n: Int) throws(HTTPError) {
        if p[s] == 0x2F {  // origin-form
            pathStart = s; pathLength = n
            return
        }
        if n == 1 && p[s] == 0x2A {  // asterisk-form, OPTIONS only (RFC 9112 §3.2.4)
            if method != .options { throw .badTarget }
            pathStart = s; pathLength = 1
            return
        }
        // absolute-form (RFC 9112 §3.2.2): scheme "://" authority [path-abempty] [ "?" query ]
        var i = s
        let end = s + n
        let schemeLength: Int
        if n > 7 && ByteClass.equalsLower(p + s, 7, "http://") { schemeLength = 7 }
        else if n > 8 && ByteClass.equalsLower(p + s, 8, "https://") { schemeLength = 8 }
        else { throw .badTarget }
        i += schemeLength
        let authority = i
        while i < end && p[i] != 0x2F && p[i] != 0x3F { i += 1 }
        if i == authority { throw .badTarget }
        for j in authority..<i where !isHostByte(p[j]) { throw .badTarget }
        hostStart = authority
        hostLength = i - authority
        pathStart = i
        pathLength = end - i
    }

    private mutating func interpretFields(_ p: UnsafePointer<UInt8>, _ headers: HeaderTable) throws(HTTPError) {
        if headers.hostCount > 1 { throw .duplicateHost }
        let hostField = headers.hostIndex
        var requestIDs = 0
        if headers.has(.expect) || headers.has(.xRequestID) {
            for i in 0..<headers.count {
                let f = headers[i]
                switch f.kind {
                case .expect:
                    guard ByteClass.equalsLower(p + Int(f.valueStart), Int(f.valueLength), "100-continue")
                    else { throw .expectationFailed }
                    // RFC 9110 §10.1.1: a 1.0 client cannot expect 100-continue; ignore it there.
                    expectContinue = version == 11
                case .xRequestID:
                    requestIDs += 1
                    requestIDStart = Int(f.valueStart)
                    requestIDLength = Int(f.valueLength)
                default:
                    continue
                }
            }
        }
        let classes = headers.byteClasses
        if hostField < 0 {
            if version == 11 { throw .missingHost }
        } else {
            let f = headers[hostField]
            if hostStart < 0 {
                // Its bytes are checked by the split below.
                hostStart = Int(f.valueStart)
                hostLength = Int(f.valueLength)
            } else {
                for j in Int(f.valueStart)..<Int(f.valueStart + f.valueLength)
                where classes[Int(p[j])] & HeaderTable.hostByte == 0 { throw .badHost }
            }
        }
        hostNameLength = hostLength
        if hostLength > 0 {
            // Split "name[:port]" (RFC 9110 §7.2); an IPv6 literal keeps its colons inside [].
            let e = hostStart + hostLength
            if p[hostStart] == 0x5B {
                for k in hostStart..<e where classes[Int(p[k])] & HeaderTable.hostByte == 0 { throw .badHost }
                var portStart = e
                var j = hostStart + 1
                while j < e && p[j] != 0x5D { j += 1 }
                if j == e { throw .badHost }
                hostNameLength = j + 1 - hostStart
                if j + 1 < e {
                    if p[j + 1] != 0x3A { throw .badHost }
                    portStart = j + 2
                }
                for k in portStart..<e where p[k] < 0x30 || p[k] > 0x39 { throw .badHost }
            } else {
                // One pass: every byte a host byte (RFC 3986 §3.2.2), no bracket anywhere (a bracket
                // in the port is not a digit either), at most one colon, a non-empty name and
                // digits after the colon.
                var colons = 0, lastColon = -1, lastNonDigit = -1, brackets = false
                for k in hostStart..<e {
                    let c = classes[Int(p[k])]
                    if c & HeaderTable.hostByte == 0 { throw .badHost }
                    if c & HeaderTable.digit == 0 {
                        lastNonDigit = k
                        if c & HeaderTable.hostDelimiter != 0 {
                            if p[k] == 0x3A { colons &+= 1; lastColon = k } else { brackets = true }
                        }
                    }
                }
                if brackets || colons > 1 || lastColon == hostStart { throw .badHost }
                if lastColon >= 0 {
                    if lastNonDigit > lastColon { throw .badHost }
                    hostNameLength = lastColon - hostStart
                }
            }
        }
        if requestIDs != 1 || !Self.validRequestID(p + requestIDStart, requestIDLength) {
            requestIDStart = -1; requestIDLength = 0
        }

        let framingFields = try FramingRules.scan(p, headers)
        if framingFields.te {
            if framingFields.length != nil { throw .contentLengthWithTransferEncoding }
            if version == 10 { throw .transferEncodingInHTTP10 }
            // RFC 9112 §6.1: chunked not final (or twice) -> 400; a final chunked behind codings
            // we do not forward -> 501.
            if !framingFields.chunked { throw .badTransferEncoding }
            if framingFields.other { throw .unsupportedTransferEncoding }
            framing = .chunked
        } else if let n = framingFields.length {
            framing = n == 0 ? .none : .length(n)
        } else {
            framing = .none
        }

        let options = headers.applyConnectionOptions(p)
        keepAlive10 = version == 10 && options.keepAlive && !options.close
        close = options.close || (version == 10 && !options.keepAlive)
        // An Upgrade without the Connection option (or on 1.0, RFC 9110 §7.8) is ignored: it is
        // hop-by-hop and dropped like the rest.
        upgrade = options.upgrade && version == 11 && headers.has(.upgrade)
    }

    public static func validRequestID(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        guard n >= 1 && n <= 128 else { return false }
        for i in 0..<n where !ByteClass.isRequestID(p[i]) { return false }
        return true
    }
}

/// Bytes allowed in a Host value or authority: reg-name, IP literals and a port (RFC 3986 §3.2.2).
@inlinable @inline(__always)
public func isHostByte(_ b: UInt8) -> Bool {
    if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) { return true }
    switch b {
    case 0x2D, 0x2E, 0x5F, 0x7E, 0x3A, 0x5B, 0x5D, 0x25, 0x21, 0x24, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x3B, 0x3D:
        return true
    default:
        return false
    }
}

import IOCore
import HTTP1Codec
import RouteResolver

/// Writes the heads the gateway sends: the rewritten request to the upstream, the rewritten
/// response to the client, and its own JSON error responses. Everything is appended into a pooled
/// buffer straight from the offsets of the parsed head; no String is built.
enum HeadWriter {
    /// Bytes a rewritten head may add to the original (Via, X-Forwarded-*, X-Request-Id, ...).
    static let overhead = 512

    /// Request to the upstream: origin-form target, Host kept, hop-by-hop fields and fields named
    /// in Connection dropped, X-Forwarded-For/Proto/Host, Via and X-Request-Id set.
    static func request(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ req: RequestHead,
                        _ headers: HeaderTable, clientIP: UnsafePointer<UInt8>, clientIPLength: Int,
                        requestID: UnsafePointer<UInt8>, requestIDLength: Int, https: Bool = false,
                        pod: PodLeg = .none, cluster: ClusterIdentity? = nil) {
        if req.version == 11 && req.pathStart == req.methodStart + req.methodLength + 1 && p[req.pathStart] == 0x2F {
            // Origin-form HTTP/1.1 (the path is the whole target): the request line is already
            // what we send (one SP after the method, one before the version, checked by the parser).
            b.append(p + req.methodStart, req.pathStart + req.pathLength + 11 - req.methodStart)
        } else {
            requestLine(into: &b, p, req)
        }
        // A first field "Host: <value>" CRLF, where the value is the host we route by, is the line
        // we would write in that place: it joins the run of fields copied as they are.
        var hostInPlace = false
        if headers.hostIndex == 0 {
            let f = headers.fields[0]
            hostInPlace = f.canonical && Int(f.valueStart) == req.hostStart && f.nameLength == 4
                && UnsafeRawPointer(p + Int(f.nameStart)).loadUnaligned(as: UInt32.self)
                    == UnsafeRawPointer(("Host" as StaticString).utf8Start).loadUnaligned(as: UInt32.self)
        }
        if req.hostStart >= 0 && !hostInPlace {
            b.append("Host: ")
            b.append(p + req.hostStart, req.hostLength)
            b.append("\r\n")
        }
        copyFields(into: &b, p, headers) { kind in
            switch kind {
            // Cookie has a kind of its own only so sticky routes can find their key in it.
            case .other, .contentLength, .transferEncoding, .trailer, .cookie: return true
            case .host: return hostInPlace
            default: return false
            }
        }
        if req.upgrade { appendUpgrade(into: &b, p, headers) }
        b.append("X-Forwarded-For: ")
        appendValues(into: &b, p, headers, .xForwardedFor)
        b.append(clientIP, clientIPLength)
        if req.hostStart >= 0 {
            b.append(https ? "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: " : "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
            b.append(p + req.hostStart, req.hostLength)
            b.append("\r\nVia: ")
        } else {
            b.append(https ? "\r\nX-Forwarded-Proto: https\r\nVia: " : "\r\nX-Forwarded-Proto: http\r\nVia: ")
        }
        appendValues(into: &b, p, headers, .via)
        b.append(req.version == 10 ? "1.0 switchyard\r\nX-Request-Id: " : "1.1 switchyard\r\nX-Request-Id: ")
        b.append(requestID, requestIDLength)
        if pod != .none, let cluster { appendCluster(into: &b, p, headers, pod, cluster) }
        b.append("\r\n\r\n")
    }

    /// A pod request's `X-Switchyard-Hop`: a proven center's chain extended by this center (a
    /// client's is never kept), so the pod server and the next center see every center it
    /// passed; towards another center also `X-Switchyard-Cluster`, the secret that proves it.
    private static func appendCluster(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ headers: HeaderTable,
                                      _ pod: PodLeg, _ cluster: ClusterIdentity) {
        b.append("\r\nX-Switchyard-Hop: ")
        if pod.trustedHops { appendValues(into: &b, p, headers, .switchyardHop) }
        b.append(cluster.nodeBytes)
        if case .center = pod {
            b.append("\r\nX-Switchyard-Cluster: ")
            b.append(cluster.secret)
        }
    }

    /// The request line rebuilt: origin-form target, HTTP/1.1.
    private static func requestLine(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ req: RequestHead) {
        b.append(p + req.methodStart, req.methodLength)
        b.append(byte: 0x20)
        if req.pathLength == 0 {
            b.append(byte: 0x2F)
        } else {
            if p[req.pathStart] == 0x3F { b.append(byte: 0x2F) }  // "http://h?q" -> "/?q"
            b.append(p + req.pathStart, req.pathLength)
        }
        b.append(" HTTP/1.1\r\n")
    }

    /// Response to the client, from the upstream's head.
    static func response(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ resp: ResponseHead,
                         _ headers: HeaderTable, dechunk: Bool, close: Bool, keepAlive10: Bool, switching: Bool = false,
                         extra: UnsafePointer<UInt8>, extraLength: Int,
                         requestID: UnsafePointer<UInt8>, requestIDLength: Int) {
        if resp.version == 11 && resp.reasonStart != 0 {
            // "HTTP/1.1 NNN reason": the upstream's status line is what we would write.
            let lineStart = resp.reasonStart - 13
            b.append(p + lineStart, resp.reasonStart + resp.reasonLength + 2 - lineStart)
        } else {
            b.append("HTTP/1.1 ")
            b.append(decimal: UInt64(resp.status))
            b.append(byte: 0x20)
            b.append(p + resp.reasonStart, resp.reasonLength)
            b.append("\r\n")
        }
        var sawRequestID = false
        copyFields(into: &b, p, headers) { kind in
            switch kind {
            case .other, .contentLength, .trailer, .xForwardedFor, .xForwardedProto, .xForwardedHost, .expect, .host, .cookie:
                return true
            case .xRequestID:
                sawRequestID = true
                return true
            case .transferEncoding:
                return !dechunk
            default:
                return false
            }
        }
        b.append("Via: ")
        appendValues(into: &b, p, headers, .via)
        b.append(resp.version == 10 ? "1.0 switchyard\r\n" : "1.1 switchyard\r\n")
        if extraLength > 0 { b.append(extra, extraLength) }
        if !sawRequestID {
            b.append("X-Request-Id: ")
            b.append(requestID, requestIDLength)
            b.append("\r\n")
        }
        if switching {
            appendUpgrade(into: &b, p, headers)
        } else if close {
            b.append("Connection: close\r\n")
        } else if keepAlive10 {
            b.append("Connection: keep-alive\r\n")
        }
        b.append("\r\n")
    }

    /// `308 Permanent Redirect` to `https://host[:port]<path>`, no body. False when it does not
    /// fit the buffer (the caller answers 414 instead).
    static func redirect(into b: inout IOBuffer, host: UnsafePointer<UInt8>, hostLength: Int, port: UInt16,
                         path: UnsafePointer<UInt8>, pathLength: Int, close: Bool,
                         requestID: UnsafePointer<UInt8>, requestIDLength: Int) -> Bool {
        guard hostLength + pathLength + requestIDLength + 200 <= b.writableCount else { return false }
        b.append("HTTP/1.1 308 Permanent Redirect\r\nLocation: https://")
        b.append(host, hostLength)
        if port != 443 {
            b.append(byte: 0x3A)
            b.append(decimal: UInt64(port))
        }
        if pathLength == 0 || path[0] != 0x2F { b.append(byte: 0x2F) }
        b.append(path, pathLength)
        b.append("\r\nContent-Length: 0\r\nX-Request-Id: ")
        b.append(requestID, requestIDLength)
        b.append(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
        return true
    }

    /// A direct-mode edge node's 307: `Location` is its public address plus the request's path
    /// and query (the seed's EdgeNodeRedirectHttpHandler). 307 keeps the method and body.
    static func edgeRedirect(into b: inout IOBuffer, base: [UInt8], path: UnsafePointer<UInt8>, pathLength: Int, close: Bool,
                             requestID: UnsafePointer<UInt8>, requestIDLength: Int) -> Bool {
        guard base.count + pathLength + requestIDLength + 200 <= b.writableCount else { return false }
        b.append("HTTP/1.1 307 Temporary Redirect\r\nLocation: ")
        b.append(base)
        if pathLength == 0 || path[0] != 0x2F { b.append(byte: 0x2F) }
        b.append(path, pathLength)
        b.append("\r\nContent-Length: 0\r\nX-Request-Id: ")
        b.append(requestID, requestIDLength)
        b.append(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
        return true
    }

    /// The gateway's own error: a short JSON body naming the reason and the request id.
    /// `body: false` (a HEAD request): the same head, Content-Length included, and no body
    /// (RFC 9110 §9.3.2).
    static func error(into b: inout IOBuffer, status: Int, code: StaticString, close: Bool, retryAfter: Int = 0,
                      owner: String? = nil, requestID: UnsafePointer<UInt8>, requestIDLength: Int, body: Bool = true) {
        b.append("HTTP/1.1 ")
        b.append(decimal: UInt64(status))
        b.append(byte: 0x20)
        b.append(reason(status))
        b.append("\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: ")
        // {"error":"<code>","request_id":"<id>"}\n
        var bodyLength = 10 + code.utf8CodeUnitCount + 16 + requestIDLength + 3
        // ,"owner":"<name>" (node names are [A-Za-z0-9._-]: nothing to escape)
        if let owner { bodyLength += 11 + min(owner.utf8.count, 64) }
        b.append(decimal: UInt64(bodyLength))
        if retryAfter > 0 {
            b.append("\r\nRetry-After: ")
            b.append(decimal: UInt64(retryAfter))
        }
        b.append("\r\nX-Request-Id: ")
        b.append(requestID, requestIDLength)
        b.append(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
        if body { errorBody(into: &b, code: code, owner: owner, requestID: requestID, requestIDLength: requestIDLength) }
    }

    /// The gateway's own error body (HTTP/1.1 and HTTP/2): `{"error":"<code>","request_id":"<id>"}` and a newline
    /// (with `"owner"` for a pod's owning center).
    static func errorBody(into b: inout IOBuffer, code: StaticString, owner: String? = nil, requestID: UnsafePointer<UInt8>,
                          requestIDLength: Int) {
        b.append("{\"error\":\"")
        b.append(code)
        if let owner {
            b.append("\",\"owner\":\"")
            b.append(Array(owner.utf8.prefix(64)))
        }
        b.append("\",\"request_id\":\"")
        b.append(requestID, requestIDLength)
        b.append("\"}\n")
    }

    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 508: return "Loop Detected"
        default: return "Error"
        }
    }

    @inline(__always)
    private static func copyFields(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ headers: HeaderTable,
                                   _ keep: (HeaderKind) -> Bool) {
        let n = headers.count
        var i = 0
        while i < n {
            let f = headers.fields[i]
            i += 1
            if f.dropped || !keep(f.kind) { continue }
            if !f.canonical {
                b.append(p + Int(f.nameStart), Int(f.nameLength))
                b.append(": ")
                b.append(p + Int(f.valueStart), Int(f.valueLength))
                b.append("\r\n")
                continue
            }
            // Consecutive fields are consecutive lines: a run of kept canonical ones is one copy.
            // (`keep` is asked once per field: it may count what it sees.)
            var runEnd = Int(f.valueStart + f.valueLength) + 2
            while i < n {
                let g = headers.fields[i]
                if g.dropped || !g.canonical { break }
                i += 1
                if !keep(g.kind) { break }
                runEnd = Int(g.valueStart + g.valueLength) + 2
            }
            b.append(p + Int(f.nameStart), runEnd - Int(f.nameStart))
        }
    }

    /// `Connection: upgrade` and the Upgrade field(s) as one list: the hop-by-hop pair a protocol
    /// switch needs on the next hop (RFC 9110 §7.8), rebuilt rather than passed through.
    private static func appendUpgrade(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ headers: HeaderTable) {
        b.append("Connection: upgrade\r\nUpgrade: ")
        var first = true
        for i in 0..<headers.count where headers.fields[i].kind == .upgrade && headers.fields[i].valueLength > 0 {
            let f = headers.fields[i]
            if !first { b.append(", ") }
            first = false
            b.append(p + Int(f.valueStart), Int(f.valueLength))
        }
        b.append("\r\n")
    }

    /// Appends every value of the fields of `kind`, each followed by ", " (for list fields we extend).
    @inline(__always)
    private static func appendValues(into b: inout IOBuffer, _ p: UnsafePointer<UInt8>, _ headers: HeaderTable,
                                     _ kind: HeaderKind) {
        if !headers.has(kind) { return }  // the common case: no such field, no walk
        for i in 0..<headers.count where headers.fields[i].kind == kind && headers.fields[i].valueLength > 0 {
            let f = headers.fields[i]
            b.append(p + Int(f.valueStart), Int(f.valueLength))
            b.append(", ")
        }
    }
}

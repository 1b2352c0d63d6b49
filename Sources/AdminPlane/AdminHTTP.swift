import Foundation
import HTTP1Codec
import IOCore

/// One request to the admin listener, parsed by the engine's own strict HTTP/1.1 parser.
public struct AdminRequest: Sendable {
    public let method: String
    /// Path segments, percent-decoded (`/admin/nodes/a` → ["admin", "nodes", "a"]).
    public let segments: [String]
    public let query: [String: String]
    /// Header fields, names lowercased, in order.
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]
    /// The client's address as text.
    public let peer: String

    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}

/// A response the admin plane sends.
public struct AdminResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)] = []
    public var body: [UInt8] = []
    public var contentType = "application/json"

    public init(status: Int, body: [UInt8] = [], contentType: String = "application/json") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }

    /// A JSON document (keys sorted, so answers are stable and diffable).
    public static func json(_ status: Int, _ object: Any) -> AdminResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return AdminResponse(status: status, body: Array(data) + [0x0A])
    }

    /// `{"error": "...", "field": "..."}`: what was wrong and, for bad input, where.
    public static func error(_ status: Int, _ message: String, field: String? = nil) -> AdminResponse {
        var o: [String: Any] = ["error": message]
        if let field { o["field"] = field }
        return json(status, o)
    }
}

/// Reads requests from one admin connection and writes the handler's answers, until the client
/// closes, asks to close, goes quiet (10 s), or has sent 100 requests. Blocking I/O on its own
/// thread: the admin plane serves operators and nodes, a few requests a second, never the
/// public traffic, so it keeps to plain code rather than a second event loop.
struct AdminConnection {
    static let maxHead = 64 * 1024
    static let maxBody = 1 << 20

    let fd: Int32
    let peer: String
    let handler: (AdminRequest) -> AdminResponse

    func run() {
        Sys.setTimeouts(fd, seconds: 10)
        let table = HeaderTable(capacity: 101)
        var buffer: [UInt8] = []
        for served in 1...100 {
            guard let headEnd = readHead(&buffer) else {
                if buffer.count >= Self.maxHead { answer(.error(431, "request head too large"), close: true) }
                return
            }
            let parsed = buffer.withUnsafeBufferPointer { p -> Result<RequestHead, HTTPError> in
                Result { () throws(HTTPError) -> RequestHead in
                    try RequestHead.parse(p.baseAddress!, start: 0, end: headEnd, headers: table)
                }
            }
            let head: RequestHead
            switch parsed {
            case .success(let h): head = h
            case .failure(let error):
                answer(.error(error.status, error.code.description), close: true)
                return
            }
            var length = 0
            switch head.framing {
            case .length(let n):
                guard n <= UInt64(Self.maxBody) else { answer(.error(413, "body larger than 1 MiB"), close: true); return }
                length = Int(n)
            case .chunked:
                answer(.error(411, "send the body with Content-Length"), close: true)
                return
            default:
                break
            }
            while buffer.count < headEnd + length {
                guard readMore(&buffer) else { return }
            }
            let request = makeRequest(head, table, buffer, headEnd: headEnd, length: length)
            buffer.removeFirst(headEnd + length)
            let response = handler(request)
            // The last request this connection serves says so (RFC 9112 §9.6).
            let last = head.close || served == 100
            guard answer(response, close: last) else { return }
            if last { return }
        }
    }

    private func makeRequest(_ head: RequestHead, _ table: HeaderTable, _ buffer: [UInt8],
                             headEnd: Int, length: Int) -> AdminRequest {
        func text(_ start: Int, _ count: Int) -> String {
            String(decoding: buffer[start..<(start + count)], as: UTF8.self)
        }
        let method = text(head.methodStart, head.methodLength)
        let target = text(head.pathStart, head.pathLength)
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let segments = parts.first.map { $0.split(separator: "/").map { percentDecode(String($0)) } } ?? []
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = percentDecode(String(kv[0]), plusIsSpace: true)
                // The first of a repeated parameter wins.
                if query[name] == nil { query[name] = kv.count == 2 ? percentDecode(String(kv[1]), plusIsSpace: true) : "" }
            }
        }
        var headers: [(name: String, value: String)] = []
        for i in 0..<table.count {
            let f = table.fields[i]
            headers.append((text(Int(f.nameStart), Int(f.nameLength)).lowercased(), text(Int(f.valueStart), Int(f.valueLength))))
        }
        return AdminRequest(method: method, segments: segments, query: query, headers: headers,
                            body: Array(buffer[headEnd..<(headEnd + length)]), peer: peer)
    }

    /// Reads until the buffer holds a whole head; returns its length (through the blank line).
    private func readHead(_ buffer: inout [UInt8]) -> Int? {
        var searched = 0
        while true {
            if buffer.count >= 4 {
                var i = max(searched, 3)
                while i < buffer.count {
                    if buffer[i] == 0x0A && buffer[i - 1] == 0x0D && buffer[i - 2] == 0x0A && buffer[i - 3] == 0x0D { return i + 1 }
                    i += 1
                }
                searched = buffer.count
            }
            if buffer.count >= Self.maxHead { return nil }
            guard readMore(&buffer) else { return nil }
        }
    }

    private func readMore(_ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        let r = chunk.withUnsafeMutableBytes { try? Sys.readBlocking(fd, $0.baseAddress!, $0.count) }
        guard case .bytes(let n)? = r else { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    @discardableResult
    private func answer(_ r: AdminResponse, close: Bool) -> Bool {
        var head = "HTTP/1.1 \(r.status) \(reason(r.status))\r\nContent-Type: \(r.contentType)\r\n"
        head += "Content-Length: \(r.body.count)\r\nCache-Control: no-store\r\n"
        for (name, value) in r.headers { head += "\(name): \(value)\r\n" }
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + r.body
        return bytes.withUnsafeBytes { Sys.writeAll(fd, $0) }
    }

    private func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

/// `%XX` decoding (and `+` as space in query strings). Malformed escapes stay as they are.
func percentDecode(_ s: String, plusIsSpace: Bool = false) -> String {
    let bytes = Array(s.utf8)
    if !bytes.contains(0x25) && !(plusIsSpace && bytes.contains(0x2B)) { return s }
    var out: [UInt8] = []
    var i = 0
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
    while i < bytes.count {
        if bytes[i] == 0x25, i + 2 < bytes.count, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(plusIsSpace && bytes[i] == 0x2B ? 0x20 : bytes[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

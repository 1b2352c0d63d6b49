import Glibc
import IOCore
import ProxyEngine

/// One answer of the admin listener.
struct AdminAnswer {
    let status: Int
    /// Header fields, names lowercased, in order.
    let headers: [(name: String, value: String)]
    let body: [UInt8]
}

/// The admin listener could not be talked to: no address, refused, timed out, hung up, or
/// answered something that is not HTTP/1.1. The CLI exits 3 for these.
struct AdminUnreachable: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A small blocking HTTP/1.1 client for the admin API: one request per connection
/// (`Connection: close`), a `Content-Length` body (the admin server always sends one; a body
/// delimited by close is read too), and one deadline for the whole exchange.
///
/// Plain POSIX sockets rather than URLSession: FoundationNetworking drags libcurl (and its TLS
/// and compression libraries) into `--static-swift-stdlib` links, for four requests an operator
/// makes by hand. The socket is non-blocking and every wait is a poll(2) against the deadline,
/// so a gateway that accepts and never answers costs `timeout`, not forever.
struct AdminHTTPClient {
    /// The host as written in the URL, without brackets ("127.0.0.1", "::1", "admin.internal").
    let host: String
    let port: UInt16
    /// Seconds for connect, send and receive together.
    let timeout: Double

    static let maxHead = 64 * 1024
    static let maxBody = 256 << 20

    /// "host:port" as the Host field and messages want it (IPv6 in brackets).
    var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func exchange(method: String, target: String, headers: [(String, String)] = [],
                  body: [UInt8]? = nil) throws(AdminUnreachable) -> AdminAnswer {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        let fd = try open(deadline)
        defer { Sys.close(fd) }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: switchyard-cli\r\n"
        head += "Accept: application/json\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method != "GET" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        try sendAll(fd, Array(head.utf8) + (body ?? []), deadline)
        return try receive(fd, deadline)
    }

    // MARK: - Connect

    /// Resolves the host (numeric or a name, getaddrinfo(3)) and connects to the first address
    /// that accepts.
    private func open(_ deadline: ContinuousClock.Instant) throws(AdminUnreachable) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw AdminUnreachable("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = AdminUnreachable("no address for \(host)")
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            cursor = ai.pointee.ai_next
            guard let address = ai.pointee.ai_addr else { continue }
            let fd: Int32
            do { fd = try Sys.socket(family: ai.pointee.ai_family) } catch {
                lastError = AdminUnreachable("socket: \(error)")
                continue
            }
            do {
                try connectWaiting(fd, address, ai.pointee.ai_addrlen, deadline)
                return fd
            } catch {
                Sys.close(fd)
                lastError = error
            }
        }
        throw lastError
    }

    /// A non-blocking connect, waited for with poll(2); the outcome is read from SO_ERROR.
    private func connectWaiting(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t,
                         _ deadline: ContinuousClock.Instant) throws(AdminUnreachable) {
        do {
            if try Sys.connect(fd, address, length) { return }
        } catch {
            throw AdminUnreachable("connect: \(error)")
        }
        try wait(fd, Int16(POLLOUT), deadline, "connect")
        let error = Sys.socketError(fd)
        if error != 0 { throw AdminUnreachable("connect: \(String(cString: strerror(error)))") }
    }

    /// Waits until `fd` is ready for `events` or the deadline passes (a timeout is unreachable).
    private func wait(_ fd: Int32, _ events: Int16, _ deadline: ContinuousClock.Instant,
                      _ what: String) throws(AdminUnreachable) {
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw AdminUnreachable("\(what): no answer within \(timeout) s") }
            let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(clamping: ms))
            if r > 0 { return }  // ready, or POLLERR/POLLHUP: the next call says which
            if r < 0 && errno != EINTR { throw AdminUnreachable("\(what): \(SysError("poll", errno))") }
        }
    }

    // MARK: - Send and receive

    private func sendAll(_ fd: Int32, _ bytes: [UInt8], _ deadline: ContinuousClock.Instant) throws(AdminUnreachable) {
        var sent = 0
        while sent < bytes.count {
            let result: IOResult
            do {
                result = try bytes.withUnsafeBytes { (p) throws(SysError) -> IOResult in
                    try Sys.write(fd, p.baseAddress! + sent, p.count - sent)
                }
            } catch {
                throw AdminUnreachable("send: \(error)")
            }
            switch result {
            case .bytes(let n): sent += n
            case .wouldBlock: try wait(fd, Int16(POLLOUT), deadline, "send")
            case .eof: throw AdminUnreachable("send: connection closed")
            }
        }
    }

    /// Reads into `buffer`; false at end of stream.
    private func readMore(_ fd: Int32, _ buffer: inout [UInt8], _ deadline: ContinuousClock.Instant) throws(AdminUnreachable) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let result: IOResult
            do {
                result = try chunk.withUnsafeMutableBytes { (p) throws(SysError) -> IOResult in
                    try Sys.read(fd, p.baseAddress!, p.count)
                }
            } catch {
                throw AdminUnreachable("receive: \(error)")
            }
            switch result {
            case .bytes(let n):
                buffer.append(contentsOf: chunk[0..<n])
                return true
            case .eof: return false
            case .wouldBlock: try wait(fd, Int16(POLLIN), deadline, "receive")
            }
        }
    }

    private func receive(_ fd: Int32, _ deadline: ContinuousClock.Instant) throws(AdminUnreachable) -> AdminAnswer {
        var buffer: [UInt8] = []
        var headEnd: Int?
        while headEnd == nil {
            guard try readMore(fd, &buffer, deadline) else {
                throw AdminUnreachable(buffer.isEmpty ? "the connection closed without an answer"
                                                      : "the connection closed in the middle of the answer's head")
            }
            headEnd = Self.findHeadEnd(buffer)
            if headEnd == nil && buffer.count > Self.maxHead { throw AdminUnreachable("answer head larger than 64 KiB") }
        }
        let (status, headers) = try Self.parseHead(buffer[0..<headEnd!])
        var body = Array(buffer[headEnd!...])
        let length = headers.first { $0.name == "content-length" }.map(\.value)
        if headers.contains(where: { $0.name == "transfer-encoding" }) {
            throw AdminUnreachable("the answer is chunked; the admin API sends Content-Length")
        }
        if let length {
            guard let n = Int(length), n >= 0, n <= Self.maxBody else { throw AdminUnreachable("bad Content-Length \(length)") }
            while body.count < n {
                guard try readMore(fd, &body, deadline) else {
                    throw AdminUnreachable("the connection closed after \(body.count) of \(n) body bytes")
                }
            }
            body.removeSubrange(n...)
        } else {
            // Delimited by close (RFC 9112 6.3, last rule).
            while try readMore(fd, &body, deadline) {
                if body.count > Self.maxBody { throw AdminUnreachable("answer body larger than \(Self.maxBody) bytes") }
            }
        }
        return AdminAnswer(status: status, headers: headers, body: body)
    }

    /// The index just past the blank line that ends the head, if it has arrived.
    static func findHeadEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 3..<b.count where b[i] == 0x0A && b[i - 1] == 0x0D && b[i - 2] == 0x0A && b[i - 3] == 0x0D {
            return i + 1
        }
        return nil
    }

    /// "HTTP/1.1 200 OK" and the field lines (RFC 9112 4 and 5).
    static func parseHead(_ head: ArraySlice<UInt8>) throws(AdminUnreachable) -> (Int, [(name: String, value: String)]) {
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: true)
        guard let statusLine = lines.first else { throw AdminUnreachable("empty answer head") }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
            throw AdminUnreachable("not an HTTP/1.1 answer: \(statusLine.prefix(80).debugDescription)")
        }
        var fields: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw AdminUnreachable("malformed header line in the answer") }
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            fields.append((line[..<colon].lowercased(), String(value.reversed().drop { $0 == " " || $0 == "\t" }.reversed())))
        }
        return (status, fields)
    }
}

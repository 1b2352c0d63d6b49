// A raw TCP client for the tests that must control every byte on the wire
// (malformed requests, pipelining, partial heads) and see exactly what comes
// back, including whether the gateway closed the connection.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One parsed HTTP/1.1 response as it arrived on the wire.
struct RawResponse {
    var version: String
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// Interim (1xx) responses that preceded this one, by status code.
    var interim: [Int] = []

    /// All values of a header, joined with ", " as RFC 9110 5.3 allows.
    func header(_ name: String) -> String? {
        let values = headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { Data(body).json() }
}

/// What reading from the gateway produced.
enum ReadError: Error, CustomStringConvertible {
    case timeout(partial: [UInt8])
    case closed(partial: [UInt8])
    case malformed(String, partial: [UInt8])

    var description: String {
        func show(_ b: [UInt8]) -> String { String(decoding: b.prefix(400), as: UTF8.self).debugDescription }
        switch self {
        case .timeout(let p): return "timed out waiting for a response; got so far: \(show(p))"
        case .closed(let p): return "connection closed before a full response; got: \(show(p))"
        case .malformed(let why, let p): return "unparseable response (\(why)): \(show(p))"
        }
    }
}

/// A blocking TCP connection to 127.0.0.1 with deadline-bounded reads.
final class RawConnection {
    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var peerClosed = false
    static let maxBuffered = 32 << 20

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var addr = Ports.loopback(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw HarnessError("connect 127.0.0.1:\(port): errno \(e)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { Glibc.close(fd) }

    /// Sends all bytes; returns false if the peer stopped taking them
    /// (EPIPE/ECONNRESET), which some malformed-request tests expect.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// The bytes read and not consumed yet, handed over (for protocols parsed elsewhere, such as
    /// WSConnection's frames).
    func takeBuffered() -> [UInt8] {
        defer { buffer = [] }
        return buffer
    }

    /// Reads whatever arrives within `timeout` seconds into the buffer.
    /// Returns false on timeout; sets `peerClosed` on EOF or reset.
    func fill(until deadline: Date) -> Bool {
        if peerClosed { return false }
        // A gateway that floods (e.g. repeats an answer forever) must fail the
        // test, not exhaust the test process's memory.
        if buffer.count > Self.maxBuffered { return false }
        let remaining = deadline.timeIntervalSinceNow
        if remaining <= 0 { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&pfd, 1, Int32(max(1, remaining * 1000)))
        if rc < 0 { return errno == EINTR }
        if rc == 0 { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return true }
        peerClosed = true  // 0 = orderly close; <0 = reset
        return false
    }

    /// Reads one complete response (skipping 1xx interim responses).
    /// `noBody` is for answers to HEAD.
    func readResponse(timeout: Double = 10, noBody: Bool = false) throws -> RawResponse {
        let deadline = Date().addingTimeInterval(timeout)
        var interim: [Int] = []
        while true {
            var response = try readOne(deadline: deadline, noBody: noBody)
            if (100..<200).contains(response.status) && response.status != 101 {
                interim.append(response.status)
                continue
            }
            response.interim = interim
            return response
        }
    }

    /// Reads just the next response head (for interim 100 Continue checks).
    func readHead(timeout: Double = 10) throws -> RawResponse {
        let deadline = Date().addingTimeInterval(timeout)
        let (head, consumed) = try waitForHead(deadline: deadline)
        buffer.removeFirst(consumed)
        return head
    }

    private func failure(_ deadline: Date) -> ReadError {
        peerClosed ? .closed(partial: buffer) : .timeout(partial: buffer)
    }

    private func waitForHead(deadline: Date) throws -> (RawResponse, Int) {
        while true {
            if let end = find([13, 10, 13, 10], in: buffer) {
                return (try parseHead(Array(buffer[0..<end])), end + 4)
            }
            if buffer.count > 1 << 20 { throw ReadError.malformed("response head over 1 MiB", partial: buffer) }
            if !fill(until: deadline) && (peerClosed || Date() >= deadline) { throw failure(deadline) }
        }
    }

    private func readOne(deadline: Date, noBody: Bool) throws -> RawResponse {
        var (response, consumed) = try waitForHead(deadline: deadline)
        buffer.removeFirst(consumed)
        let status = response.status
        if noBody || (100..<200).contains(status) || status == 204 || status == 304 {
            return response
        }
        if let te = response.header("Transfer-Encoding"), te.lowercased().contains("chunked") {
            response.body = try readChunked(deadline: deadline)
        } else if let cl = response.header("Content-Length") {
            guard let n = Int(cl.trimmingCharacters(in: .whitespaces)) else {
                throw ReadError.malformed("Content-Length \(cl)", partial: buffer)
            }
            while buffer.count < n {
                if !fill(until: deadline) && (peerClosed || Date() >= deadline) { throw failure(deadline) }
            }
            response.body = Array(buffer[0..<n])
            buffer.removeFirst(n)
        } else {
            // Close-delimited body (RFC 9112 6.3, last rule).
            while fill(until: deadline) || (!peerClosed && Date() < deadline && buffer.count <= Self.maxBuffered) {}
            if !peerClosed { throw failure(deadline) }
            response.body = buffer
            buffer.removeAll()
        }
        return response
    }

    private func readLine(deadline: Date) throws -> [UInt8] {
        while true {
            if let end = find([13, 10], in: buffer) {
                let line = Array(buffer[0..<end])
                buffer.removeFirst(end + 2)
                return line
            }
            if !fill(until: deadline) && (peerClosed || Date() >= deadline) { throw failure(deadline) }
        }
    }

    private func readChunked(deadline: Date) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let line = String(decoding: try readLine(deadline: deadline), as: UTF8.self)
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw ReadError.malformed("chunk size \(line.debugDescription)", partial: buffer)
            }
            if size == 0 {
                while try !readLine(deadline: deadline).isEmpty {}  // trailers
                return body
            }
            while buffer.count < size + 2 {
                if !fill(until: deadline) && (peerClosed || Date() >= deadline) { throw failure(deadline) }
            }
            body.append(contentsOf: buffer[0..<size])
            buffer.removeFirst(size + 2)
        }
    }

    private func parseHead(_ bytes: [UInt8]) throws -> RawResponse {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            throw ReadError.malformed("status line \(statusLine.debugDescription)", partial: bytes)
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw ReadError.malformed("header line \(line.debugDescription)", partial: bytes)
            }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return RawResponse(version: String(parts[0]), status: status,
                           reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
    }

    /// True if the peer closes (EOF or reset) within `timeout` without
    /// sending anything more; bytes that do arrive are returned as `extra`.
    func waitForClose(timeout: Double = 3) -> (closed: Bool, extra: [UInt8]) {
        let deadline = Date().addingTimeInterval(timeout)
        while !peerClosed && Date() < deadline && buffer.count < 1 << 20 { _ = fill(until: deadline) }
        let extra = buffer
        buffer.removeAll()
        return (peerClosed, extra)
    }

    /// Half-closes our side (the request is complete; no more bytes follow).
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// Index of the first occurrence of `needle` in `hay`.
func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count, !needle.isEmpty else { return nil }
    var i = 0
    let last = hay.count - needle.count
    while i <= last {
        if hay[i] == needle[0] {
            var j = 1
            while j < needle.count && hay[i + j] == needle[j] { j += 1 }
            if j == needle.count { return i }
        }
        i += 1
    }
    return nil
}

import IOCore

/// The attach exchange of docs/edge-tunnel.md §2: the agent's one HTTP/1.1 request, and the
/// cluster's answer read up to the end of its head (101) or of its short body (a refusal).
enum AgentAttach {
    /// The request, as bytes (built once per dial: attach is not the data path).
    static func request(settings: EdgeAgentSettings, index: Int) -> [UInt8] {
        var text = "GET /.edge/attach HTTP/1.1\r\n"
        let port = settings.clusterPort == 443 ? "" : ":\(settings.clusterPort)"
        let host = settings.clusterHost.contains(":") ? "[\(settings.clusterHost)]" : settings.clusterHost
        text += "Host: \(host)\(port)\r\n"
        text += "Connection: Upgrade\r\nUpgrade: switchyard-tunnel/1\r\n"
        text += "Authorization: Bearer \(settings.token)\r\n"
        text += "X-Switchyard-Edge-Node: \(settings.nodeID)\r\n"
        if !settings.hostnames.isEmpty {
            text += "X-Switchyard-Edge-Hostnames: \(settings.hostnames.joined(separator: ", "))\r\n"
        }
        text += "X-Switchyard-Edge-Tunnel: \(index)\r\n\r\n"
        return Array(text.utf8)
    }

    /// A response head: its length (through the blank line), status and Content-Length.
    struct Head: Equatable {
        var length: Int
        var status: Int
        var contentLength: Int?
    }

    enum Parse: Equatable {
        case needMore
        case head(Head)
        case malformed
    }

    /// Finds the end of the head in `p[0..<n]` and reads the status line and Content-Length.
    static func parse(_ p: UnsafePointer<UInt8>, _ n: Int) -> Parse {
        var end = -1
        var i = 3
        while i < n {
            if p[i] == 10 && p[i - 1] == 13 && p[i - 2] == 10 && p[i - 3] == 13 { end = i + 1; break }
            i += 1
        }
        if end < 0 { return n >= 12 && !startsWithHTTP(p, n) ? .malformed : .needMore }
        // "HTTP/1.x NNN"
        guard end >= 12, startsWithHTTP(p, n), p[8] == 32 else { return .malformed }
        var status = 0
        for k in 9..<12 {
            let d = Int(p[k]) - 48
            guard d >= 0 && d <= 9 else { return .malformed }
            status = status * 10 + d
        }
        var head = Head(length: end, status: status, contentLength: nil)
        // Header lines: only Content-Length matters (the refusal's body is logged).
        var line = 0
        while line < end, p[line] != 10 { line += 1 }
        line += 1
        while line < end - 2 {
            var eol = line
            while eol < end, p[eol] != 13 { eol += 1 }
            if let v = value(of: "content-length", p + line, eol - line), let c = Int(v), c >= 0 { head.contentLength = c }
            line = eol + 2
        }
        return .head(head)
    }

    private static func startsWithHTTP(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let prefix: StaticString = "HTTP/1."
        guard n >= 7 else { return false }
        for k in 0..<7 where p[k] != prefix.utf8Start[k] { return false }
        return true
    }

    /// The value of a header line "Name: value" when its name is `name` (compared without case).
    private static func value(of name: String, _ p: UnsafePointer<UInt8>, _ n: Int) -> String? {
        let want = Array(name.utf8)
        guard n > want.count, p[want.count] == UInt8(ascii: ":") else { return nil }
        for k in 0..<want.count where (p[k] | 0x20) != want[k] { return nil }
        var s = want.count + 1
        while s < n, p[s] == 32 || p[s] == 9 { s += 1 }
        var e = n
        while e > s, p[e - 1] == 32 || p[e - 1] == 9 { e -= 1 }
        return String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)
    }
}

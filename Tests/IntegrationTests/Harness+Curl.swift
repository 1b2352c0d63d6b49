// curl as the well-behaved client: status, final response headers, body and
// timing of one exchange, with nothing read from the user's curlrc or proxy env.

import Foundation

struct CurlResult {
    let exitCode: Int32
    let status: Int
    /// Headers of the final response (interim 1xx blocks are dropped).
    let headers: [(name: String, value: String)]
    let body: Data
    let timeTotal: Double
    let stderr: String

    func header(_ name: String) -> String? {
        let values = headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { body.json() }

    /// For messages: what came back, briefly.
    var summary: String {
        "curl exit \(exitCode), status \(status), body \(bodyText.prefix(300).debugDescription), stderr \(stderr.prefix(300).debugDescription)"
    }
}

/// The upstream's /echo answer.
struct Echo: Decodable {
    let method: String
    let target: String
    let version: String
    let headers: [[String]]
    let body_length: Int
    let body_sha256: String
    let port: Int

    func values(_ name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }

    /// All values joined with ", " (RFC 9110 5.3), nil when absent.
    func header(_ name: String) -> String? {
        let v = values(name)
        return v.isEmpty ? nil : v.joined(separator: ", ")
    }

    static func decode(_ data: Data) -> Echo? { try? JSONDecoder().decode(Echo.self, from: data) }
}

extension Scope {
    /// Runs curl against one URL (or with any extra arguments) and parses the result.
    /// `--max-time` bounds it; the body goes to a file unless `bodyFile` is given.
    func curl(_ args: [String], maxTime: Double = 30, bodyFile: String? = nil) throws -> CurlResult {
        guard let curl = Paths.which("curl") else { throw HarnessError("curl not found on PATH") }
        let tag = UUID().uuidString.prefix(8)
        let headerFile = path("curl-\(tag).headers")
        let out = bodyFile ?? path("curl-\(tag).body")
        let fixed = ["-q", "-s", "-S", "--noproxy", "*", "--max-time", String(maxTime),
                     "-D", headerFile, "-o", out, "-w", "%{http_code} %{time_total}"]
        let r = try run(curl, fixed + args, timeout: maxTime + 10)
        defer {
            try? FileManager.default.removeItem(atPath: headerFile)
            if bodyFile == nil { try? FileManager.default.removeItem(atPath: out) }
        }
        let w = r.stdoutText.split(separator: " ")
        let status = w.first.flatMap { Int($0) } ?? 0
        let time = w.count > 1 ? Double(w[1]) ?? 0 : 0
        let rawHeaders = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        let body = bodyFile == nil ? ((try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data()) : Data()
        return CurlResult(exitCode: r.status, status: status, headers: Self.finalHeaders(rawHeaders),
                          body: body, timeTotal: time, stderr: r.stderr)
    }

    /// Plain GET helper.
    func get(_ url: String, headers: [String] = [], maxTime: Double = 30) throws -> CurlResult {
        try curl(headers.flatMap { ["-H", $0] } + [url], maxTime: maxTime)
    }

    /// The last header block of a `-D` dump (skips 100 Continue and the like).
    static func finalHeaders(_ raw: String) -> [(name: String, value: String)] {
        let blocks = raw.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        guard let last = blocks.last else { return [] }
        var lines = last.components(separatedBy: "\r\n")
        if !lines.isEmpty { lines.removeFirst() }  // status line
        return lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }

    /// Writes `size` bytes of deterministic data to a file and returns its path.
    func makePayload(_ name: String, size: Int) throws -> String {
        let p = path(name)
        _ = FileManager.default.createFile(atPath: p, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
        defer { try? h.close() }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var state: UInt32 = 0x9E37_79B9
        for i in block.indices {  // xorshift: cheap, not all-equal bytes
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            block[i] = UInt8(truncatingIfNeeded: state)
        }
        var left = size
        while left > 0 {
            let take = min(left, block.count)
            try h.write(contentsOf: block[0..<take])
            left -= take
        }
        return p
    }

    /// SHA-256 of a file via coreutils (Foundation has no digest on Linux).
    func sha256(ofFile p: String) throws -> String {
        guard let tool = Paths.which("sha256sum") else { throw HarnessError("sha256sum not found") }
        let r = try run(tool, [p], timeout: 60)
        return String(r.stdoutText.prefix(64))
    }
}

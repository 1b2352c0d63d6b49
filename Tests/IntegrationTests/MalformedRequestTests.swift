// A corpus of malformed requests sent byte for byte. Each must get the right
// 4xx/5xx from the gateway itself (never reach an upstream), a JSON body, and
// a closed connection (framing is in doubt: RFC 9112 6.3, 11.2 on smuggling).
// After each corpus the same gateway must still serve a normal request.

import Foundation
import Testing

struct MalformedCase: CustomStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    let status: Int
    var description: String { name }

    init(_ name: String, _ text: String, _ status: Int) {
        self.name = name
        self.bytes = Array(text.utf8)
        self.status = status
    }
}

private let h = "Host: m.test\r\n"

enum Corpus {
    /// Message-length ambiguities and broken chunked framing (RFC 9112 6, 7.1).
    static let framing: [MalformedCase] = [
        .init("CL and TE together",
              "POST /echo HTTP/1.1\r\n\(h)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        .init("CL with a plus sign", "POST /echo HTTP/1.1\r\n\(h)Content-Length: +1\r\n\r\nx", 400),
        .init("CL as a list 1,1", "POST /echo HTTP/1.1\r\n\(h)Content-Length: 1,1\r\n\r\nx", 400),
        .init("two different CL", "POST /echo HTTP/1.1\r\n\(h)Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
        .init("CL not a number", "POST /echo HTTP/1.1\r\n\(h)Content-Length: abc\r\n\r\n", 400),
        // RFC 9112 6.3 rule 4: chunked not final -> MUST 400 (and close).
        .init("TE gzip", "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: gzip\r\n\r\n", 400),
        // RFC 9112 6.1: a transfer coding the server does not implement -> 501.
        .init("TE gzip, chunked",
              "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        .init("TE chunked twice",
              "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
        .init("bad chunk size",
              "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
        .init("bare LF after chunk size",
              "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
        .init("bare LF after chunk data",
              "POST /echo HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400),
    ]

    /// Header syntax and Host rules (RFC 9112 3.2, 5; RFC 9110 5.5).
    static let syntax: [MalformedCase] = [
        .init("obs-fold continuation line", "GET /echo HTTP/1.1\r\n\(h)X-Folded: a\r\n b\r\n\r\n", 400),
        .init("space before colon", "GET /echo HTTP/1.1\r\n\(h)X-Bad : v\r\n\r\n", 400),
        .init("NUL in a header value", "GET /echo HTTP/1.1\r\n\(h)X-Nul: a\u{0}b\r\n\r\n", 400),
        .init("HTTP/1.1 without Host", "GET /echo HTTP/1.1\r\nX-Other: 1\r\n\r\n", 400),
        .init("two Host headers", "GET /echo HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400),
        .init("header without colon", "GET /echo HTTP/1.1\r\n\(h)NoColonHere\r\n\r\n", 400),
        .init("garbage request line", "THIS IS NOT HTTP\r\n\r\n", 400),
    ]

    /// Versions and size limits (max_request_line 8192, max_header_bytes 32768, max_headers 100).
    static let limits: [MalformedCase] = [
        .init("HTTP/2.0 on an HTTP/1 connection", "GET /echo HTTP/2.0\r\n\(h)\r\n", 505),
        .init("HTTP/1.2", "GET /echo HTTP/1.2\r\n\(h)\r\n", 505),
        .init("request line over 8 KiB",
              "GET /echo?\(String(repeating: "a", count: 9000)) HTTP/1.1\r\n\(h)\r\n", 414),
        .init("header block over 32 KiB",
              "GET /echo HTTP/1.1\r\n\(h)"
                + (0..<40).map { "X-Big-\($0): \(String(repeating: "b", count: 1000))\r\n" }.joined() + "\r\n", 431),
        .init("101 header fields",
              "GET /echo HTTP/1.1\r\n\(h)" + (0..<100).map { "X-H-\($0): v\r\n" }.joined() + "\r\n", 431),
    ]
}

@Suite("Malformed requests (end to end)")
struct MalformedRequestTests {
    @Test("message framing corpus") func framing() throws { try run(Corpus.framing, label: "framing") }
    @Test("header syntax corpus") func syntax() throws { try run(Corpus.syntax, label: "syntax") }
    @Test("version and limit corpus") func limits() throws { try run(Corpus.limits, label: "limits") }

    private func run(_ corpus: [MalformedCase], label: String) throws {
        let scope = try Scope("bad-\(label)")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        for c in corpus {
            let conn = try RawConnection(port: gw.port)
            conn.send(c.bytes)
            let response: RawResponse
            do {
                response = try conn.readResponse(timeout: 5)
            } catch {
                Issue.record("\(c.name): expected \(c.status), got no response: \(error)")
                continue
            }
            #expect(response.status == c.status, "\(c.name): expected \(c.status), got \(response.status) \(response.bodyText.prefix(200).debugDescription)")
            #expect(response.header("X-Upstream-Port") == nil, "\(c.name): the request reached an upstream")
            let json = response.json
            #expect(json?["error"] is String, "\(c.name): body should be JSON with \"error\": \(response.bodyText.prefix(200).debugDescription)")
            #expect((json?["request_id"] as? String)?.isEmpty == false, "\(c.name): body should carry request_id")
            let (closed, extra) = conn.waitForClose(timeout: 3)
            #expect(closed, "\(c.name): the connection should be closed after \(response.status)")
            #expect(extra.isEmpty, "\(c.name): bytes after the error response: \(String(decoding: extra.prefix(200), as: UTF8.self).debugDescription)")
        }

        // The gateway is still healthy.
        let ok = try scope.get(gw.url("/echo?after=\(label)"))
        #expect(ok.status == 200, "after the \(label) corpus: \(ok.summary)")
        #expect(Echo.decode(ok.body)?.target == "/echo?after=\(label)")
    }
}

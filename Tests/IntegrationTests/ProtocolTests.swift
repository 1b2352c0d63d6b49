// Message-framing corners of HTTP/1.x that a proxy must get right:
// HTTP/1.0 clients, HEAD, bodiless statuses, and Expect: 100-continue.

import Foundation
import Testing

@Suite("HTTP/1.x protocol corners")
struct ProtocolTests {
    @Test("HTTP/1.0 request without Host gets 200 and the connection is closed")
    func http10WithoutHost() throws {
        let scope = try Scope("h10")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        conn.send("GET /echo?v=10 HTTP/1.0\r\nUser-Agent: old\r\n\r\n")
        let r = try conn.readResponse()
        #expect(r.status == 200, "\(r.status) \(r.bodyText)")
        #expect(Echo.decode(Data(r.body))?.target == "/echo?v=10", "\(r.bodyText)")
        let (closed, extra) = conn.waitForClose(timeout: 3)
        #expect(closed, "an HTTP/1.0 request without keep-alive must end with a close")
        #expect(extra.isEmpty)
    }

    @Test("HEAD gets the GET head and no body; the connection stays in sync", arguments: ["", "?chunked=1"])
    func head(query: String) throws {
        let scope = try Scope("head")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        conn.send("HEAD /bytes/1000\(query) HTTP/1.1\r\nHost: h.test\r\n\r\n")
        let r = try conn.readResponse(noBody: true)
        #expect(r.status == 200)
        if query.isEmpty {
            #expect(r.header("Content-Length") == "1000", "HEAD should keep the GET's Content-Length: \(r.headers)")
        }
        // Any body bytes sent after the HEAD head would corrupt the next answer.
        conn.send("GET /echo?after=head HTTP/1.1\r\nHost: h.test\r\n\r\n")
        let next = try conn.readResponse()
        #expect(next.status == 200)
        #expect(Echo.decode(Data(next.body))?.target == "/echo?after=head",
                "response after HEAD is out of sync: \(next.status) \(next.bodyText.prefix(200))")
    }

    @Test("204 and 304 from the upstream carry no body", arguments: [204, 304])
    func bodilessStatus(code: Int) throws {
        let scope = try Scope("s\(code)")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        conn.send("GET /status/\(code) HTTP/1.1\r\nHost: s.test\r\n\r\n")
        let r = try conn.readResponse(timeout: 5)
        #expect(r.status == code)
        #expect(r.header("Transfer-Encoding") == nil, "\(code) must not be chunked")
        conn.send("GET /echo?after=\(code) HTTP/1.1\r\nHost: s.test\r\n\r\n")
        let next = try conn.readResponse(timeout: 5)
        #expect(Echo.decode(Data(next.body))?.target == "/echo?after=\(code)",
                "bytes after the \(code) head: \(next.status) \(next.bodyText.prefix(200))")

        // And for curl, which would hang on a body that never ends.
        let c = try scope.get(gw.url("/status/\(code)"), maxTime: 5)
        #expect(c.exitCode == 0 && c.status == code, "\(c.summary)")
        #expect(c.body.isEmpty)
    }

    @Test("curl's Expect: 100-continue upload goes through without the 1 s wait")
    func expectContinueCurl() throws {
        let scope = try Scope("expect")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        let file = try scope.makePayload("two-mb.bin", size: 2 * 1024 * 1024)
        let digest = try scope.sha256(ofFile: file)

        // curl waits --expect100-timeout (1 s by default) for the 100; make it
        // 3 s so a missing 100 is unmistakable.
        let r = try scope.curl(["--expect100-timeout", "3", "-H", "Expect: 100-continue",
                                "--data-binary", "@\(file)", gw.url("/upload")], maxTime: 20)
        #expect(r.status == 200, "\(r.summary)")
        #expect(r.json?["sha256"] as? String == digest)
        #expect(r.timeTotal < 1.5, "upload took \(r.timeTotal)s: curl waited for a 100 Continue that never came")
    }

    @Test("Expect: 100-continue on a raw connection gets an interim 100 before the body is sent")
    func expectContinueRaw() throws {
        let scope = try Scope("expect-raw")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        conn.send("POST /upload HTTP/1.1\r\nHost: e.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        let interim = try conn.readHead(timeout: 3)
        #expect(interim.status == 100, "expected 100 Continue before sending the body, got \(interim.status)")
        conn.send("hello world")
        let r = try conn.readResponse(timeout: 5)
        #expect(r.status == 200)
        #expect(r.json?["size"] as? Int == 11, "\(r.bodyText)")
        // sha256("hello world")
        #expect(r.json?["sha256"] as? String == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
    }
}

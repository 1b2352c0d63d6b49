// A plain listener with `redirect_https`: every request is sent to HTTPS with 308, keeping the
// host, path and query (RFC 9110 §15.4.9: the method and body are kept by the client).

import Foundation
import Testing

@Suite("Plain listener redirecting to HTTPS")
struct HTTPSRedirectTests {
    private func start(_ scope: Scope, httpsPort: Int) throws -> Gateway {
        let port = try Ports.free()
        let yaml = """
        workers: 1
        listeners:
          - address: 127.0.0.1:\(port)
            redirect_https: \(httpsPort)
        admin: {address: "off"}
        logging: {access: stdout, error: stderr}
        routes:
          - upstreams: ["127.0.0.1:9"]
        """
        return try scope.startGateway(yaml: yaml, port: port)
    }

    @Test("308 to https with host, path and query kept; port omitted when 443; keep-alive goes on without a body")
    func redirects() throws {
        let scope = try Scope("redirect")
        defer { scope.close() }
        let gw = try start(scope, httpsPort: 8443)
        let r = try scope.get(gw.url("/ws/alice/src/main.ts?t=1&x=%20y"), headers: ["Host: ide.example.com:\(gw.port)"])
        #expect(r.status == 308, "\(r.summary)")
        #expect(r.header("Location") == "https://ide.example.com:8443/ws/alice/src/main.ts?t=1&x=%20y")
        #expect(r.header("Content-Length") == "0")

        let gw443 = try start(scope, httpsPort: 443)
        let conn = try RawConnection(port: gw443.port)
        #expect(conn.send("GET /a HTTP/1.1\r\nHost: [::1]:80\r\n\r\nGET /next HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        let first = try conn.readResponse()
        #expect(first.status == 308)
        #expect(first.header("Location") == "https://[::1]/a")
        let second = try conn.readResponse()
        #expect(second.status == 308)
        #expect(second.header("Location") == "https://example.com/next")
        // A request with a body is answered and the connection closed (its body is not read).
        let post = try RawConnection(port: gw443.port)
        #expect(post.send("POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"))
        let r3 = try post.readResponse()
        #expect(r3.status == 308)
        #expect(r3.header("Location") == "https://example.com/form")
        #expect(r3.header("Connection") == "close")
    }

    @Test("no Host to redirect to: 400")
    func noHost() throws {
        let scope = try Scope("redirect-nohost")
        defer { scope.close() }
        let gw = try start(scope, httpsPort: 8443)
        let conn = try RawConnection(port: gw.port)
        #expect(conn.send("GET / HTTP/1.0\r\n\r\n"))
        let r = try conn.readResponse()
        #expect(r.status == 400)
    }
}

// Regressions found in review: a Host that grows the rewritten head past its buffer, timers
// longer than one turn of the timer wheel, and a FIN that arrives together with the last bytes
// (edge-triggered epoll gives no second edge for it).

import Foundation
import Testing

@Suite("Edge cases found in review")
struct EdgeCaseTests {
    @Test("a Host that nearly doubles the rewritten head gets an answer, and the gateway lives")
    func hugeHost() throws {
        let scope = try Scope("edge-host")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try scope.startGateway(to: up.addresses)
        for (hostLength, padLength) in [(9_000, 6_500), (16_000, 14_000), (30_000, 1_000)] {
            let conn = try RawConnection(port: gw.port)
            let host = String(repeating: "h", count: hostLength)
            let pad = String(repeating: "p", count: padLength)
            #expect(conn.send("GET /echo HTTP/1.1\r\nHost: \(host)\r\nX-Pad: \(pad)\r\nConnection: close\r\n\r\n"))
            let r = try conn.readResponse(timeout: 10)
            #expect([200, 431].contains(r.status), "Host of \(hostLength) bytes: status \(r.status)")
            #expect(gw.child.isRunning, "gateway died on a Host of \(hostLength) bytes: \(gw.child.stderr.suffix(600))")
        }
        #expect(try scope.get(gw.url("/echo")).status == 200)
    }

    @Test("a client that half-closes after its request gets the response, then a close")
    func clientHalfClose() throws {
        let scope = try Scope("edge-halfclose")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try scope.startGateway(to: up.addresses)
        for _ in 0..<5 {
            let conn = try RawConnection(port: gw.port)
            #expect(conn.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"))
            conn.shutdownWrite()
            let r = try conn.readResponse(timeout: 5)
            #expect(r.status == 200)
            #expect(conn.waitForClose(timeout: 3).closed, "the gateway kept a half-closed connection open")
        }
    }

    @Test("a close-delimited response whose FIN comes with the body completes at once")
    func upstreamCloseDelimited() throws {
        let scope = try Scope("edge-closedelim")
        defer { scope.close() }
        let python = try #require(Paths.which("python3"))
        let port = try Ports.free()
        let script = try scope.write("closer.py", """
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", \(port))); s.listen(64)
        while True:
            c, _ = s.accept()
            data = b""
            while b"\\r\\n\\r\\n" not in data:
                d = c.recv(65536)
                if not d: break
                data += d
            c.sendall(b"HTTP/1.1 200 OK\\r\\nX-Kind: close-delimited\\r\\n\\r\\nhello, until close")
            c.close()
        """)
        let child = try scope.spawn("closer", python, [script])
        try Ports.waitUntilOpen(port, child: child)
        let gw = try scope.startGateway(to: ["127.0.0.1:\(port)"])
        for i in 0..<5 {
            let r = try scope.get(gw.url("/x"), maxTime: 5)
            #expect(r.status == 200 && r.bodyText == "hello, until close", "request \(i): \(r.summary)")
            #expect(r.timeTotal < 2, "request \(i) took \(r.timeTotal)s")
        }
    }

    @Test("a timeout longer than one turn of the timer wheel (51.2 s) fires")
    func longTimeout() throws {
        let scope = try Scope("edge-longtimer")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try scope.startGateway(to: up.addresses, timeouts: ["upstream_first_byte": "53s"])
        let r = try scope.get(gw.url("/silent"), maxTime: 70)
        #expect(r.status == 504, "\(r.summary)")
        #expect(r.timeTotal > 52 && r.timeTotal < 58, "504 after \(r.timeTotal)s")
    }
}

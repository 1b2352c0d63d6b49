// Persistent connections on both sides: the client's (RFC 9112 9.3), the
// upstream pool, round robin across upstreams, and pipelining (RFC 9112 9.3.2).

import Foundation
import Testing

@Suite("Keep-alive, pooling and pipelining")
struct KeepAliveTests {
    /// Sends `GET path` on `conn` and returns the decoded JSON body.
    private func getJSON(_ conn: RawConnection, _ path: String) throws -> [String: Any] {
        conn.send("GET \(path) HTTP/1.1\r\nHost: ka.test\r\n\r\n")
        let r = try conn.readResponse()
        #expect(r.status == 200, "\(path): \(r.status) \(r.bodyText)")
        return try #require(r.json, "\(path): not JSON: \(r.bodyText)")
    }

    @Test("50 sequential requests on one client connection use one upstream connection")
    func oneClientConnection() throws {
        let scope = try Scope("ka-one")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        var ids = Set<Int>()
        var counts: [Int] = []
        for _ in 0..<50 {
            let j = try getJSON(conn, "/conn")
            ids.insert(j["conn_id"] as? Int ?? -1)
            counts.append(j["requests"] as? Int ?? -1)
        }
        #expect(ids.count == 1, "upstream saw \(ids.count) connections for 50 requests: \(ids.sorted())")
        #expect(counts == Array(1...50), "requests per upstream connection should count 1...50: \(counts)")
        let stats = try getJSON(conn, "/stats")
        #expect(stats["connections"] as? Int == 1, "upstream accepted \(stats["connections"] ?? "?") connections")
        #expect(!conn.peerClosed, "the gateway closed a keep-alive client connection")
    }

    @Test("curl with many URLs reuses its connection and the upstream's")
    func curlManyUrls() throws {
        let scope = try Scope("ka-curl")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        guard let curl = Paths.which("curl") else { throw HarnessError("curl not found") }
        let urls = Array(repeating: gw.url("/conn"), count: 50)
        let r = try scope.run(curl, ["-q", "-s", "-S", "--noproxy", "*", "--max-time", "30",
                                     "-w", " connects=%{num_connects}\n"] + urls)
        #expect(r.status == 0, "curl failed: \(r.stderr)")
        let lines = r.stdoutText.split(separator: "\n")
        var ids = Set<Int>()
        var newClientConnections = 0
        for line in lines where line.hasPrefix(" connects=") {
            newClientConnections += Int(line.dropFirst(" connects=".count)) ?? 99
        }
        for line in lines where line.hasPrefix("{") {
            ids.insert(Data(line.utf8).json()?["conn_id"] as? Int ?? -1)
        }
        #expect(lines.filter { $0.hasPrefix("{") }.count == 50, "expected 50 answers: \(r.stdoutText.prefix(500))")
        #expect(newClientConnections == 1, "curl had to open \(newClientConnections) connections: the gateway did not keep the client connection alive")
        #expect(ids.count == 1, "upstream saw \(ids.count) connections: \(ids.sorted())")
    }

    @Test("sequential client connections share one pooled upstream connection")
    func poolAcrossClients() throws {
        let scope = try Scope("ka-pool")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        // One worker: pools are per worker, so this makes "one" the exact answer.
        let gw = try scope.startGateway(to: up.addresses, workers: 1)

        var ids = Set<Int>()
        for _ in 0..<20 {
            let r = try scope.get(gw.url("/conn"))
            #expect(r.status == 200, "\(r.summary)")
            ids.insert(r.json?["conn_id"] as? Int ?? -1)
        }
        #expect(ids.count == 1, "20 client connections in a row opened \(ids.count) upstream connections")
    }

    @Test("round robin alternates between two upstreams")
    func roundRobin() throws {
        let scope = try Scope("rr")
        defer { scope.close() }
        let up = try scope.startUpstreams(2)
        let gw = try scope.startGateway(to: up.addresses, workers: 1)

        let conn = try RawConnection(port: gw.port)
        var ports: [Int] = []
        for _ in 0..<10 {
            ports.append(try getJSON(conn, "/conn")["port"] as? Int ?? -1)
        }
        #expect(Set(ports) == Set(up.ports), "both upstreams should be used: \(ports)")
        for i in 1..<ports.count {
            #expect(ports[i] != ports[i - 1], "round robin should alternate: \(ports)")
        }
        #expect(ports.filter { $0 == up.ports[0] }.count == 5)
    }

    @Test("three pipelined requests in one send are answered in order")
    func pipelining() throws {
        let scope = try Scope("pipe")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        // The first is slow, so an out-of-order implementation would show.
        conn.send(
            "GET /slow?delay=0.5&i=1 HTTP/1.1\r\nHost: p.test\r\n\r\n"
            + "POST /echo?i=2 HTTP/1.1\r\nHost: p.test\r\nContent-Length: 5\r\n\r\nhello"
            + "GET /echo?i=3 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        let first = try conn.readResponse()
        let second = try conn.readResponse()
        let third = try conn.readResponse()
        #expect(first.status == 200 && first.json?["slept"] != nil, "first answer should be /slow: \(first.bodyText)")
        let e2 = Echo.decode(Data(second.body))
        #expect(e2?.target == "/echo?i=2", "second answer: \(second.bodyText)")
        #expect(e2?.body_length == 5)
        #expect(Echo.decode(Data(third.body))?.target == "/echo?i=3", "third answer: \(third.bodyText)")
        #expect(!conn.peerClosed)

        // The connection stays usable afterwards.
        conn.send("GET /echo?i=4 HTTP/1.1\r\nHost: p.test\r\n\r\n")
        #expect(Echo.decode(Data(try conn.readResponse().body))?.target == "/echo?i=4")
    }

    @Test("Connection: close from the client is honoured after the response")
    func clientClose() throws {
        let scope = try Scope("close")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let conn = try RawConnection(port: gw.port)
        conn.send("GET /echo HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n")
        let r = try conn.readResponse()
        #expect(r.status == 200)
        #expect(Echo.decode(Data(r.body))?.header("Connection") == nil, "Connection must not be forwarded")
        let (closed, extra) = conn.waitForClose(timeout: 3)
        #expect(closed, "the gateway should close after a Connection: close request")
        #expect(extra.isEmpty, "unexpected bytes after the response: \(extra.count)")
    }

    @Test("an upstream's Connection: close is honoured; the next request opens a new connection")
    func upstreamClose() throws {
        let scope = try Scope("up-close")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, workers: 1)

        let conn = try RawConnection(port: gw.port)
        var ids: [Int] = []
        for _ in 0..<5 {
            ids.append(try getJSON(conn, "/conn?close=1")["conn_id"] as? Int ?? -1)
        }
        #expect(Set(ids).count == 5, "a connection the upstream closed was reused: \(ids)")
        #expect(!conn.peerClosed, "the upstream's Connection: close must not close the client connection")
    }

    @Test("a pooled connection the upstream hung up on is not used to fail a request")
    func upstreamIdleHangUp() throws {
        let scope = try Scope("up-hangup")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, workers: 1)

        // Each answer is followed by the upstream silently closing that
        // connection; the next request must still succeed (a fresh connection,
        // or a safe retry of a request that was sent on a reused one).
        for i in 0..<6 {
            let r = try scope.get(gw.url("/conn?close_after=0.1&i=\(i)"))
            #expect(r.status == 200, "request \(i) after an upstream hang-up: \(r.summary)")
            usleep(400_000)
        }
        let conn = try RawConnection(port: gw.port)
        for i in 0..<4 {
            conn.send("GET /conn?close_after=0.1&same=\(i) HTTP/1.1\r\nHost: ka.test\r\n\r\n")
            let r = try conn.readResponse()
            #expect(r.status == 200, "keep-alive request \(i) after an upstream hang-up: \(r.status) \(r.bodyText)")
            usleep(400_000)
        }
    }
}

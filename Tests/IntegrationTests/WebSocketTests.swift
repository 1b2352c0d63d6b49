// HTTP/1.1 Upgrade end to end: Python `websockets` clients and servers through the gateway
// (wsclient.py, wspeer.py), plus raw sockets where the bytes around the switch matter.
// RFC 9110 7.8 (Upgrade), RFC 6455 (WebSocket): after the upstream's 101 the connection is a
// byte tunnel in both directions, each side's FIN passed on; any other answer to an upgrade
// request is an ordinary response on an HTTP connection that goes on.

import Foundation
import Testing

@Suite("WebSocket upgrades")
struct WebSocketTests {
    /// wspeer with one WebSocket port and one raw port, and a gateway routing `/raw/` to the
    /// raw port and everything else to the WebSocket port.
    private func staticSetup(_ scope: Scope, workers: Int = 2) throws -> (peer: WSPeer, gateway: Gateway) {
        let peer = try scope.startWSPeer(ws: 1, raw: 1)
        let gw = try scope.startGateway(GatewayConfig(port: try Ports.free(), workers: workers, routes: [
            RouteSpec(name: "raw", pathPrefix: "/raw/", upstreams: peer.rawAddresses),
            RouteSpec(name: "ws", pathPrefix: "/", upstreams: peer.wsAddresses),
        ]))
        return (peer, gw)
    }

    /// A workspace pool as in StickyRoutingTests: `/ws/<id>/...` by path segment (setting the
    /// ws_uid cookie) and everything else by the ws_uid cookie.
    private func startSticky(_ scope: Scope, nodes: [StickyNode], name: String = "gateway") throws -> Gateway {
        try scope.startGateway(StickyConfig(port: try Ports.free(), database: scope.path("\(name)/registry.db"), nodes: nodes),
                               name: name)
    }

    /// An upgrade request as a browser sends it (the key is RFC 6455's sample nonce).
    private func upgradeRequest(_ path: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }

    private func connectionTokens(_ value: String?) -> [String] {
        (value ?? "").lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    // MARK: - Messages and handshake

    @Test("text and binary messages up to 16 MiB, a fragmented message and pings both ways pass intact")
    func messages() throws {
        let scope = try Scope("ws-messages")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        let r = try scope.wsClient("messages", ["--url", "ws://127.0.0.1:\(gw.port)/echo"], timeout: 120)
        #expect(r["error"].isNull, "\(r)")
        let echoes = r["echoes"].array
        #expect(echoes.count == 16, "8 sizes x text and binary: \(r)")
        #expect(echoes.contains { $0["size"].int == 16 << 20 && $0["kind"].string == "text" }, "\(r)")
        #expect(echoes.contains { $0["size"].int == 16 << 20 && $0["kind"].string == "binary" }, "\(r)")
        for e in echoes {
            let what = "\(e["kind"].string ?? "?") message of \(e["size"].int ?? -1) bytes"
            #expect(e["sent_sha256"].string != nil && e["received_sha256"].string == e["sent_sha256"].string,
                    "\(what) changed on the way: \(e)")
            #expect(e["received_kind"].string == e["kind"].string, "\(what) came back as \(e["received_kind"])")
            #expect(e["received_size"].int == e["size"].int, "\(what) came back with \(e["received_size"]) bytes")
        }
        let fragmented = r["fragmented"]
        #expect(fragmented["received_size"].int == 3 << 20 && fragmented["sent_sha256"].string != nil
                && fragmented["received_sha256"].string == fragmented["sent_sha256"].string, "\(fragmented)")
        #expect(r["client_ping"].string == "pong", "the client's ping got no pong: \(r)")
        #expect(r["server_ping"].string == "__pong__ server-ping-1", "the server's ping got no pong: \(r)")
    }

    @Test("the subprotocol is negotiated end to end; Origin, cookies and the upgrade headers reach the upstream")
    func handshakeHeaders() throws {
        let scope = try Scope("ws-handshake")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        let url = "ws://127.0.0.1:\(gw.port)/hmr?token=abc"
        let r = try scope.wsClient("handshake", ["--url", url, "--cookie", "ws_uid=alice; theme=dark",
                                                 "--origin", "http://ide.example.test", "--subprotocol", "vite-hmr"])
        #expect(r["error"].isNull, "\(r)")
        let c = r["connections"][0]
        #expect(c["response"]["status"].int == 101, "\(c)")
        #expect(c["subprotocol"].string == "vite-hmr", "the client did not get the subprotocol: \(c)")
        #expect(c["response"]["headers"].header("Sec-WebSocket-Protocol") == "vite-hmr", "\(c["response"])")
        let server = c["server"]
        #expect(server["subprotocol"].string == "vite-hmr", "\(server)")
        #expect(server["path"].string == "/hmr?token=abc", "\(server)")
        let seen = server["headers"]
        #expect(seen.header("Origin") == "http://ide.example.test", "\(seen)")
        let cookies = seen.headerValues("Cookie").joined(separator: "; ")
        #expect(cookies.contains("ws_uid=alice") && cookies.contains("theme=dark"), "cookies the upstream saw: \(cookies)")
        #expect(seen.header("Sec-WebSocket-Protocol") == "vite-hmr", "\(seen)")
        #expect(seen.header("Sec-WebSocket-Version") == "13", "\(seen)")
        #expect(seen.header("Upgrade")?.lowercased() == "websocket", "\(seen)")
        #expect(connectionTokens(seen.header("Connection")).contains("upgrade"), "\(seen)")
        #expect(c["echo"].string == "hello \(url)", "\(c)")
    }

    // MARK: - Closing

    @Test("a close started by either side reaches the other with its code and reason", arguments: ["server", "client"])
    func closePropagates(side: String) throws {
        let scope = try Scope("ws-close-\(side)")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        let code = side == "server" ? 4001 : 4002
        let reason = "\(side) says bye"
        let r = try scope.wsClient("close", ["--url", "ws://127.0.0.1:\(gw.port)/close", "--by", side,
                                             "--code", "\(code)", "--reason", reason])
        // No error also means the client saw the TCP connection end (wait_closed returned).
        #expect(r["error"].isNull, "\(r)")
        #expect(r["echo"].string == "before close" && r["unexpected"].isNull, "\(r)")
        let client = r["client"], server = r["server"]
        #expect(client["rcvd"]["code"].int == code && client["rcvd"]["reason"].string == reason,
                "close frame the client received: \(client)")
        #expect(server["rcvd"]["code"].int == code && server["rcvd"]["reason"].string == reason,
                "close frame the upstream received: \(server)")
        #expect(client["sent"]["code"].int == code && server["sent"]["code"].int == code, "\(r)")
        // Who started it: the other side received the close before sending its own.
        #expect(client["rcvd_then_sent"].bool == (side == "server"), "\(client)")
        #expect(server["rcvd_then_sent"].bool == (side == "client"), "\(server)")
    }

    @Test("half-close: one side's FIN passes through, the other direction keeps flowing to its own EOF",
          arguments: ["client", "upstream"])
    func halfClose(side: String) throws {
        let scope = try Scope("ws-half-\(side)")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        let r = try scope.wsClient("halfclose", ["--port", "\(gw.port)", "--path", "/raw/halfclose", "--side", side,
                                                 "--size", "\(1 << 20)", "--tail", "\(256 << 10)"])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["handshake"]["status"].int == 101 && r["handshake"]["accept_ok"].bool == true, "\(r["handshake"])")
        #expect(r["send_error"].isNull, "\(r)")
        let report = r["upstream_report"]
        if side == "client" {
            // Client: 1 MiB then FIN. Upstream: everything and the EOF, then its answer after our FIN.
            #expect(report["len"].int == 1 << 20 && report["sha256"].string == r["sent"]["sha256"].string,
                    "what the upstream received before EOF: \(report)")
            #expect(report["eof"].bool == true, "the upstream never saw the client's FIN: \(report)")
            #expect(r["tail"]["len"].int == 256 << 10 && r["tail"]["sha256"].string == r["tail_expected_sha256"].string,
                    "the upstream's answer after the client's FIN: \(r["tail"])")
            #expect(r["eof"].bool == true, "the client never saw the upstream's FIN: \(r)")
        } else {
            // Upstream: 1 MiB then FIN. Client: everything and the EOF, then sends 256 KiB and FIN.
            #expect(r["received"]["len"].int == 1 << 20 && r["received"]["sha256"].string == r["expected_sha256"].string,
                    "what the client received: \(r["received"])")
            #expect(r["eof"].bool == true, "the client never saw the upstream's FIN: \(r)")
            #expect(report["len"].int == 256 << 10 && report["sha256"].string == r["sent"]["sha256"].string,
                    "what the upstream received after its own FIN: \(report)")
            #expect(report["eof"].bool == true, "the upstream never saw the client's FIN: \(report)")
            #expect(r["after_fin"]["closed"].bool == true && r["after_fin"]["extra_bytes"].int == 0,
                    "after both FINs the tunnel should end: \(r["after_fin"])")
        }
    }

    // MARK: - Around the switch

    @Test("an upgrade answered without 101 stays HTTP: the client gets that response, then the connection serves the next request",
          arguments: ["/raw/status/200", "/raw/status/404", "/reject/403"])
    func notSwitched(path: String) throws {
        let scope = try Scope("ws-noswitch")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        let conn = try RawConnection(port: gw.port)
        conn.send(upgradeRequest(path))
        let r = try conn.readResponse(timeout: 10)
        let expected = Int(path.split(separator: "/").last ?? "") ?? -1
        #expect(r.status == expected, "\(r.status) \(r.headers) \(r.bodyText)")
        #expect(r.interim.isEmpty, "interim responses before the \(expected): \(r.interim)")
        #expect(!connectionTokens(r.header("Connection")).contains("close"), "\(r.headers)")
        if path.hasPrefix("/raw/") {
            // The raw upstream reports what it was asked: an upgrade, which it declined.
            let seen = JSONValue(data: Data(r.body))
            #expect(seen["upgrade"].string?.lowercased() == "websocket", "\(r.bodyText)")
            #expect(connectionTokens(seen["connection"].string).contains("upgrade"), "\(r.bodyText)")
        } else {
            // The websockets library's own refusal (it closes its side afterwards).
            #expect(r.bodyText == "rejected with 403\n", "\(r.bodyText)")
        }
        // Keep-alive: the same client connection, an ordinary request, an ordinary answer.
        conn.send("GET /raw/http HTTP/1.1\r\nHost: ws.test\r\n\r\n")
        let next = try conn.readResponse(timeout: 10)
        #expect(next.status == 200, "\(next.status) \(next.bodyText)")
        let seen = JSONValue(data: Data(next.body))
        #expect(seen["target"].string == "/raw/http", "\(next.bodyText)")
        #expect(seen["headers"].header("Upgrade") == nil, "a plain request reached the upstream with Upgrade: \(next.bodyText)")

        // Again, with the next request pipelined behind the upgrade request in one write: held
        // until the upstream answered, those bytes turn out to be HTTP and are served as such.
        conn.send(upgradeRequest(path) + "GET /raw/http?pipelined=1 HTTP/1.1\r\nHost: ws.test\r\n\r\n")
        let again = try conn.readResponse(timeout: 10)
        #expect(again.status == expected, "\(again.status) \(again.bodyText)")
        let pipelined = try conn.readResponse(timeout: 10)
        #expect(pipelined.status == 200 && JSONValue(data: Data(pipelined.body))["target"].string == "/raw/http?pipelined=1",
                "\(pipelined.status) \(pipelined.bodyText)")
    }

    @Test("bytes sent right after the upgrade request wait for the 101, then arrive intact")
    func earlyBytesWaitForSwitch() throws {
        let scope = try Scope("ws-early")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        // The upstream holds its 101 for 300 ms and counts what arrives meanwhile.
        let r = try scope.wsClient("early", ["--port", "\(gw.port)", "--path", "/raw/delay101",
                                             "--early", "4096", "--delay-ms", "300"])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["handshake"]["status"].int == 101 && r["handshake"]["accept_ok"].bool == true, "\(r["handshake"])")
        let report = r["upstream_report"]
        #expect(report["early"].int == 0, "bytes reached the upstream before its 101: \(report)")
        #expect(report["after"].int == 4096 && report["sha256"].string == r["sent"]["sha256"].string,
                "the bytes after the switch: \(report), sent \(r["sent"])")
    }

    // MARK: - Sticky routes

    @Test("an upgrade for a user no node can take gets 503 before any switch, and never reaches a node")
    func unplaceable() throws {
        let scope = try Scope("ws-503")
        defer { scope.close() }
        let peer = try scope.startWSPeer(ws: 1, raw: 0)
        let gw = try startSticky(scope, nodes: [StickyNode("ws-1", peer.wsAddresses[0], "capacity: 1"),
                                                StickyNode("ws-off", peer.wsAddresses[0], "enabled: false")])
        // The one free seat goes to the first user, by an upgrade.
        let first = try scope.wsClient("handshake", ["--url", "ws://127.0.0.1:\(gw.port)/ws/first/hmr"])
        #expect(first["error"].isNull && first["connections"][0]["response"]["status"].int == 101, "\(first)")

        let full = try scope.wsClient("reject", ["--url", "ws://127.0.0.1:\(gw.port)/ws/second/hmr"])
        #expect(full["status"].int == 503, "\(full)")
        #expect(JSONValue(data: Data((full["body"].string ?? "").utf8))["error"].string == "insufficient_capacity", "\(full)")

        let gw2 = try startSticky(scope, nodes: [StickyNode("ws-off", peer.wsAddresses[0], "enabled: false")], name: "g2")
        let byPath = try scope.wsClient("reject", ["--url", "ws://127.0.0.1:\(gw2.port)/ws/third/hmr"])
        #expect(byPath["status"].int == 503, "\(byPath)")
        #expect(JSONValue(data: Data((byPath["body"].string ?? "").utf8))["error"].string == "no_healthy_node", "\(byPath)")
        let byCookie = try scope.wsClient("reject", ["--url", "ws://127.0.0.1:\(gw2.port)/?token=fourth",
                                                     "--cookie", "ws_uid=fourth"])
        #expect(byCookie["status"].int == 503, "\(byCookie)")
        #expect(JSONValue(data: Data((byCookie["body"].string ?? "").utf8))["error"].string == "no_healthy_node", "\(byCookie)")

        // Only the first user's upgrade ever reached the node.
        let stats = try scope.get("http://127.0.0.1:\(peer.wsPorts[0])/__stats__")
        let paths = JSONValue(data: stats.body)["paths"].array.compactMap { $0[1].string }
        #expect(paths.filter { $0 != "/__stats__" } == ["/ws/first/hmr"], "requests the node saw: \(paths)")
    }

    @Test("upgrades on a sticky route land on the user's node, keyed by /ws/<id>/ or by the ws_uid cookie")
    func stickyKeySources() throws {
        let scope = try Scope("ws-sticky")
        defer { scope.close() }
        let peer = try scope.startWSPeer(ws: 2, raw: 0)
        let gw = try startSticky(scope, nodes: [StickyNode("ws-1", peer.wsAddresses[0]), StickyNode("ws-2", peer.wsAddresses[1])])
        let nodePort = ["ws-1": peer.wsPorts[0], "ws-2": peer.wsPorts[1]]
        let users = (0..<6).map { "wsuser\($0)" }
        // Half the users come first by path, half first by cookie: either may make the placement.
        var args: [String] = []
        for (i, user) in users.enumerated() {
            let byPath = ["--url", "ws://127.0.0.1:\(gw.port)/ws/\(user)/hmr", "--cookie", ""]
            let byCookie = ["--url", "ws://127.0.0.1:\(gw.port)/?token=\(user)", "--cookie", "theme=dark; ws_uid=\(user)"]
            args += i % 2 == 0 ? byPath + byCookie : byCookie + byPath
        }
        let r = try scope.wsClient("handshake", args)
        #expect(r["error"].isNull, "\(r)")
        let conns = r["connections"].array
        try #require(conns.count == 2 * users.count, "\(r)")
        var used = Set<Int>()
        for (i, user) in users.enumerated() {
            let pair = [conns[2 * i], conns[2 * i + 1]]
            for c in pair {
                #expect(c["response"]["status"].int == 101, "\(user): \(c)")
                #expect(c["echo"].string == "hello \(c["url"].string ?? "")", "\(user): \(c)")
                // A 101 is a response of the keyed route like any other: it names the node.
                let node = c["response"]["headers"].header("X-WS-Upstream")
                #expect(node != nil && nodePort[node ?? ""] == c["server"]["port"].int,
                        "\(user): 101 names \(node ?? "no node"), answered by \(c["server"])")
                if c["url"].string?.contains("/ws/") == true {
                    #expect(c["response"]["headers"].header("Set-Cookie") == "ws_uid=\(user); Path=/; HttpOnly; SameSite=Lax",
                            "\(user): \(c["response"])")
                }
            }
            let paths = pair.compactMap { $0["server"]["path"].string }
            #expect(Set(paths) == ["/ws/\(user)/hmr", "/?token=\(user)"], "\(user): paths upstream \(paths)")
            let ports = pair.compactMap { $0["server"]["port"].int }
            #expect(ports.count == 2 && ports[0] == ports[1], "\(user): path and cookie upgrades on different nodes \(ports)")
            // The placement the upgrades made is the one plain HTTP requests get.
            let http = try scope.get(gw.url("/ws/\(user)/"))
            let node = try #require(http.header("X-WS-Upstream"), "\(http.summary)")
            #expect(nodePort[node] == ports.first, "\(user): placed on \(node), upgraded on port \(ports)")
            #expect(JSONValue(data: http.body)["port"].int == ports.first, "\(http.summary)")
            if let port = ports.first { used.insert(port) }
        }
        #expect(used == Set(peer.wsPorts), "\(users.count) users all on one node: \(used)")
    }

    // MARK: - Scale

    @Test("1,000 WebSocket connections open at once, each echoing")
    func thousandConcurrent() throws {
        let scope = try Scope("ws-1000")
        defer { scope.close() }
        let (_, gw) = try staticSetup(scope)
        let r = try scope.wsClient("concurrent", ["--url", "ws://127.0.0.1:\(gw.port)/many", "--count", "1000"], timeout: 120)
        #expect(r["error"].isNull, "\(r)")
        #expect(r["opened"].int == 1000, "\(r)")
        #expect(r["echoed"].int == 1000, "\(r)")
        #expect(r["failures"].array.isEmpty, "\(r["failures"])")
        #expect((r["server_peak"].int ?? 0) >= 1000, "the upstream never had 1,000 open at once: \(r)")
        // The gateway is still serving plain HTTP afterwards.
        let after = try scope.get(gw.url("/raw/http"))
        #expect(after.status == 200, "\(after.summary)")
    }
}

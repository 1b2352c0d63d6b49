// Edge tunnels with the real agent (`switchyard edge-agent`, the same binary) between the
// cluster gateway and an origin that terminates TLS itself (Harness+Edge.swift). The cluster
// never holds node1.edge.test's key: a handshake that verifies as node1.edge.test can only have
// been done by the origin, end to end through the tunnel.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Edge agent", .serialized)
struct EdgeAgentTests {
    private func load(_ w: EdgeWorld, sizes: [Int], stall: Int = 0, name: String = "node1.edge.test") throws -> AJSON {
        let python = try w.scope.venvPython()
        var args = [Paths.peer("edgeload.py"), "--port", String(w.tlsPort), "--name", name,
                    "--cafile", try ListenerPKI.shared().rootCertificate, "--sizes", sizes.map(String.init).joined(separator: ",")]
        if stall > 0 { args += ["--stall-size", String(stall)] }
        let r = try w.scope.run(python, args, timeout: 300)
        guard !r.timedOut else { throw HarnessError("edgeload timed out: \(r.stderr.suffix(2000))") }
        return AJSON(data: r.stdout)
    }

    @Test("the origin's own certificate through the gateway, the gateway's for workspaces on the same port; plain HTTP of the host through the tunnel")
    func endToEnd() throws {
        let scope = try Scope("edge-e2e")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()
        let agent = try w.startAgent()
        try w.waitTunnel("node1", attached: true)

        let edge = try scope.sClient(port: w.tlsPort, serverName: "node1.edge.test", verify: "node1.edge.test")
        #expect(edge.ou == "edge-origin" && edge.verified, "\(edge)")
        let wildcard = try scope.sClient(port: w.tlsPort, serverName: "app.node1.edge.test", verify: "app.node1.edge.test")
        #expect(wildcard.ou == "edge-origin" && wildcard.verified, "\(wildcard)")
        let local = try scope.sClient(port: w.tlsPort, serverName: "default.test", verify: "default.test")
        #expect(local.ou == "default" && local.verified, "\(local)")

        let page = try scope.curl(try w.tlsCurl("node1.edge.test") + ["https://node1.edge.test:\(w.tlsPort)/echo?x=1"])
        let echo = Echo.decode(page.body)
        #expect(page.status == 200 && echo?.port == w.originPort, "\(page)")
        // No X-Forwarded-* from the gateway: it never saw the request.
        #expect(echo?.header("x-forwarded-for") == nil, "\(String(describing: echo))")

        let plain = try scope.get("http://127.0.0.1:\(w.plainPort)/echo", headers: ["Host: node1.edge.test"])
        #expect(plain.status == 200 && Echo.decode(plain.body)?.port == w.originHTTPPort,
                "\(plain) gateway: \(w.gateway.child.stderr.suffix(1500)) agent: \(agent.stderr.suffix(1500))")

        let metrics = try PromText.parse(try w.admin().get("/metrics").text)
        #expect(metrics.sum("switchyard_edge_tunnels", ["edge": "node1"]) == 2, "\(w.gateway.child.stderr.suffix(1500))")
        #expect(metrics.sum("switchyard_edge_connections_total") >= 4)
        #expect(agent.stderr.contains("edge_agent attach"), "\(agent.stderr.suffix(1500))")
        let nodes = AJSON(data: Data(try w.admin().get("/.cluster/nodes").body))
        #expect(nodes["nodes"].array.first { $0["node_id"].string == "node1" }?["status"].string == "online", "\(nodes)")
    }

    @Test("200 parallel connections of 1 B to 50 MB through one agent arrive intact, a stalled reader beside them")
    func parallelLoad() throws {
        let scope = try Scope("edge-load")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()
        _ = try w.startAgent()
        try w.waitTunnel("node1", attached: true)

        let mb = 1 << 20
        var sizes = [50 * mb, 50 * mb, 20 * mb, 20 * mb, 10 * mb, 10 * mb, 5 * mb, 5 * mb]
        sizes += Array(repeating: mb, count: 20)
        let small = [1, 2, 100, 1_000, 16_383, 16_384, 16_385, 65_535, 65_536, 65_537, 262_144, 300_001]
        while sizes.count < 200 { sizes.append(small[sizes.count % small.count]) }
        let r = try load(w, sizes: sizes, stall: 8 * mb)
        #expect(r["ok"].int == 200, "\(r)")
        #expect(r["stalled_ok"].bool == true, "\(r)")
        #expect(r["subjects"].array.map { $0.string } == ["node1.edge.test"], "\(r)")
        let open = try eventually(5) {
            try PromText.parse(try w.admin().get("/metrics").text).sum("switchyard_edge_open_connections") == 0
        }
        #expect(open, "tunnel streams left open after the load")
    }

    @Test("agent killed: new connections refused at once, open ones closed; agent restarted: served again")
    func killAndRestart() throws {
        let scope = try Scope("edge-kill")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()
        let agent = try w.startAgent()
        try w.waitTunnel("node1", attached: true)
        #expect(try scope.curl(try w.tlsCurl("node1.edge.test") + ["https://node1.edge.test:\(w.tlsPort)/echo"]).status == 200)

        // A slow download in flight through the tunnel.
        let curl = try #require(Paths.which("curl"))
        let slow = try scope.spawn("slow", curl, try w.tlsCurl("node1.edge.test") +
                                   ["-s", "-o", "/dev/null", "--limit-rate", "200k", "https://node1.edge.test:\(w.tlsPort)/bytes/50000000"])
        func openLinks() throws -> Double { try PromText.parse(try w.admin().get("/metrics").text).sum("switchyard_edge_open_connections") }
        #expect(try eventually(5) { try openLinks() == 1 } && slow.isRunning)
        agent.signal(SIGKILL)
        agent.wait(timeout: 5)
        // The gateway closes it at once (with a reset; the client still reads what its own
        // receive buffer holds, at its 200 KB/s, before it sees the reset).
        #expect(try eventually(1) { try openLinks() == 0 }, "the open passthrough connection was not closed")
        slow.stop(grace: 0.1)

        // The kernel closed the agent's sockets: the gateway saw it; new connections fail at once.
        let refused = try scope.curl(try w.tlsCurl("node1.edge.test") + ["https://node1.edge.test:\(w.tlsPort)/"], maxTime: 10)
        #expect(refused.exitCode != 0 && refused.timeTotal < 1, "\(refused)")
        try w.waitTunnel("node1", attached: false)
        #expect(eventually(3) { w.gateway.child.stderr.contains("edge_detach") }, "\(w.gateway.child.stderr.suffix(1500))")

        _ = try w.startAgent(name: "agent-node1-again")
        try w.waitTunnel("node1", attached: true)
        let back = try scope.curl(try w.tlsCurl("node1.edge.test") + ["https://node1.edge.test:\(w.tlsPort)/echo"])
        #expect(back.status == 200 && Echo.decode(back.body)?.port == w.originPort, "\(back)")
    }

    @Test("two centers on one registry: edges made through either reach both, both know which center holds a tunnel, the other relays its clients there, and a restarted center still has them")
    func sharedRegistry() throws {
        let scope = try Scope("edge-centers")
        defer { scope.close() }
        let a = try scope.startEdgeWorld(center: "center-a", name: "gateway-a")
        let b = try scope.startEdgeWorld(center: "center-b", sharing: a, name: "gateway-b")

        let made = try a.admin().call("PUT", "/admin/edges/node3", "{\"hostnames\": [\"node3.edge.test\"]}")
        #expect(made.status == 201, "\(made)")
        #expect(try eventually(5) { try b.admin().get("/admin/edges/node3").status == 200 })

        _ = try a.startAgent()
        try a.waitTunnel("node1", attached: true)
        #expect(try eventually(5) { try b.edge("node1")["tunnel_center"].string == "center-a" }, "\((try? b.edge("node1")) ?? AJSON(nil))")
        let nodes = AJSON(data: Data(try b.admin().get("/.cluster/nodes").body))
        let row = nodes["nodes"].array.first { $0["node_id"].string == "node1" }
        #expect(row?["status"].string == "online" && row?["tunnel_center"].string == "center-a", "\(nodes)")
        // b has no tunnel of node1: it relays to center-a, unread (the origin's certificate still
        // verifies), TLS and plain HTTP alike, many connections at once intact.
        let edge = try scope.sClient(port: b.tlsPort, serverName: "node1.edge.test", verify: "node1.edge.test")
        #expect(edge.ou == "edge-origin" && edge.verified, "\(edge) \(b.gateway.child.stderr.suffix(1500))")
        let atB = try scope.curl(try b.tlsCurl("node1.edge.test") + ["https://node1.edge.test:\(b.tlsPort)/echo"])
        #expect(atB.status == 200 && Echo.decode(atB.body)?.port == a.originPort, "\(atB)")
        let plainAtB = try scope.get("http://127.0.0.1:\(b.plainPort)/echo", headers: ["Host: node1.edge.test"])
        #expect(plainAtB.status == 200 && Echo.decode(plainAtB.body)?.port == a.originHTTPPort, "\(plainAtB)")
        let r = try load(b, sizes: Array(repeating: 1 << 20, count: 10) + Array(repeating: 1_000, count: 10))
        #expect(r["ok"].int == 20, "\(r)")
        let relayed = try PromText.parse(try b.admin().get("/metrics").text).sum("switchyard_edge_relayed_total")
        #expect(relayed >= 23, "\(relayed)")
        // node2 has no agent anywhere: refused at once.
        let node2 = try scope.curl(try b.tlsCurl("node2.edge.test") + ["https://node2.edge.test:\(b.tlsPort)/"], maxTime: 5)
        #expect(node2.exitCode != 0 && node2.timeTotal < 1, "\(node2)")

        // a stops: its tunnels end, and b hears that no center holds node1's any more.
        a.gateway.child.stop()
        #expect(try eventually(5) { try b.edge("node1")["tunnel_center"].isNull }, "\((try? b.edge("node1")) ?? AJSON(nil))")
        let again = try scope.startEdgeWorld(center: "center-a", sharing: b, name: "gateway-a2")
        let node3 = try again.edge("node3")
        #expect(node3["has_token"].bool == true && node3["hostnames"].array.map { $0.string } == ["node3.edge.test"], "\(node3)")
    }

    @Test("an agent with a wrong token, or claiming another edge's names, is refused 403 and keeps retrying with backoff")
    func refusedAgents() throws {
        let scope = try Scope("edge-refused")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()
        let wrong = try w.startAgent("node1", name: "agent-wrong", tunnels: 1, token: "not-the-token-of-node1-at-all")
        let greedy = try w.startAgent("node1", name: "agent-greedy", tunnels: 1, hostnames: ["node1.edge.test", "node2.edge.test"])
        let both = eventually(10) {
            wrong.stderr.contains("status=403") && greedy.stderr.contains("status=403")
        }
        #expect(both, "wrong: \(wrong.stderr.suffix(800)) greedy: \(greedy.stderr.suffix(800))")
        #expect(try w.edge("node1")["tunnel_center"].isNull)
        // Backoff: a few attempts in two seconds, not hundreds.
        func attempts() -> Int { w.gateway.child.stderr.split(separator: "\n").filter { $0.contains("edge_attach_refused") }.count }
        #expect(eventually(5) { attempts() >= 4 }, "\(attempts()) refused attaches: \(w.gateway.child.stderr.suffix(1500))")
        sleep(2)
        #expect(attempts() < 60, "\(attempts()) refused attaches: no backoff")
        #expect(wrong.isRunning && greedy.isRunning)
    }
}

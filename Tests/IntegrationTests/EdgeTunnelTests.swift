// Edge tunnels end to end (docs/edge-tunnel.md): the built gateway as the cluster, with one TLS
// listener doing L7 termination for workspaces and L4 SNI passthrough for proxy-mode edges side by
// side; `switchyard edge-agent` (the same binary) dialing it and forwarding to an origin that
// terminates TLS itself with node1.edge.test's own certificate (upstream.py --tls-cert).
//
// Covered: the origin's certificate seen through the gateway (it never decrypts) while workspace
// hosts get the gateway's; 200 parallel connections of 1 B to 50 MB intact through one agent,
// with a stalled reader beside them; agent killed → new connections refused at once; agent back →
// served again; plain HTTP of a proxy-mode host through the tunnel; direct mode → 307 with path
// and query; attach refusals (no token, wrong token, foreign claims, unknown edge); the signal API
// flipping modes both ways; the admin API's edges and token rotation.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Edge tunnels", .serialized)
struct EdgeTunnelTests {
    /// curl's `-w %{http_code}` of an attach attempt (101 is reported though curl then waits for
    /// more: its time limit ends it).
    private func attach(_ w: EdgeWorld, node: String, token: String?, claims: String? = nil,
                        upgrade: Bool = true) throws -> CurlResult {
        var h = ["-H", "X-Switchyard-Edge-Node: \(node)", "-H", "X-Switchyard-Edge-Tunnel: 0"]
        if upgrade { h += ["-H", "Connection: Upgrade", "-H", "Upgrade: switchyard-tunnel/1"] }
        if let token { h += ["-H", "Authorization: Bearer \(token)"] }
        if let claims { h += ["-H", "X-Switchyard-Edge-Hostnames: \(claims)"] }
        return try w.scope.curl(try w.tlsCurl("default.test") + h + ["https://default.test:\(w.tlsPort)/.edge/attach"], maxTime: 2)
    }

    @Test("without an agent: direct mode answers 307 with path and query, proxy mode 503 over HTTP and unrecognized_name over TLS, workspaces get the gateway's certificate")
    func withoutAgent() throws {
        let scope = try Scope("edge-none")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()

        let direct = try scope.get("http://127.0.0.1:\(w.plainPort)/some/path?x=1&y=%2F", headers: ["Host: direct1.edge.test"])
        #expect(direct.status == 307, "\(direct)")
        #expect(direct.header("location") == "https://127.0.0.9:8443/some/path?x=1&y=%2F", "\(direct.headers)")
        // Terminated requests for a direct-mode host are redirected as well.
        let directTLS = try scope.curl(try w.tlsCurl("default.test") + ["-H", "Host: direct1.edge.test", "https://default.test:\(w.tlsPort)/a?b"])
        #expect(directTLS.status == 307 && directTLS.header("location") == "https://127.0.0.9:8443/a?b", "\(directTLS)")

        let proxy = try scope.get("http://127.0.0.1:\(w.plainPort)/", headers: ["Host: node1.edge.test"])
        #expect(proxy.status == 503, "\(proxy)")
        #expect(AJSON(data: proxy.body)["error"].string != nil, "\(String(decoding: proxy.body, as: UTF8.self))")
        let unknown = try scope.get("http://127.0.0.1:\(w.plainPort)/", headers: ["Host: nobody.edge.test"])
        #expect(unknown.status == 404, "\(unknown)")

        // SNI of a proxy-mode edge without a tunnel: refused at once, with unrecognized_name.
        let probe = try scope.sClient(port: w.tlsPort, serverName: "app.node1.edge.test")
        #expect(!probe.handshakeDone && probe.output.contains("unrecognized name"), "\(probe)")
        let fast = try scope.curl(try w.tlsCurl("node1.edge.test") + ["https://node1.edge.test:\(w.tlsPort)/"], maxTime: 5)
        #expect(fast.exitCode != 0 && fast.timeTotal < 1, "\(fast)")

        // The same listener still terminates for everything else.
        let ws = try scope.sClient(port: w.tlsPort, serverName: "default.test", verify: "default.test")
        #expect(ws.ou == "default" && ws.verified, "\(ws)")
        let page = try scope.curl(try w.tlsCurl("default.test") + ["https://default.test:\(w.tlsPort)/echo"])
        #expect(page.status == 200, "\(page)")
    }

    @Test("attach: 400 without the upgrade, 401 without a token, 403 for a wrong token or another edge's names, 404 for an unknown edge, 101 for the right one")
    func attachRefusals() throws {
        let scope = try Scope("edge-attach")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()
        let token = w.tokens["node1"]!

        #expect(try attach(w, node: "node1", token: token, upgrade: false).status == 400)
        let none = try attach(w, node: "node1", token: nil)
        #expect(none.status == 401 && AJSON(data: none.body)["error"].string != nil, "\(none)")
        #expect(try attach(w, node: "node1", token: w.tokens["node2"]!).status == 403)
        #expect(try attach(w, node: "node1", token: token, claims: "node1.edge.test, node2.edge.test").status == 403)
        #expect(try attach(w, node: "ghost", token: token).status == 404)
        #expect(try attach(w, node: "node1", token: token, claims: "node1.edge.test, *.node1.edge.test").status == 101)
        #expect(w.gateway.child.stderr.contains("edge_attach_refused"), "\(w.gateway.child.stderr.suffix(2000))")
    }

    @Test("signal: a successful direct probe flips to direct at once, three failed ones with a tunnel flip back to proxy; the admin API and /.cluster/nodes show the reason")
    func signalFlips() throws {
        let scope = try Scope("edge-signal")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()

        #expect(try w.signal("node1", token: w.tokens["node2"], ok: [true], tunnelActive: true).status == 403)
        #expect(try w.signal("nobody", token: w.tokens["node1"], ok: [true], tunnelActive: true).status == 404)
        let bad = try w.admin().call("POST", "/api/signal", "{\"node_id\": \"node1\", \"reachability\": {\"samples\": [{\"ok\": \"yes\"}]}}",
                                     auth: .none, headers: ["Authorization: Bearer \(w.tokens["node1"]!)"])
        #expect(bad.status == 400, "\(bad)")
        #expect(try w.edge("node1")["mode"].string == "proxy")

        let up = try w.signal("node1", ok: [true], publicAddress: "https://127.0.0.10:9443", tunnelActive: true)
        #expect(up.status == 200 && AJSON(data: Data(up.body))["mode"].string == "direct", "\(up)")
        let e = try w.edge("node1")
        #expect(e["mode"].string == "direct" && e["public_address"].string == "https://127.0.0.10:9443", "\(e)")
        let moved = try scope.get("http://127.0.0.1:\(w.plainPort)/p?q", headers: ["Host: node1.edge.test"])
        #expect(moved.status == 307 && moved.header("location") == "https://127.0.0.10:9443/p?q", "\(moved)")

        // Two failures are not enough; the third flips back.
        #expect(AJSON(data: Data(try w.signal("node1", ok: [false, false], tunnelActive: true).body))["mode"].string == "direct")
        let down = try w.signal("node1", ok: [false], tunnelActive: true)
        #expect(AJSON(data: Data(down.body))["mode"].string == "proxy", "\(down)")
        let back = try w.edge("node1")
        #expect(back["mode"].string == "proxy" && (back["mode_reason"].string ?? "").contains("3"), "\(back)")
        #expect(try scope.get("http://127.0.0.1:\(w.plainPort)/", headers: ["Host: node1.edge.test"]).status == 503)

        let list = AJSON(data: Data(try w.admin().get("/admin/edges").body))
        #expect(list["mode_flips"]["to_direct"].int == 1 && list["mode_flips"]["to_proxy"].int == 1, "\(list)")
        let nodes = AJSON(data: Data(try w.admin().get("/.cluster/nodes").body))
        let row = nodes["nodes"].array.first { $0["node_id"].string == "node1" }
        #expect(row?["type"].string == "edge" && row?["mode"].string == "proxy" && row?["mode_reason"].string != nil, "\(nodes)")
        let flips = w.gateway.child.stderr.split(separator: "\n").filter { $0.contains("edge_mode edge=node1") }
        #expect(flips.count == 2, "\(flips)")
    }

    @Test("admin API: create an edge (token shown once), refuse a taken hostname, rotate a token without touching other tunnels, delete")
    func adminEdges() throws {
        let scope = try Scope("edge-admin")
        defer { scope.close() }
        let w = try scope.startEdgeWorld()
        let a = w.admin()

        let made = try a.call("PUT", "/admin/edges/node3", "{\"hostnames\": [\"node3.edge.test\"]}")
        #expect(made.status == 201, "\(made)")
        let token3 = AJSON(data: Data(made.body))["token"].string ?? ""
        #expect(token3.count >= 32)
        #expect(AJSON(data: Data(try a.get("/admin/edges/node3").body))["token"].isNull)
        #expect(try a.call("PUT", "/admin/edges/node4", "{\"hostnames\": [\"node1.edge.test\"]}").status == 409)
        #expect(try a.call("PUT", "/admin/edges/node4", "{\"hostnames\": [\"Not A Host\"]}").status == 400)
        #expect(try a.call("PUT", "/admin/edges/node4", "{\"hostnames\": [\"n4.edge.test\"], \"mode\": \"direct\"}").status == 400)
        #expect(try a.call("PUT", "/admin/edges/node4", "{\"hostnames\": [\"n4.edge.test\"], \"extra\": 1}").status == 400)
        #expect(try a.call("PUT", "/admin/edges/node3", "{\"hostnames\": [\"node3.edge.test\"]}", auth: .none).status == 401)
        #expect(try attach(w, node: "node3", token: token3).status == 101)

        let rotated = try a.call("POST", "/admin/edges/node3/token")
        let fresh = AJSON(data: Data(rotated.body))["token"].string ?? ""
        #expect(rotated.status == 200 && !fresh.isEmpty && fresh != token3, "\(rotated)")
        #expect(try attach(w, node: "node3", token: token3).status == 403)
        #expect(try attach(w, node: "node3", token: fresh).status == 101)
        #expect(try attach(w, node: "node1", token: w.tokens["node1"]!).status == 101)

        #expect(try a.call("DELETE", "/admin/edges/node3").status == 200)
        #expect(try a.get("/admin/edges/node3").status == 404)
        #expect(try attach(w, node: "node3", token: fresh).status == 404)
        let audit = w.gateway.child.stderr.split(separator: "\n").filter { $0.contains(" level=audit ") && $0.contains("edge.") }
        #expect(audit.count >= 3, "\(audit)")
        #expect(!audit.contains { $0.contains(token3) || $0.contains(fresh) }, "a token in the audit log")
    }
}

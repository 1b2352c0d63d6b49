// Node heartbeats and port reports end to end: a node registered by heartbeat takes users;
// when its heartbeats stop it takes none after the pool's threshold (2 s here) and shows
// healthy=false; with its next heartbeat it is selectable again. Port reports (in heartbeats
// and through PUT /internal/placements/...) land on the placement.

import Foundation
import Testing

@Suite("Node heartbeats and port reports", .serialized)
struct HeartbeatTests {
    private func start(_ scope: Scope, threshold: String) throws -> (AdminGateway, Upstreams) {
        let up = try scope.startUpstreams(3)
        var config = AdminGatewayConfig(port: try Ports.free(), adminPort: try Ports.free(), database: scope.path("var/registry.db"))
        config.nodes = [StickyNode("rt-1", up.addresses[2], pool: "runtime")]
        config.workspacePool = "heartbeat_threshold: \(threshold), retry_after: 7s"
        return (try scope.startAdminGateway(config), up)
    }

    /// A heartbeat body for node `name` on upstream address `address`.
    private func beat(_ name: String, _ address: String, pool: String = "workspace", extra: String = "") -> String {
        "{\"name\": \"\(name)\", \"pool\": \"\(pool)\", \"address\": \"\(address)\", \"preview_base_url\": \"http://\(address)\"\(extra)}"
    }

    @Test("a node registered by heartbeat is selectable; stale after the threshold (503, healthy=false); selectable again when it resumes")
    func staleAndBack() throws {
        let scope = try Scope("heartbeat-stale")
        defer { scope.close() }
        let (gw, up) = try start(scope, threshold: "2s")
        defer { up.child.kill9() }
        let a = gw.client()
        let web = gw.publicClient()
        let token = gw.config.nodeToken
        func heartbeat(_ name: String, _ i: Int) throws {
            let r = try a.call("POST", "/internal/nodes/heartbeat", beat(name, up.addresses[i]), auth: .node(token))
            #expect(r.status == 200 && r.json["node"].string == name, "heartbeat \(name): \(r)")
        }
        /// (status, node chosen, upstream port that answered, error) of a request for `user`.
        func visit(_ user: String) throws -> (Int, String?, Int?, String?) {
            let r = try web.send("GET", "/ws/\(user)/index.html")
            return (r.status, r.header("X-WS-Upstream"), r.header("X-Upstream-Port").flatMap { Int($0) }, r.json["error"].string)
        }

        // No node yet: nobody can be placed.
        #expect(try visit("early").0 == 503)
        try heartbeat("hb-1", 0)
        let fresh = try a.node("hb-1")
        #expect(fresh["healthy"].bool == true && fresh["static"].bool == false && fresh["enabled"].bool == true, "\(fresh)")
        #expect((fresh["last_heartbeat_age_ms"].int ?? -1) >= 0 && (fresh["last_heartbeat_age_ms"].int ?? 99_999) < 2000, "\(fresh)")
        let first = try visit("h1")
        #expect(first.0 != 503 && first.1 == "hb-1" && first.2 == up.ports[0], "\(first)")

        // Heartbeats stop: after 2 s hb-1 is unhealthy and takes no one new; its own user gets node_down.
        let stale = try a.waitHealthy("hb-1", false)
        #expect(stale["enabled"].bool == true && (stale["last_heartbeat_age_ms"].int ?? 0) > 2000, "\(stale)")
        let listed = try a.get("/admin/nodes?pool=workspace").json["nodes"].array.first { $0["name"].string == "hb-1" }
        #expect(listed?["healthy"].bool == false)
        let metrics = try PromText.parse(try a.call("GET", "/metrics", auth: .none).text)
        #expect(metrics.sum("switchyard_node_healthy", ["node": "hb-1"]) == 0)
        #expect(metrics.sum("switchyard_node_heartbeat_age_seconds", ["node": "hb-1"]) >= 2)
        let newcomer = try visit("h2")
        #expect(newcomer.0 == 503 && newcomer.3 == "no_healthy_node", "\(newcomer)")
        let down = try web.send("GET", "/ws/h1/index.html")
        #expect(down.status == 503 && down.json["error"].string == "node_down", "\(down)")
        #expect(down.header("Retry-After") == "7", "\(down.headers)")
        #expect(try a.get("/admin/placements/workspace/h1").json["node"].string == "hb-1", "a stale node lost its user")
        #expect(try a.get("/admin/placements/workspace/h2").status == 404)
        let explained = try a.get("/admin/routes/explain?url=/ws/h3/")
        #expect(explained.json["outcome"].string?.contains("no_healthy_node") == true, "\(explained)")

        // Another node heartbeats: new users go there while hb-1 stays stale.
        try heartbeat("hb-2", 1)
        for i in 0..<8 {
            let v = try visit("n\(i)")
            #expect(v.1 == "hb-2" && v.2 == up.ports[1], "n\(i): \(v)")
        }

        // hb-1 resumes: healthy, its user is served again, and it takes new users again.
        try heartbeat("hb-1", 0)
        try heartbeat("hb-2", 1)
        #expect(try a.node("hb-1")["healthy"].bool == true)
        let back = try visit("h1")
        #expect(back.1 == "hb-1" && back.2 == up.ports[0], "\(back)")
        var onOne = 0
        for i in 0..<20 where try visit("after\(i)").1 == "hb-1" { onOne += 1 }
        #expect(onOne > 0, "no new user went to hb-1 after it resumed")

        // A heartbeat never overrides the operator's enabled flag.
        #expect(try a.call("POST", "/admin/nodes/hb-1/disable").status == 200)
        try heartbeat("hb-1", 0)
        let disabled = try a.node("hb-1")
        #expect(disabled["enabled"].bool == false && disabled["healthy"].bool == false, "\(disabled)")
        // And an update by heartbeat keeps the node's identity: same created_at, new weight.
        let created = disabled["created_at"].int
        let r = try a.call("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: ", \"weight\": 300"), auth: .node(token))
        #expect(r.status == 200, "\(r)")
        let updated = try a.node("hb-1")
        #expect(updated["weight"].int == 300 && updated["created_at"].int == created && updated["enabled"].bool == false, "\(updated)")
    }

    @Test("port reports: heartbeat workspaces and PUT /internal/placements record host_port; bad reports change nothing")
    func portReports() throws {
        let scope = try Scope("heartbeat-ports")
        defer { scope.close() }
        let (gw, up) = try start(scope, threshold: "60s")
        defer { up.child.kill9() }
        let a = gw.client()
        let web = gw.publicClient()
        let token = gw.config.nodeToken
        func call(_ method: String, _ path: String, _ body: String, auth: AdminClient.Auth? = nil) throws -> Reply {
            try a.call(method, path, body, auth: auth ?? .node(token))
        }
        func hostPort(_ key: String) throws -> Int? { try a.get("/admin/placements/workspace/\(key)").json["host_port"].int }

        #expect(try call("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0])).status == 200)
        for user in ["p1", "p2", "p3"] {
            #expect(try web.send("GET", "/ws/\(user)/").header("X-WS-Upstream") == "hb-1")
        }
        #expect(try call("POST", "/internal/nodes/heartbeat", beat("hb-2", up.addresses[1])).status == 200)

        // Reports for keys placed on the node are recorded; others (unplaced, or another node's) are ignored.
        let workspaces = #", "workspaces": [{"key": "p1", "host_port": 31001}, {"key": "nobody", "host_port": 31002}]"#
        let hb = try call("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: workspaces))
        #expect(hb.status == 200, "\(hb)")
        #expect(hb.json["node"].string == "hb-1" && hb.json["ports_recorded"].int == 1 && hb.json["ports_ignored"].int == 1, "\(hb)")
        #expect(try hostPort("p1") == 31001)
        #expect(try a.get("/admin/placements/workspace/nobody").status == 404, "a port report created a placement")
        let foreign = try call("POST", "/internal/nodes/heartbeat",
                               beat("hb-2", up.addresses[1], extra: #", "workspaces": [{"key": "p2", "host_port": 31009}]"#))
        #expect(foreign.json["ports_recorded"].int == 0 && foreign.json["ports_ignored"].int == 1, "\(foreign)")
        #expect(try hostPort("p2") == 0, "hb-2 set the port of hb-1's user")
        #expect(try a.get("/admin/placements?node=hb-1").json["placements"].array.first { $0["key"].string == "p1" }?["host_port"].int == 31001)

        // One port at a time.
        let put = try call("PUT", "/internal/placements/workspace/p2", #"{"host_port": 31005}"#)
        #expect(put.status == 200, "\(put)")
        #expect(put.json["host_port"].int == 31005 && put.json["node"].string == "hb-1" && put.json["key"].string == "p2", "\(put)")
        #expect(try hostPort("p2") == 31005)
        #expect(try call("PUT", "/internal/placements/workspace/p2", #"{"host_port": 31006, "node": "hb-1"}"#).status == 200)
        #expect(try hostPort("p2") == 31006)
        #expect(try call("PUT", "/internal/placements/workspace/p3", #"{"host_port": 31007}"#).status == 200)
        #expect(try call("PUT", "/internal/placements/workspace/p3", #"{"host_port": 0}"#).status == 200)
        #expect(try hostPort("p3") == 0, "host_port 0 should forget the port")

        // Refusals: each one leaves p1 = 31001, p2 = 31006.
        let refusals: [(String, String, String, Int, String?)] = [
            ("PUT", "/internal/placements/workspace/p2", #"{"host_port": 70000}"#, 400, "host_port"),
            ("PUT", "/internal/placements/workspace/p2", #"{"host_port": -1}"#, 400, "host_port"),
            ("PUT", "/internal/placements/workspace/p2", #"{"host_port": "31010"}"#, 400, "host_port"),
            ("PUT", "/internal/placements/workspace/p2", "{}", 400, "host_port"),
            ("PUT", "/internal/placements/workspace/p2", #"{"host_port": 31010, "pid": 1}"#, 400, "pid"),
            ("PUT", "/internal/placements/workspace/p2", #"{"host_port": 31010, "node": "hb-2"}"#, 409, "node"),
            ("PUT", "/internal/placements/workspace/p2", #"{"host_port": 31010"#, 400, nil),
            ("PUT", "/internal/placements/workspace/nobody", #"{"host_port": 31010}"#, 404, nil),
            ("PUT", "/internal/placements/bad%20pool/p2", #"{"host_port": 31010}"#, 400, "pool"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: #", "workspaces": [{"key": "p1", "host_port": 40000}, {"key": "p2", "host_port": 0}]"#), 400, "workspaces[1].host_port"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: #", "workspaces": [{"key": "p1", "host_port": 40000}, {"key": "bad key", "host_port": 1}]"#), 400, "workspaces[1].key"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: #", "workspaces": [{"key": "p1", "host_port": 40000, "x": 1}]"#), 400, "workspaces[0].x"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: #", "workspaces": {"key": "p1"}"#), 400, "workspaces"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: #", "enabled": true"#), 400, "enabled"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], extra: #", "weight": 0"#), 400, "weight"),
            ("POST", "/internal/nodes/heartbeat", beat("hb-1", "127.0.0.1:0"), 400, "address"),
            ("POST", "/internal/nodes/heartbeat", #"{"pool": "workspace"}"#, 400, "name"),
            ("POST", "/internal/nodes/heartbeat", #"{"name": "hb-1"}"#, 400, "pool"),
            ("POST", "/internal/nodes/heartbeat", #"{"name": "hb-new", "pool": "workspace"}"#, 400, "address"),
            ("POST", "/internal/nodes/heartbeat", #"{"name": "bad name", "pool": "workspace"}"#, 400, "name"),
        ]
        for (method, path, body, status, field) in refusals {
            let r = try call(method, path, body)
            #expect(r.status == status, "\(method) \(path) \(body): \(r)")
            if let field { #expect(r.field == field, "\(method) \(path) \(body): \(r)") }
            #expect(try hostPort("p1") == 31001 && (try hostPort("p2")) == 31006, "a refused report changed a port: \(method) \(body)")
        }
        #expect(try a.get("/admin/nodes/hb-new").status == 404)
        #expect(try a.node("hb-1")["weight"].int == 100, "a refused heartbeat changed the node")

        // Pools are the node's: another pool's token, a node of another pool, a static node.
        let runtime = gw.config.runtimeNodeToken
        let wrongPool = try call("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0], pool: "runtime"), auth: .node(runtime))
        #expect(wrongPool.status == 409 && wrongPool.field == "pool", "\(wrongPool)")
        let staticNode = try call("POST", "/internal/nodes/heartbeat", beat("rt-1", up.addresses[2], pool: "runtime"), auth: .node(runtime))
        #expect(staticNode.status == 409 && staticNode.field == "name", "\(staticNode)")
        #expect(try call("POST", "/internal/nodes/heartbeat", beat("hb-1", up.addresses[0]), auth: .node(runtime)).status == 403)
        #expect(try call("PUT", "/internal/placements/workspace/p2", #"{"host_port": 31010}"#, auth: .node(runtime)).status == 403)
        #expect(try a.node("hb-1")["pool"].string == "workspace")

        // A reassign forgets the port (it was the old node's container).
        #expect(try a.call("POST", "/admin/placements/workspace/p1/reassign", #"{"node": "hb-2"}"#).status == 200)
        #expect(try hostPort("p1") == 0)
    }
}

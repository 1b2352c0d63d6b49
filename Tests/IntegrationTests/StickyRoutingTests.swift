// Sticky routing end to end: keyed routes (path segment, cookie, query) over two Python
// "workspace nodes", placements persisted in SQLite across restarts and kill -9, and the
// gateway's answers when no node can take a key.

import Foundation
import Testing

@Suite("Sticky routing")
struct StickyRoutingTests {
    /// A gateway with a workspace pool of `nodes` and the three keyed routes: /ws/ by path
    /// segment, the fun-ai API by query, the rest by cookie.
    private func start(_ scope: Scope, port: Int, database: String, nodes: [StickyNode], name: String = "gateway") throws -> Gateway {
        try scope.startGateway(StickyConfig(port: port, database: database, nodes: nodes,
                                            routes: [.workspace, .workspaceAPI, .assets]), name: name)
    }

    @Test("same user, same node, every time; cookie and query routes follow the user")
    func sameUserSameNode() throws {
        let scope = try Scope("sticky-same")
        defer { scope.close() }
        let up = try scope.startUpstreams(2)
        let port = try Ports.free()
        let gw = try start(scope, port: port, database: scope.path("var/registry.db"),
                           nodes: [StickyNode("ws-1", up.addresses[0]), StickyNode("ws-2", up.addresses[1])])
        let nodePort = ["ws-1": String(up.ports[0]), "ws-2": String(up.ports[1])]
        var first: [String: String] = [:]
        for round in 0..<3 {
            for i in 0..<20 {
                let user = "user-\(i)"
                let r = try scope.get(gw.url("/ws/\(user)/index.html"))
                // The Python node answers 404 for paths it does not serve; X-Upstream-Port says
                // which node answered, X-WS-Upstream which node the gateway chose.
                let node = try #require(r.header("X-WS-Upstream"), "\(r.summary)")
                // The header names the node that really answered.
                #expect(r.header("X-Upstream-Port") == nodePort[node], "\(user): \(node) vs port \(r.header("X-Upstream-Port") ?? "-")")
                #expect(r.header("Set-Cookie") == "ws_uid=\(user); Path=/; HttpOnly; SameSite=Lax")
                if round == 0 { first[user] = node } else { #expect(first[user] == node, "\(user) moved") }
            }
        }
        #expect(Set(first.values) == ["ws-1", "ws-2"], "20 users all on one node: \(first)")
        for (user, node) in first.prefix(5) {
            let asset = try scope.get(gw.url("/@vite/client"), headers: ["Cookie: theme=dark; ws_uid=\(user)"])
            #expect(asset.header("X-WS-Upstream") == node, "cookie-routed asset of \(user)")
            let api = try scope.get(gw.url("/api/fun-ai/workspace/status?userId=\(user)"))
            #expect(api.header("X-WS-Upstream") == node, "query-routed API call of \(user)")
        }
    }

    @Test("a keyed route without a usable key is a 400 with a JSON reason, not a guess")
    func missingOrBadKey() throws {
        let scope = try Scope("sticky-nokey")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let port = try Ports.free()
        let gw = try start(scope, port: port, database: scope.path("var/registry.db"), nodes: [StickyNode("ws-1", up.addresses[0])])
        for (path, headers) in [("/@vite/client", [String]()), ("/ws/bad%20id/", []), ("/ws//x", []),
                                ("/@fs/x", ["Cookie: ws_uid=\"unbalanced"]), ("/api/fun-ai/workspace/x?userId=", [])] {
            let r = try scope.get(gw.url(path), headers: headers)
            #expect(r.status == 400, "\(path): \(r.summary)")
            #expect((r.json?["error"] as? String)?.contains("routing key") == true, "\(path): \(r.bodyText)")
        }
    }

    @Test("placements survive a restart and a kill -9 right after they were made")
    func persistence() throws {
        let scope = try Scope("sticky-persist")
        defer { scope.close() }
        let up = try scope.startUpstreams(2)
        let port = try Ports.free()
        let db = scope.path("var/registry.db")
        let nodes = [StickyNode("ws-1", up.addresses[0]), StickyNode("ws-2", up.addresses[1])]
        var gw = try start(scope, port: port, database: db, nodes: nodes, name: "g1")
        var placed: [String: String] = [:]
        for i in 0..<40 {
            let r = try scope.get(gw.url("/ws/p\(i)/"))
            placed["p\(i)"] = r.header("X-WS-Upstream")
        }
        gw.child.signal(SIGKILL)
        _ = gw.child.wait(timeout: 5)
        // A new node with a huge weight would take most NEW keys; old keys must stay put.
        let heavier = nodes + [StickyNode("ws-3", up.addresses[1], "weight: 10000")]
        gw = try start(scope, port: port, database: db, nodes: heavier, name: "g2")
        for (user, node) in placed {
            let r = try scope.get(gw.url("/ws/\(user)/"))
            #expect(r.header("X-WS-Upstream") == node, "\(user) was on \(node), now \(r.header("X-WS-Upstream") ?? "-")")
        }
        var onNew = 0
        for i in 0..<20 where try scope.get(gw.url("/ws/fresh\(i)/")).header("X-WS-Upstream") == "ws-3" { onNew += 1 }
        #expect(onNew >= 15, "a node with 100x the weight took only \(onNew) of 20 new users")
    }

    @Test("no selectable node: 503 no_healthy_node; all full: 503 insufficient_capacity")
    func unplaceable() throws {
        let scope = try Scope("sticky-503")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let port = try Ports.free()
        let gw = try start(scope, port: port, database: scope.path("var/registry.db"),
                           nodes: [StickyNode("ws-1", up.addresses[0], "capacity: 1"),
                                   StickyNode("ws-off", up.addresses[0], "enabled: false")])
        let first = try scope.get(gw.url("/ws/only/"))
        #expect(first.header("X-Upstream-Port") != nil && first.header("X-WS-Upstream") == "ws-1", "\(first.summary)")
        let full = try scope.get(gw.url("/ws/second/"))
        #expect(full.status == 503, "\(full.summary)")
        #expect(full.json?["error"] as? String == "insufficient_capacity", "\(full.bodyText)")
        // The placed user still gets in.
        #expect(try scope.get(gw.url("/ws/only/x")).header("X-Upstream-Port") != nil)

        let port2 = try Ports.free()
        let gw2 = try start(scope, port: port2, database: scope.path("var/other.db"),
                            nodes: [StickyNode("ws-off", up.addresses[0], "enabled: false")], name: "g2")
        let none = try scope.get(gw2.url("/ws/anyone/"))
        #expect(none.status == 503, "\(none.summary)")
        #expect(none.json?["error"] as? String == "no_healthy_node", "\(none.bodyText)")
    }

    @Test("two gateway instances with their own databases place every new user on the same node")
    func instancesAgree() throws {
        let scope = try Scope("sticky-instances")
        defer { scope.close() }
        let up = try scope.startUpstreams(3)
        let nodes = [StickyNode("ws-1", up.addresses[0]), StickyNode("ws-2", up.addresses[1], "weight: 300"),
                     StickyNode("ws-3", up.addresses[2])]
        let p1 = try Ports.free()
        let g1 = try start(scope, port: p1, database: scope.path("a/registry.db"), nodes: nodes, name: "a")
        let p2 = try Ports.free()
        let g2 = try start(scope, port: p2, database: scope.path("b/registry.db"), nodes: nodes, name: "b")
        var used = Set<String>()
        for i in 0..<30 {
            let a = try scope.get(g1.url("/ws/shared\(i)/")).header("X-WS-Upstream")
            let b = try scope.get(g2.url("/ws/shared\(i)/")).header("X-WS-Upstream")
            #expect(a != nil && a == b, "shared\(i): \(a ?? "-") vs \(b ?? "-")")
            if let a { used.insert(a) }
        }
        #expect(used.count == 3, "30 users on \(used)")
    }
}

// The admin API end to end (docs/admin-api.md): every endpoint with good and bad input against
// the built gateway, its auth (admin token, node token, allowlist), framing limits, metrics and
// the audit lines on stderr. Nodes ws-1/ws-2/rt-1 are upstream.py ports, so a response's
// X-Upstream-Port says which node really served it.

import Foundation
import Testing

@Suite("Admin API", .serialized)
struct AdminAPITests {
    /// The fields that describe a node's configuration (not its live numbers).
    private func config(_ n: AJSON) -> String {
        ["name", "pool", "address", "preview_base_url", "api_base_url", "enabled", "weight", "capacity", "labels",
         "static", "created_at", "updated_at"].map { "\($0)=\(n[$0])" }.joined(separator: " ")
    }

    @Test("nodes: list, get, create 201, update 200, enable, disable, delete; bad input is a 400 naming the field")
    func nodes() throws {
        let scope = try Scope("admin-nodes")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin

        let list = try a.get("/admin/nodes")
        #expect(list.status == 200, "\(list)")
        #expect(list.header("Content-Type")?.hasPrefix("application/json") == true)
        let names = list.json["nodes"].array.map { "\($0["pool"].string ?? "")/\($0["name"].string ?? "")" }
        #expect(names == ["runtime/rt-1", "workspace/ws-1", "workspace/ws-2"], "by pool, then name: \(names)")
        let filtered = try a.get("/admin/nodes?pool=workspace").json["nodes"].array.compactMap { $0["name"].string }
        #expect(filtered == ["ws-1", "ws-2"])
        #expect(try a.get("/admin/nodes?pool=nope").json["nodes"].array.isEmpty)

        let one = try a.get("/admin/nodes/ws-1")
        #expect(one.status == 200, "\(one)")
        let documented: Set<String> = ["name", "pool", "address", "preview_base_url", "api_base_url", "enabled", "weight",
                                       "capacity", "labels", "static", "healthy", "last_heartbeat_age_ms", "placements",
                                       "open_tunnels", "requests", "bytes_in", "bytes_out", "created_at", "updated_at"]
        #expect(one.json.keys == documented, "fields: \(one.json.keys.symmetricDifference(documented))")
        #expect(one.json["address"].string == w.upstream.addresses[0])
        #expect(one.json["preview_base_url"].string == w.url(0))
        #expect(one.json["static"].bool == true && one.json["healthy"].bool == true && one.json["enabled"].bool == true, "\(one)")
        #expect(one.json["weight"].int == 100 && one.json["capacity"].int == 0, "\(one)")
        #expect(try a.get("/admin/nodes/ws-1/stats").json["name"].string == "ws-1")
        #expect(try a.get("/admin/nodes/ghost").status == 404)
        #expect(try a.get("/admin/nodes/bad%20name").field == "name")
        #expect(try a.call("POST", "/admin/nodes", "{}").status == 405)

        // Create: 201, then update: 200 with omitted fields kept.
        let create = """
        {"pool": "workspace", "address": "\(w.upstream.addresses[2])", "preview_base_url": "\(w.url(2))",
         "api_base_url": "http://127.0.0.1:7001", "static": true, "weight": 50, "labels": {"zone": "a"}}
        """
        let created = try a.call("PUT", "/admin/nodes/ws-3", create)
        #expect(created.status == 201, "\(created)")
        #expect(created.json["name"].string == "ws-3" && created.json["weight"].int == 50, "\(created)")
        #expect(created.json["labels"]["zone"].string == "a" && created.json["healthy"].bool == true, "\(created)")
        let updated = try a.call("PUT", "/admin/nodes/ws-3", #"{"weight": 70, "name": "ws-3"}"#)
        #expect(updated.status == 200, "\(updated)")
        #expect(updated.json["weight"].int == 70, "\(updated)")
        #expect(updated.json["address"].string == w.upstream.addresses[2] && updated.json["labels"]["zone"].string == "a",
                "omitted fields keep their value: \(updated)")
        #expect(updated.json["created_at"].int == created.json["created_at"].int)
        #expect(try a.get("/admin/nodes/ws-3").json["weight"].int == 70)

        // Every refusal names the field, and changes nothing.
        let before = config(try a.node("ws-3"))
        let badUpdates: [(String, String?)] = [
            (#"{"pool": "runtime"}"#, "pool"),
            (#"{"wieght": 5}"#, "wieght"),
            (#"{"weight": 0}"#, "weight"), (#"{"weight": 10001}"#, "weight"), (#"{"weight": "100"}"#, "weight"),
            (#"{"weight": 1.5}"#, "weight"), (#"{"weight": true}"#, "weight"),
            (#"{"capacity": -1}"#, "capacity"),
            (#"{"address": "127.0.0.1:0"}"#, "address"), (#"{"address": "127.0.0.1:70000"}"#, "address"),
            (#"{"address": "no-port"}"#, "address"), (#"{"address": "example.com:80"}"#, "address"), (#"{"address": 80}"#, "address"),
            (#"{"preview_base_url": "ftp://127.0.0.1:80"}"#, "preview_base_url"),
            (#"{"preview_base_url": "http://127.0.0.1:80/path"}"#, "preview_base_url"),
            (#"{"preview_base_url": "http://127.0.0.1:70000"}"#, "preview_base_url"),
            (#"{"preview_base_url": "not a url"}"#, "preview_base_url"),
            (#"{"api_base_url": "http://"}"#, "api_base_url"),
            (#"{"enabled": "yes"}"#, "enabled"), (#"{"static": 1}"#, "static"),
            (#"{"labels": ["a"]}"#, "labels"), (#"{"labels": {"zone": 5}}"#, "labels.zone"),
            (#"{"name": "ws-4"}"#, "name"),
            ("{\"weight\": 5", nil), ("[1, 2]", nil), ("not json", nil),
        ]
        for (body, field) in badUpdates {
            let r = try a.call("PUT", "/admin/nodes/ws-3", body)
            let expected = body.contains("runtime") ? 409 : 400
            #expect(r.status == expected, "PUT \(body): \(r)")
            #expect(r.field == field, "PUT \(body): field \(r.field ?? "none"), expected \(field ?? "none"): \(r)")
            #expect(r.json["error"].string?.isEmpty == false, "PUT \(body): \(r)")
        }
        #expect(config(try a.node("ws-3")) == before, "a refused PUT changed the node")
        // Port 0 is outside 1-65535 in a URL as much as in `address`.
        for field in ["preview_base_url", "api_base_url"] {
            let r = try a.call("PUT", "/admin/nodes/ws-3", "{\"\(field)\": \"http://127.0.0.1:0\"}")
            #expect(r.status == 400 && r.field == field, "PUT \(field) with port 0: \(r)")
            if r.status == 200 { _ = try a.call("PUT", "/admin/nodes/ws-3", "{\"preview_base_url\": \"\(w.url(2))\", \"api_base_url\": \"http://127.0.0.1:7001\"}") }
        }

        // A create needs pool, address and preview_base_url; a refused create creates nothing.
        for (body, field) in [("{}", "pool"), (#"{"pool": "workspace"}"#, "address"),
                              (#"{"pool": "workspace", "address": "127.0.0.1:9"}"#, "preview_base_url"),
                              (#"{"pool": "bad pool", "address": "127.0.0.1:9", "preview_base_url": "http://127.0.0.1:9"}"#, "pool")] {
            let r = try a.call("PUT", "/admin/nodes/ws-9", body)
            #expect(r.status == 400 && r.field == field, "create \(body): \(r)")
        }
        #expect(try a.get("/admin/nodes/ws-9").status == 404)
        #expect(try a.call("PUT", "/admin/nodes/bad%20name", create).field == "name")

        // Disable / enable answer the node; a disabled node gets no new users but keeps its own.
        let disabled = try a.call("POST", "/admin/nodes/ws-3/disable")
        #expect(disabled.status == 200 && disabled.json["enabled"].bool == false && disabled.json["healthy"].bool == false, "\(disabled)")
        #expect(try a.call("POST", "/admin/nodes/ws-1/disable").status == 200)
        for i in 0..<10 { #expect(try w.visit("only2-\(i)") == "ws-2", "a new user went to a disabled node") }
        #expect(try a.call("POST", "/admin/nodes/ws-1/enable").json["enabled"].bool == true)
        let enabled = try a.call("POST", "/admin/nodes/ws-3/enable")
        #expect(enabled.status == 200 && enabled.json["enabled"].bool == true && enabled.json["healthy"].bool == true, "\(enabled)")
        #expect(try a.call("POST", "/admin/nodes/ghost/enable").status == 404)
        #expect(try a.call("POST", "/admin/nodes/ghost/disable").status == 404)
        #expect(try a.call("POST", "/admin/nodes/ws-3/reboot").status == 404)

        // Delete drops the node's placements; its users are placed anew on their next request.
        var onThree: [String] = []
        for i in 0..<3 {
            let user = "only2-\(i)"
            let r = try a.call("POST", "/admin/placements/workspace/\(user)/reassign", #"{"node": "ws-3"}"#)
            #expect(r.status == 200, "\(r)")
            onThree.append(user)
        }
        #expect(try a.node("ws-3")["placements"].int == 3)
        let removed = try a.call("DELETE", "/admin/nodes/ws-3")
        #expect(removed.status == 200, "\(removed)")
        #expect(removed.json["removed"].string == "ws-3" && removed.json["placements_dropped"].int == 3, "\(removed)")
        #expect(try a.get("/admin/nodes/ws-3").status == 404)
        for user in onThree {
            #expect(try a.get("/admin/placements/workspace/\(user)").status == 404, "\(user) kept a placement on a deleted node")
            #expect(["ws-1", "ws-2"].contains(try w.visit(user)))
        }
        #expect(try a.call("DELETE", "/admin/nodes/ws-3").status == 404)
    }

    @Test("placements: paging, filters, get one; bad offset, limit or parameter is a 400")
    func placements() throws {
        let scope = try Scope("admin-placements")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        var placed: [String: String] = [:]
        for i in 0..<30 {
            let user = String(format: "p%02d", i)
            placed[user] = try w.visit(user)
        }
        let keys = placed.keys.sorted()

        let first = try a.get("/admin/placements?limit=10")
        #expect(first.status == 200, "\(first)")
        #expect(first.json["total"].int == 30 && first.json["offset"].int == 0 && first.json["limit"].int == 10, "\(first)")
        #expect(first.json["placements"].array.compactMap { $0["key"].string } == Array(keys[0..<10]))
        let p0 = first.json["placements"][0]
        #expect(p0.keys == ["pool", "key", "node", "host_port", "created_at"], "\(p0)")
        #expect(p0["pool"].string == "workspace" && p0["node"].string == placed["p00"] && p0["host_port"].int == 0, "\(p0)")
        #expect((p0["created_at"].int ?? 0) > 1_600_000_000_000, "created_at is Unix ms: \(p0)")
        var paged: [String] = []
        for offset in stride(from: 0, to: 40, by: 7) {
            let r = try a.get("/admin/placements?pool=workspace&offset=\(offset)&limit=7")
            #expect(r.json["total"].int == 30)
            paged += r.json["placements"].array.compactMap { $0["key"].string }
        }
        #expect(paged == keys, "pages do not add up to every key once, in order")
        let tail = try a.get("/admin/placements?offset=25&limit=10")
        #expect(tail.json["placements"].array.count == 5 && tail.json["total"].int == 30, "\(tail)")
        let past = try a.get("/admin/placements?offset=1000")
        #expect(past.status == 200 && past.json["placements"].array.isEmpty && past.json["total"].int == 30, "\(past)")
        #expect(try a.get("/admin/placements?limit=10000").json["placements"].array.count == 30)

        for node in ["ws-1", "ws-2"] {
            let r = try a.get("/admin/placements?node=\(node)&limit=100")
            let expected = placed.filter { $0.value == node }.keys.sorted()
            #expect(r.json["total"].int == expected.count, "\(node): \(r)")
            #expect(r.json["placements"].array.compactMap { $0["key"].string } == expected)
            #expect(try a.node(node)["placements"].int == expected.count)
        }
        #expect(try a.get("/admin/placements?pool=runtime").json["total"].int == 0)
        #expect(try a.get("/admin/placements?node=ghost").json["total"].int == 0)

        for (query, field) in [("offset=-1", "offset"), ("offset=x", "offset"), ("offset=", "offset"),
                               ("limit=0", "limit"), ("limit=10001", "limit"), ("limit=abc", "limit"),
                               ("limit=1.5", "limit"), ("sort=key", "sort")] {
            let r = try a.get("/admin/placements?\(query)")
            #expect(r.status == 400 && r.field == field, "?\(query): \(r)")
        }

        let one = try a.get("/admin/placements/workspace/p07")
        #expect(one.status == 200 && one.json["key"].string == "p07" && one.json["node"].string == placed["p07"], "\(one)")
        #expect(try a.get("/admin/placements/workspace/nobody").status == 404)
        #expect(try a.get("/admin/placements/runtime/p07").status == 404)
        #expect(try a.get("/admin/placements/workspace").status == 404)
    }

    @Test("pin: PUT /admin/placements/{pool}/{key} places a key never seen, the first request goes there; again is a 200, elsewhere a 409")
    func pin() throws {
        let scope = try Scope("admin-pin")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let made = try a.call("PUT", "/admin/placements/workspace/pinned-1", #"{"node": "ws-2"}"#)
        #expect(made.status == 201 && made.json["node"].string == "ws-2", "\(made)")
        #expect(try w.web.send("GET", "/ws/pinned-1/x").header("X-WS-Upstream") == "ws-2")
        #expect(try a.call("PUT", "/admin/placements/workspace/pinned-1", #"{"node": "ws-2"}"#).status == 200)
        let elsewhere = try a.call("PUT", "/admin/placements/workspace/pinned-1", #"{"node": "ws-1"}"#)
        #expect(elsewhere.status == 409 && elsewhere.json["field"].string == "node", "\(elsewhere)")
        #expect(try a.call("PUT", "/admin/placements/workspace/pinned-2", #"{"node": "rt-1"}"#).status == 409)
        #expect(try a.call("PUT", "/admin/placements/workspace/pinned-2", #"{"node": "ghost"}"#).status == 404)
        #expect(try a.call("PUT", "/admin/placements/workspace/bad%20key", #"{"node": "ws-1"}"#).status == 400)
        #expect(try a.call("PUT", "/admin/placements/workspace/pinned-2", #"{"nodes": "ws-1"}"#).status == 400)
        #expect(try a.call("PUT", "/admin/placements/workspace/pinned-2", #"{"node": "ws-1"}"#, auth: .none).status == 401)
        #expect(w.gw.auditRecords().contains { $0["action"].string == "placement.create" })
    }

    @Test("reassign: moves one user; wrong pool, disabled, full or holding node is a 409, unknown a 404, bad body a 400")
    func reassign() throws {
        let scope = try Scope("admin-reassign")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let from = try w.visit("r1")
        let to = from == "ws-1" ? "ws-2" : "ws-1"

        let moved = try a.call("POST", "/admin/placements/workspace/r1/reassign", "{\"node\": \"\(to)\"}")
        #expect(moved.status == 200, "\(moved)")
        #expect(moved.json.keys == ["pool", "key", "from", "to"], "\(moved)")
        #expect(moved.json["pool"].string == "workspace" && moved.json["key"].string == "r1", "\(moved)")
        #expect(moved.json["from"].string == from && moved.json["to"].string == to, "\(moved)")
        let served = try w.web.send("GET", "/ws/r1/x")
        #expect(served.header("X-WS-Upstream") == to, "\(served)")
        #expect(served.header("X-Upstream-Port") == w.port(of: to).map(String.init), "the old node answered: \(served)")
        #expect(try a.get("/admin/placements/workspace/r1").json["node"].string == to)

        _ = try a.call("POST", "/admin/nodes/\(from)/disable")
        let refusals: [(String, String, Int, String?)] = [
            ("r1", "{\"node\": \"\(to)\"}", 409, "node"),      // already holds it
            ("r1", #"{"node": "rt-1"}"#, 409, "node"),          // another pool
            ("r1", "{\"node\": \"\(from)\"}", 409, "node"),    // disabled
            ("r1", #"{"node": "ghost"}"#, 404, nil),
            ("nobody", "{\"node\": \"\(to)\"}", 404, nil),
            ("r1", #"{"node": "ws-1""#, 400, nil),
            ("r1", "", 400, "node"),
            ("r1", "{}", 400, "node"),
            ("r1", #"{"node": "ws-1", "force": true}"#, 400, "force"),
            ("r1", #"{"node": 5}"#, 400, "node"),
            ("r1", #"{"node": ["ws-1"]}"#, 400, "node"),
            ("r1", #"{"node": "a b"}"#, 400, "node"),
            ("r1", #"{"node": null}"#, 400, "node"),
        ]
        for (user, body, status, field) in refusals {
            let r = try a.call("POST", "/admin/placements/workspace/\(user)/reassign", body)
            #expect(r.status == status, "reassign \(user) \(body): \(r)")
            if let field { #expect(r.field == field, "reassign \(user) \(body): \(r)") }
            #expect(try a.get("/admin/placements/workspace/r1").json["node"].string == to, "a refused reassign moved r1")
        }
        #expect(try a.get("/admin/placements/workspace/nobody").status == 404, "a refused reassign created a placement")
        #expect(try a.call("GET", "/admin/placements/workspace/r1/reassign").status == 404)
        _ = try a.call("POST", "/admin/nodes/\(from)/enable")

        // Full: a node with capacity 1 takes one user, then refuses.
        try w.visit("r2")
        try w.visit("r3")
        let cap = try a.call("PUT", "/admin/nodes/ws-cap",
                             "{\"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[2])\", \"preview_base_url\": \"\(w.url(2))\", \"static\": true, \"capacity\": 1}")
        #expect(cap.status == 201, "\(cap)")
        #expect(try a.call("POST", "/admin/placements/workspace/r2/reassign", #"{"node": "ws-cap"}"#).status == 200)
        let full = try a.call("POST", "/admin/placements/workspace/r3/reassign", #"{"node": "ws-cap"}"#)
        #expect(full.status == 409, "reassign to a full node: \(full)")
        #expect(try a.node("ws-cap")["placements"].int == 1)
        #expect(try a.get("/admin/placements/workspace/r3").json["node"].string != "ws-cap")

        // A node's new preview_base_url takes effect at once for its users (no reload).
        let r3node = try #require(try a.get("/admin/placements/workspace/r3").json["node"].string)
        #expect(try a.call("PUT", "/admin/nodes/\(r3node)", "{\"preview_base_url\": \"\(w.url(2))\"}").status == 200)
        let repointed = try w.web.send("GET", "/ws/r3/x")
        #expect(repointed.header("X-WS-Upstream") == r3node && repointed.header("X-Upstream-Port") == String(w.upstream.ports[2]),
                "after PUT preview_base_url: \(repointed) \(repointed.headers)")
    }

    @Test("route explain: an existing placement vs the node that would be chosen; explain creates nothing")
    func explain() throws {
        let scope = try Scope("admin-explain")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let node = try w.visit("e1")
        let count = try a.get("/admin/placements?limit=1").json["total"].int

        let existing = try a.get("/admin/routes/explain?url=http%3A%2F%2Fexample.com%2Fws%2Fe1%2Fsrc%2Fmain.ts%3Fv%3D1")
        #expect(existing.status == 200, "\(existing)")
        let e = existing.json
        #expect(e["rule"]["name"].string == "workspace" && e["key"].string == "e1" && e["pool"].string == "workspace", "\(e)")
        #expect(e["key_source"].string?.contains("/ws/") == true, "\(e)")
        #expect(e["placement"].string == "existing", "\(e)")
        #expect(e["node"]["name"].string == node, "\(e)")
        #expect(e["upstream"].string == w.url(node == "ws-1" ? 0 : 1), "\(e)")
        #expect(e["outcome"].string == "forwarded", "\(e)")
        #expect(Set(e["candidates"].array.compactMap { $0["name"].string }) == ["ws-1", "ws-2"], "\(e)")

        let fresh = try a.get("/admin/routes/explain?url=/ws/fresh-1/")
        #expect(fresh.status == 200, "\(fresh)")
        #expect(fresh.json["placement"].string?.contains("would") == true, "\(fresh)")
        let predicted = fresh.json["node"]["name"].string
        #expect(predicted == "ws-1" || predicted == "ws-2", "\(fresh)")
        #expect(try a.get("/admin/placements/workspace/fresh-1").status == 404, "explain created a placement")
        #expect(try a.get("/admin/placements?limit=1").json["total"].int == count, "explain changed the placement count")

        let cookie = try a.get("/admin/routes/explain?url=/@vite/client&cookie=theme%3Ddark%3B%20ws_uid%3De1")
        #expect(cookie.json["rule"]["name"].string == "assets" && cookie.json["key"].string == "e1", "\(cookie)")
        #expect(cookie.json["placement"].string == "existing" && cookie.json["node"]["name"].string == node, "\(cookie)")
        let noKey = try a.get("/admin/routes/explain?url=/@vite/client")
        #expect(noKey.status == 200 && noKey.json["outcome"].string?.contains("400") == true, "\(noKey)")
        let badKey = try a.get("/admin/routes/explain?url=/ws/bad%2520key/")
        #expect(badKey.json["outcome"].string?.contains("400") == true, "\(badKey)")

        for (query, field) in [("", "url"), ("url=", "url"), ("url=/ws/e1/&bogus=1", "bogus"),
                               ("url=/ws/e1/&method=get", "method"), ("url=ftp://x/ws/e1/", "url"), ("url=ws/e1", "url"),
                               // Explain builds a request head from these: no smuggled header lines.
                               ("url=/@vite/client&cookie=a%0D%0AX-WS-User:%20e1", "cookie"),
                               ("url=/ws/e1/&header=X-A:%20b%0D%0AHost:%20evil", "header"),
                               ("url=/ws/e1/%0D%0AX:%20y", "url"), ("url=/ws/e1/&host=a%0Ab", "host")] {
            let r = try a.get("/admin/routes/explain?\(query)")
            #expect(r.status == 400 && r.field == field, "?\(query): \(r)")
        }
        // The prediction holds: the first real request goes where explain said.
        #expect(try w.visit("fresh-1") == predicted)
        #expect(try a.get("/admin/placements?limit=1").json["total"].int == (count ?? 0) + 1)
    }

    @Test("compat endpoint: X-WS-Node is the user's node, placed now when new; no token needed")
    func compat() throws {
        let scope = try Scope("admin-compat")
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let r = try a.call("GET", "/api/fun-ai/workspace/internal/gateway/node?userId=c1", auth: .none)
        #expect(r.status == 200, "\(r)")
        let node = try #require(r.json["node"].string)
        let url = w.url(node == "ws-1" ? 0 : 1)
        #expect(r.header("X-WS-Node") == url && r.json["preview_base_url"].string == url, "\(r)")
        #expect(try a.get("/admin/placements/workspace/c1").json["node"].string == node, "the compat answer placed nobody")
        #expect(try w.visit("c1") == node)
        let again = try a.call("GET", "/api/fun-ai/workspace/internal/gateway/node?userId=c1", auth: .none)
        #expect(again.header("X-WS-Node") == url)

        // A user placed by traffic first, then moved: the endpoint follows the registry.
        let placed = try w.visit("c2")
        let other = placed == "ws-1" ? "ws-2" : "ws-1"
        _ = try a.call("POST", "/admin/placements/workspace/c2/reassign", "{\"node\": \"\(other)\"}")
        let moved = try a.call("GET", "/api/fun-ai/workspace/internal/gateway/node?userId=c2", auth: .none)
        #expect(moved.header("X-WS-Node") == w.url(other == "ws-1" ? 0 : 1), "\(moved)")

        for query in ["", "?userId=", "?userId=bad%20key", "?userId=" + String(repeating: "x", count: 65)] {
            let bad = try a.call("GET", "/api/fun-ai/workspace/internal/gateway/node\(query)", auth: .none)
            #expect(bad.status == 400 && bad.field == "userId", "\(query): \(bad)")
        }
    }

    @Test("healthz, readyz and metrics: Prometheus text that counts traffic and placements")
    func healthAndMetrics() throws {
        let scope = try Scope("admin-metrics")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let health = try a.call("GET", "/healthz", auth: .none)
        #expect(health.status == 200 && health.json["status"].string == "ok", "\(health)")
        let ready = try a.call("GET", "/readyz", auth: .none)
        #expect(ready.status == 200 && ready.json["status"].string == "ready", "\(ready)")

        func scrape() throws -> [MetricSample] {
            let r = try a.call("GET", "/metrics", auth: .none)
            #expect(r.status == 200)
            #expect(r.header("Content-Type")?.hasPrefix("text/plain") == true && r.header("Content-Type")?.contains("0.0.4") == true,
                    "\(r.header("Content-Type") ?? "-")")
            return try PromText.parse(r.text)
        }
        let node = try w.visit("m1")
        let before = try scrape()
        for family in ["switchyard_requests_total", "switchyard_request_duration_seconds_bucket",
                       "switchyard_request_duration_seconds_count", "switchyard_open_connections", "switchyard_open_tunnels",
                       "switchyard_placements", "switchyard_node_placements", "switchyard_node_healthy",
                       "switchyard_node_open_tunnels", "switchyard_node_requests_total"] {
            #expect(before.contains { $0.name == family }, "no \(family) in /metrics")
        }
        #expect(before.sum("switchyard_node_healthy", ["pool": "workspace", "node": "ws-1"]) == 1)

        for i in 0..<12 { _ = try w.web.send("GET", "/ws/m1/page\(i)") }
        var after = before
        let deadline = Date().addingTimeInterval(5)
        repeat {
            after = try scrape()
            if after.sum("switchyard_requests_total", ["route": "workspace"])
                >= before.sum("switchyard_requests_total", ["route": "workspace"]) + 12 { break }
            usleep(50_000)
        } while Date() < deadline
        let grew = after.sum("switchyard_requests_total", ["route": "workspace"]) - before.sum("switchyard_requests_total", ["route": "workspace"])
        #expect(grew >= 12, "requests_total{route=workspace} grew by \(grew) after 12 requests")
        #expect(after.sum("switchyard_requests_total") - before.sum("switchyard_requests_total") >= 12)
        #expect(after.sum("switchyard_request_duration_seconds_count") - before.sum("switchyard_request_duration_seconds_count") >= 12)
        let nodeGrew = after.sum("switchyard_node_requests_total", ["node": node]) - before.sum("switchyard_node_requests_total", ["node": node])
        #expect(nodeGrew >= 12, "node_requests_total{node=\(node)} grew by \(nodeGrew)")

        for i in 0..<5 { try w.visit("m-extra\(i)") }
        let total = try a.get("/admin/placements?limit=1").json["total"].int ?? -1
        let m = try scrape()
        #expect(Int(m.sum("switchyard_placements")) == total, "switchyard_placements vs the API's total \(total)")
        #expect(Int(m.sum("switchyard_node_placements", ["pool": "workspace"])) == total)
        for n in ["ws-1", "ws-2"] {
            #expect(Int(m.sum("switchyard_node_placements", ["node": n])) == (try a.node(n)["placements"].int))
        }

        // From the moment a drain (SIGTERM) starts, /readyz says 503 while in-flight requests finish.
        let slow = Locked<Reply?>(nil)
        let group = ThreadGroup()
        let port = w.gw.port
        group.start {
            let r = try? HTTPClient(port: port).send("GET", "/slow?delay=1.5", headers: ["Cookie: ws_uid=m1"])
            slow.withLock { $0 = r }
        }
        usleep(400_000)
        w.gw.child.signal(SIGTERM)
        usleep(200_000)
        let draining = try HTTPClient(port: w.gw.adminPort).send("GET", "/readyz")
        #expect(draining.status == 503 && draining.json["status"].string == "not ready", "/readyz during the drain: \(draining)")
        try group.wait()
        #expect(slow.value?.status == 200, "the in-flight request during the drain: \(slow.value.map { "\($0)" } ?? "failed")")
        #expect(w.gw.child.wait(timeout: 10) != nil)
    }

    @Test("framing: over 1 MiB is a 413, a chunked body a 411 (both close); exactly 1 MiB is read; unknown paths 404")
    func framing() throws {
        let scope = try Scope("admin-framing")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let token = w.gw.config.token

        let big = try RawConnection(port: w.gw.adminPort)
        big.send("PUT /admin/nodes/ws-1 HTTP/1.1\r\nHost: x\r\nX-Admin-Token: \(token)\r\nContent-Length: \((1 << 20) + 1)\r\n\r\n{")
        let tooLarge = try big.readResponse()
        #expect(tooLarge.status == 413, "\(tooLarge.status) \(tooLarge.bodyText)")
        #expect(big.waitForClose(timeout: 3).closed, "the connection stays open after a 413")

        let chunked = try RawConnection(port: w.gw.adminPort)
        chunked.send("PUT /admin/nodes/ws-1 HTTP/1.1\r\nHost: x\r\nX-Admin-Token: \(token)\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + "d\r\n{\"weight\": 7}\r\n0\r\n\r\n")
        let lengthRequired = try chunked.readResponse()
        #expect(lengthRequired.status == 411, "\(lengthRequired.status) \(lengthRequired.bodyText)")
        #expect(chunked.waitForClose(timeout: 3).closed, "the connection stays open after a 411")
        #expect(try w.admin.node("ws-1")["weight"].int == 100, "the chunked body was applied")

        // Exactly 1 MiB (JSON padded with spaces) is within the limit.
        let json = Array(#"{"weight": 9}"#.utf8)
        let padded = json + [UInt8](repeating: 0x20, count: (1 << 20) - json.count)
        let exact = try w.admin.send("PUT", "/admin/nodes/ws-1", headers: ["X-Admin-Token: \(token)"], body: padded)
        #expect(exact.status == 200 && exact.json["weight"].int == 9, "\(exact)")

        for path in ["/admin/nope", "/admin", "/nope", "/", "/healthz/x", "/internal/nope"] {
            let r = try w.admin.get(path)
            #expect(r.status == 404, "\(path): \(r)")
        }
        #expect(try w.admin.call("POST", "/healthz", auth: .none).status == 404)
        #expect(try w.admin.call("GET", "/admin/tunnels").status == 200)

        // A head over 64 KiB is a 431.
        let long = try RawConnection(port: w.gw.adminPort)
        long.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: \(String(repeating: "a", count: 70_000))\r\n\r\n")
        let headTooLarge = try long.readResponse()
        #expect(headTooLarge.status == 431, "\(headTooLarge.status) \(headTooLarge.bodyText)")

        // The listener closes a connection after 100 requests: the 100th answer should say so
        // (RFC 9112 section 9.6), or a client reusing the connection loses its 101st request.
        let keepAlive = HTTPClient(port: w.gw.adminPort)
        keepAlive.perConnection = 1000
        var hundredth: Reply?
        for i in 1...100 {
            let r = try keepAlive.send("GET", "/healthz")
            if i < 100 { #expect(r.status == 200 && !r.closed, "request \(i): \(r)") } else { hundredth = r }
        }
        #expect(hundredth?.status == 200)
        #expect(hundredth?.header("Connection")?.lowercased() == "close",
                "the 100th answer on a connection has no Connection: close: \(hundredth?.headers.map { "\($0.name): \($0.value)" } ?? [])")
    }

    @Test("auth: no admin token 401, a wrong one 403; node tokens likewise; the allowlist refuses other sources")
    func auth() throws {
        let scope = try Scope("admin-auth")
        defer { scope.close() }
        let w = try scope.startAdminWorld(allow: ["10.0.0.0/8", "127.0.0.1"])
        defer { w.stopPeers() }
        let a = w.admin
        let token = w.gw.config.token
        #expect(try a.call("GET", "/admin/nodes", auth: .none).status == 401)
        #expect(try a.call("GET", "/admin/nodes", auth: .token("wrong")).status == 403)
        let sameLength = String(token.dropLast()) + (token.hasSuffix("x") ? "y" : "x")
        #expect(try a.call("GET", "/admin/nodes", auth: .token(sameLength)).status == 403)
        #expect(try a.call("GET", "/admin/nodes", auth: .token(token + "x")).status == 403)
        #expect(try a.call("GET", "/admin/nodes", auth: .token("")).status == 403)
        #expect(try a.call("GET", "/admin/nodes", auth: .node(w.gw.config.nodeToken)).status == 401)
        #expect(try a.call("PUT", "/admin/nodes/ws-1", #"{"weight": 5}"#, auth: .none).status == 401)
        #expect(try a.call("GET", "/admin/nodes").status == 200)
        #expect(try a.node("ws-1")["weight"].int == 100, "an unauthorized PUT changed the node")
        for path in ["/healthz", "/readyz", "/metrics", "/api/fun-ai/workspace/internal/gateway/node?userId=a1"] {
            #expect(try a.call("GET", path, auth: .none).status == 200, "\(path) needs no token")
        }

        let heartbeat = "{\"name\": \"hb-x\", \"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[0])\", \"preview_base_url\": \"\(w.url(0))\"}"
        #expect(try a.call("POST", "/internal/nodes/heartbeat", heartbeat, auth: .none).status == 401)
        #expect(try a.call("POST", "/internal/nodes/heartbeat", heartbeat, auth: .node("wrong-node-token-000000")).status == 403)
        #expect(try a.call("POST", "/internal/nodes/heartbeat", heartbeat, auth: .node(w.gw.config.runtimeNodeToken)).status == 403)
        #expect(try a.call("POST", "/internal/nodes/heartbeat", heartbeat, auth: .admin).status == 401)
        #expect(try a.call("POST", "/internal/nodes/heartbeat", heartbeat, auth: .node(token)).status == 403)
        #expect(try a.get("/admin/nodes/hb-x").status == 404, "a refused heartbeat registered the node")
        #expect(try a.call("POST", "/internal/nodes/heartbeat", heartbeat, auth: .node(w.gw.config.nodeToken)).status == 200)
        #expect(try a.call("PUT", "/internal/placements/workspace/a1", #"{"host_port": 31000}"#, auth: .none).status == 401)
        #expect(try a.call("PUT", "/internal/placements/workspace/a1", #"{"host_port": 31000}"#, auth: .node("wrong-node-token-000000")).status == 403)
        #expect(try a.get("/admin/placements/workspace/a1").json["host_port"].int == 0)

        // A gateway that admits only 10.0.0.0/8: 127.0.0.1 is refused everywhere, token or not.
        var config = w.gw.config
        config.port = try Ports.free()
        config.adminPort = try Ports.free()
        config.database = scope.path("var/other.db")
        config.allow = ["10.0.0.0/8"]
        let closed = try scope.startAdminGateway(config, name: "closed")
        let c = closed.client()
        for (path, auth) in [("/healthz", AdminClient.Auth.none), ("/metrics", .none), ("/admin/nodes", .admin),
                             ("/api/fun-ai/workspace/internal/gateway/node?userId=z", .none)] {
            let r = try c.call("GET", path, auth: auth)
            #expect(r.status == 403, "\(path) from 127.0.0.1: \(r)")
        }
        #expect(try c.call("PUT", "/admin/nodes/ws-1", #"{"weight": 5}"#).status == 403)
        #expect(try closed.client().call("GET", "/admin/placements?limit=1", auth: .admin).status == 403)
    }

    @Test("every change is an audit line on stderr (who, client, action, target, before, after); refusals are not")
    func audit() throws {
        let scope = try Scope("admin-audit")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let from = try w.visit("au1")
        let to = from == "ws-1" ? "ws-2" : "ws-1"
        #expect(try a.call("PUT", "/admin/nodes/ws-3",
                           "{\"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[2])\", \"preview_base_url\": \"\(w.url(2))\", \"static\": true}").status == 201)
        #expect(try a.call("PUT", "/admin/nodes/ws-3", #"{"weight": 42}"#).status == 200)
        #expect(try a.call("POST", "/admin/nodes/ws-3/disable").status == 200)
        #expect(try a.call("POST", "/admin/nodes/ws-3/enable").status == 200)
        #expect(try a.call("POST", "/admin/placements/workspace/au1/reassign", "{\"node\": \"\(to)\"}").status == 200)
        #expect(try a.call("POST", "/admin/nodes/ws-3/drain", "{\"target\": \"\(to)\"}").status == 200)
        #expect(try a.call("DELETE", "/admin/nodes/ws-3").status == 200)
        #expect(try a.call("POST", "/internal/nodes/heartbeat",
                           "{\"name\": \"hb-1\", \"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[0])\", \"preview_base_url\": \"\(w.url(0))\"}",
                           auth: .node(w.gw.config.nodeToken)).status == 200)
        #expect(try a.call("PUT", "/internal/placements/workspace/au1", #"{"host_port": 31001}"#, auth: .node(w.gw.config.nodeToken)).status == 200)

        let records = w.gw.auditRecords()
        let actions = records.compactMap { $0["action"].string }
        #expect(actions == ["node.create", "node.update", "node.disable", "node.enable", "placement.reassign", "node.drain",
                            "node.delete", "node.register", "placement.port"], "audit actions: \(actions)\n\(w.gw.child.stderr.suffix(3000))")
        for r in records {
            #expect(r.keys.isSuperset(of: ["who", "client", "action", "target", "before", "after"]), "\(r)")
            #expect(r["client"].string == "127.0.0.1", "\(r)")
        }
        let byAction = Dictionary(records.map { ($0["action"].string ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byAction["node.create"]?["who"].string == "admin" && byAction["node.create"]?["before"].isNull == true)
        #expect(byAction["node.update"]?["before"]["weight"].int == 100 && byAction["node.update"]?["after"]["weight"].int == 42)
        #expect(byAction["node.disable"]?["after"]["enabled"].bool == false)
        #expect(byAction["placement.reassign"]?["target"].string == "workspace/au1")
        #expect(byAction["placement.reassign"]?["before"]["node"].string == from && byAction["placement.reassign"]?["after"]["node"].string == to)
        #expect(byAction["node.delete"]?["after"].isNull == true && byAction["node.delete"]?["target"].string == "ws-3")
        #expect(byAction["node.register"]?["who"].string == "node:hb-1")
        #expect(byAction["placement.port"]?["after"]["host_port"].int == 31001)

        // Refused or read-only requests write nothing.
        _ = try a.call("PUT", "/admin/nodes/ws-1", #"{"weight": 0}"#)
        _ = try a.call("POST", "/admin/placements/workspace/au1/reassign", #"{"node": "ghost"}"#)
        _ = try a.call("POST", "/admin/nodes/ws-1/drain", #"{"target": "ghost"}"#)
        _ = try a.call("DELETE", "/admin/nodes/ghost")
        _ = try a.call("PUT", "/admin/nodes/ws-1", #"{"weight": 5}"#, auth: .token("wrong"))
        _ = try a.get("/admin/nodes")
        #expect(w.gw.auditRecords().count == records.count, "refusals were audited: \(w.gw.auditRecords().dropFirst(records.count))")
    }
}

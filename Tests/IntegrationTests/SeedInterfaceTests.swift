// The seeds' interfaces as deployed (issue 16), each from its own documented request, with the
// registry effect checked through the admin API.

import Foundation
import Testing

@Suite("Seed interfaces")
struct SeedInterfaceTests {
    @Test("POST /internal/runtime-nodes/heartbeat with X-RT-Node-Token and the seed's camelCase body upserts the runtime node and refreshes its heartbeat")
    func runtimeHeartbeat() throws {
        let scope = try Scope("seed-rt-heartbeat")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let token = w.gw.config.runtimeNodeToken
        let body = #"{"nodeName":"rt-9","agentBaseUrl":"http://127.0.0.1:7005","gatewayBaseUrl":"http://127.0.0.1:8081"}"#
        let r = try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", body, auth: .none, headers: ["X-RT-Node-Token: \(token)"])
        #expect(r.status == 200, "\(r)")
        let node = try w.admin.node("rt-9")
        #expect(node["pool"].string == "runtime" && node["preview_base_url"].string == "http://127.0.0.1:8081"
                && node["api_base_url"].string == "http://127.0.0.1:7005" && node["address"].string == "127.0.0.1:8081", "\(node)")
        #expect(node["healthy"].bool == true && (node["last_heartbeat_age_ms"].int ?? .max) < 2_000, "\(node)")
        usleep(300_000)
        let again = try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", #"{"nodeName":"rt-9","agentBaseUrl":"http://127.0.0.1:7006"}"#,
                                     auth: .none, headers: ["X-RT-Node-Token: \(token)"])
        #expect(again.status == 200, "\(again)")
        let after = try w.admin.node("rt-9")
        // Refreshed: younger than the 300 ms since the first.
        #expect(after["api_base_url"].string == "http://127.0.0.1:7006" && (after["last_heartbeat_age_ms"].int ?? .max) < 250, "\(after)")

        #expect(try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", body, auth: .none).status == 401)
        #expect(try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", body, auth: .none,
                                 headers: ["X-RT-Node-Token: \(w.gw.config.nodeToken)"]).status == 403)
        #expect(try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", #"{"nodeName":"rt-10"}"#, auth: .none,
                                 headers: ["X-RT-Node-Token: \(token)"]).status == 400)
        #expect(try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", #"{"nodeName":"ws-1","gatewayBaseUrl":"http://127.0.0.1:1"}"#,
                                 auth: .none, headers: ["X-RT-Node-Token: \(token)"]).status == 409)
        #expect(try w.admin.call("POST", "/internal/runtime-nodes/heartbeat", #"{"nodeName":"rt-11","gatewayBaseUrl":"ftp://x"}"#,
                                 auth: .none, headers: ["X-RT-Node-Token: \(token)"]).status == 400)
    }

    @Test("/admin/runtime-nodes/{list,upsert,set-enabled,placements,reassign,drain} with X-Admin-Token, each from the seed's request")
    func runtimeAdmin() throws {
        let scope = try Scope("seed-rt-admin")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let made = try a.call("POST", "/admin/runtime-nodes/upsert",
                              "{\"name\":\"rt-2\",\"agentBaseUrl\":\"http://127.0.0.1:7006\",\"gatewayBaseUrl\":\"\(w.url(2))\",\"enabled\":true,\"weight\":100}")
        #expect(made.status == 200 && made.json["gatewayBaseUrl"].string == w.url(2), "\(made)")
        // Fresh, so it may take users.
        _ = try a.call("POST", "/internal/runtime-nodes/heartbeat", "{\"nodeName\":\"rt-2\"}", auth: .none,
                       headers: ["X-RT-Node-Token: \(w.gw.config.runtimeNodeToken)"])
        let list = try a.get("/admin/runtime-nodes/list")
        #expect(list.status == 200 && list.json.array.compactMap { $0["name"].string } == ["rt-1", "rt-2"], "\(list)")
        #expect(list.json.array.last?["healthy"].bool == true, "\(list)")

        for app in ["app-1", "app-2"] {
            #expect(try a.call("PUT", "/admin/placements/runtime/\(app)", #"{"node": "rt-1"}"#).status == 201)
        }
        let placed = try a.get("/admin/runtime-nodes/placements?nodeId=rt-1&offset=0&limit=10")
        #expect(placed.status == 200 && placed.json["total"].int == 2 && placed.json["items"][0]["appId"].string == "app-1", "\(placed)")
        let moved = try a.call("POST", "/admin/runtime-nodes/reassign", #"{"appId": "app-1", "targetNodeId": "rt-2"}"#)
        #expect(moved.status == 200 && moved.json["toNode"].string == "rt-2", "\(moved)")
        let drained = try a.call("POST", "/admin/runtime-nodes/drain", #"{"sourceNodeId": "rt-1", "targetNodeId": "rt-2", "limit": 10}"#)
        #expect(drained.status == 200 && drained.json["moved"].int == 1, "\(drained)")
        #expect(try a.get("/admin/runtime-nodes/placements?nodeId=rt-2").json["total"].int == 2)
        let off = try a.call("POST", "/admin/runtime-nodes/set-enabled?name=rt-2&enabled=false")
        #expect(off.status == 200 && off.json["enabled"].bool == false, "\(off)")

        #expect(try a.call("GET", "/admin/runtime-nodes/list", auth: .none).status == 401)
        #expect(try a.call("POST", "/admin/runtime-nodes/set-enabled?name=rt-2&enabled=maybe").status == 400)
        #expect(try a.call("POST", "/admin/runtime-nodes/set-enabled?name=ws-1&enabled=true").status == 409)
        #expect(try a.get("/admin/runtime-nodes/placements?nodeId=ghost").status == 404)
        #expect(try a.call("POST", "/admin/runtime-nodes/reassign", #"{"appId": "nobody", "targetNodeId": "rt-1"}"#).status == 404)
        #expect(try a.call("POST", "/admin/runtime-nodes/upsert", #"{"name": "rt-3", "colour": "red"}"#).status == 400)
    }

    @Test("require_api_base_url: new keys go only to nodes with both URLs set (the seed's runtime pool rule)")
    func requireBothURLs() throws {
        let scope = try Scope("seed-both-urls")
        defer { scope.close() }
        let w = try scope.startAdminWorld(workspacePool: "require_api_base_url: true")
        defer { w.stopPeers() }
        // ws-1 and ws-2 are declared without an api_base_url: nothing to place on.
        let none = try w.web.send("GET", "/ws/u1/x")
        #expect(none.status == 503, "\(none)")
        let hb = "{\"name\": \"ws-3\", \"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[0])\", \"preview_base_url\": \"\(w.url(0))\", \"api_base_url\": \"http://127.0.0.1:7001\"}"
        #expect(try w.admin.call("POST", "/internal/nodes/heartbeat", hb, auth: .node(w.gw.config.nodeToken)).status == 200)
        for u in 0..<10 { #expect(try w.visit("both-\(u)") == "ws-3") }
    }
}

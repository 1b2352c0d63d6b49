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
}

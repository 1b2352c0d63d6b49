// Two gateway processes on one SQLite registry file: each follows the other's commits through
// the change feed (change_log + PRAGMA data_version), so an operator's change made through either
// admin API routes on both, without a restart.

import Foundation
import Testing

@Suite("Two gateways on one registry file", .serialized)
struct SharedFileTests {
    @Test("A reassignment, a new placement and a new node made through one gateway route on the other")
    func changesFollow() throws {
        let scope = try Scope("shared-file")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        var config = w.gw.config
        config.port = try Ports.free()
        config.adminPort = try Ports.free()
        let b = try scope.startAdminGateway(config, name: "gateway-b")
        let bWeb = b.publicClient(), bAdmin = b.client()

        // Placed through A; B adopts A's row (it does not place the key itself).
        let node = try w.visit("shared-1")
        #expect(try eventually { try bAdmin.get("/admin/placements/workspace/shared-1").json["node"].string == node })
        let viaB = try bWeb.send("GET", "/ws/shared-1/index.html")
        #expect(viaB.header("X-WS-Upstream") == node, "\(viaB)")

        // Moved through A's admin API: B routes the user to the new node.
        let other = node == "ws-1" ? "ws-2" : "ws-1"
        let moved = try w.admin.call("POST", "/admin/placements/workspace/shared-1/reassign", #"{"node": "\#(other)"}"#)
        #expect(moved.status == 200, "\(moved)")
        #expect(try eventually { try bWeb.send("GET", "/ws/shared-1/index.html").header("X-WS-Upstream") == other })

        // A node created through B appears on A, with the fields B gave it.
        let create = """
        {"pool": "workspace", "address": "\(w.upstream.addresses[2])", "preview_base_url": "\(w.url(2))", "static": true, "weight": 42}
        """
        #expect(try bAdmin.call("PUT", "/admin/nodes/ws-9", create).status == 201)
        #expect(try eventually { try w.admin.get("/admin/nodes/ws-9").json["weight"].int == 42 })
        // And a drain through B moves A's view of ws-9's users too (here: none), then deleting it
        // on B removes it on A.
        #expect(try bAdmin.call("DELETE", "/admin/nodes/ws-9").status == 200)
        #expect(try eventually { try w.admin.get("/admin/nodes/ws-9").status == 404 })

        // Neither process complained about the other's rows.
        for child in [w.gw.child, b.child] {
            #expect(!child.stderr.contains("registry feed:"), "\(child.stderr.suffix(2000))")
        }
    }
}

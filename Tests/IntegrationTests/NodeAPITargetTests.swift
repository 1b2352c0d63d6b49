// The workspace API by api_base_url (issue 16): a keyed route with `target: api` goes to the
// placed node's API, each request signed (docs/node-api-signature.md) and checked by a node-side
// verifier written from that document (peers/signedapi.py): client-sent signature fields never
// reach the node, a replay and a tampered path are refused.

import Foundation
import Testing

@Suite("Node API target")
struct NodeAPITargetTests {
    @Test("target: api signs every request for the user's node; forged fields are dropped; the verifier refuses a replay and a tampered path")
    func signedAPI() throws {
        let scope = try Scope("node-api")
        defer { scope.close() }
        let secret = try scope.write("api.secret", "node-api-shared-secret-0123456789\n")
        guard let python = Paths.which("python3") else { throw HarnessError("python3 not found") }
        let api = try scope.startPeer("signedapi.py", python: python, ["--secret-file", secret], name: "signedapi") {
            Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let web = try scope.startUpstreams(1)
        let port = try Ports.free()
        let yaml = """
        workers: 2
        listeners:
          - address: 127.0.0.1:\(port)
        logging: {access: "off", error: stderr}
        admin: {address: "off"}
        registry: {database: "\(scope.path("registry.db"))"}
        nodes:
          - {name: ws-1, pool: workspace, address: "\(web.addresses[0])", api_base_url: "http://127.0.0.1:\(api.ready)", heartbeats: false}
        routes:
          - {name: workspace-api, path_prefix: /api/fun-ai/workspace/, key: {query: userId}, pool: workspace, target: api, api_secret_file: \(secret)}
          - {name: unsigned-api, path_prefix: /api/unsigned/, key: {query: userId}, pool: workspace, target: api}

        """
        let gw = try scope.startGateway(yaml: yaml, port: port)

        let forged = ["X-Switchyard-Signature: v1=deadbeef", "X-Switchyard-Nonce: 00", "X-Switchyard-Timestamp: 1"]
        let r = try scope.get(gw.url("/api/fun-ai/workspace/status?userId=alice&x=%2F"), headers: forged)
        let doc = AJSON(data: r.body)
        #expect(r.status == 200 && doc["verified"].bool == true, "\(r.status) \(doc)")
        #expect(doc["target"].string == "/api/fun-ai/workspace/status?userId=alice&x=%2F", "\(doc)")
        #expect(r.header("X-WS-Upstream") == "ws-1")
        let posted = try scope.curl(["-X", "POST", "--data-binary", "{\"a\":1}", "-H", "Content-Type: application/json",
                                     gw.url("/api/fun-ai/workspace/files?userId=alice")])
        #expect(posted.status == 200 && AJSON(data: posted.body)["method"].string == "POST", "\(posted)")
        // Two requests, two nonces.
        let again = AJSON(data: try scope.get(gw.url("/api/fun-ai/workspace/status?userId=alice&x=%2F")).body)
        #expect(again["nonce"].string != doc["nonce"].string && again["verified"].bool == true, "\(again)")

        // What the node saw, sent to it again: a replay. With another path: tampered.
        let signed = ["X-Switchyard-Timestamp: \(doc["timestamp"].string ?? "")", "X-Switchyard-Nonce: \(doc["nonce"].string ?? "")",
                      "X-Switchyard-Signature: \(doc["signature"].string ?? "")"]
        let replay = try scope.get("http://127.0.0.1:\(api.ready)/api/fun-ai/workspace/status?userId=alice&x=%2F", headers: signed)
        #expect(replay.status == 401 && AJSON(data: replay.body)["error"].string == "replayed nonce", "\(replay)")
        let fresh = AJSON(data: try scope.get(gw.url("/api/fun-ai/workspace/status?userId=alice")).body)
        let tampered = ["X-Switchyard-Timestamp: \(fresh["timestamp"].string ?? "")", "X-Switchyard-Nonce: \(fresh["nonce"].string ?? "")",
                        "X-Switchyard-Signature: \(fresh["signature"].string ?? "")"]
        let bad = try scope.get("http://127.0.0.1:\(api.ready)/api/fun-ai/workspace/status?userId=mallory", headers: tampered)
        #expect(bad.status == 401 && AJSON(data: bad.body)["error"].string == "bad signature", "\(bad)")

        // Without a secret the route forwards unsigned (and client copies are still dropped).
        let unsigned = try scope.get(gw.url("/api/unsigned/x?userId=alice"), headers: forged)
        #expect(unsigned.status == 401 && (AJSON(data: unsigned.body)["error"].string ?? "").contains("0 copies"), "\(unsigned)")
        #expect(try scope.get(gw.url("/api/fun-ai/workspace/status")).status == 400)
    }
}

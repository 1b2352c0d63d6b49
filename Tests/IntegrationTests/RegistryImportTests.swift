// The cut-over rehearsal (issue 16): four nodes and 1,000 placements exported from the seeds'
// MySQL tables as CSV, in the seeds' column names → `switchyard registry import` → the gateway
// on that registry routes every one of those users to its old node, and new users spread by the
// pool's policy. Bad rows are refused and reported, a second import changes nothing.

import Foundation
import Testing

@Suite("Registry import")
struct RegistryImportTests {
    @Test("CSV exports of fun_ai_workspace_node and fun_ai_workspace_placement: every imported user on its old node, new ones spread, bad rows reported, idempotent")
    func cutOverRehearsal() throws {
        let scope = try Scope("import")
        defer { scope.close() }
        let up = try scope.startUpstreams(4)
        var nodes = "id,name,nginx_base_url,api_base_url,enabled,weight,last_heartbeat_at,create_time,update_time\n"
        for i in 0..<4 {
            nodes += "\(11 + i),ws-node-0\(i + 1),http://\(up.addresses[i]),http://127.0.0.1:7001,1,100,NULL,2026-01-01 00:00:00,2026-01-01 00:00:00\n"
        }
        var placements = "id,user_id,node_id,last_active_at,create_time,update_time\n"
        var expected: [String: String] = [:]
        for u in 0..<1000 {
            let node = 11 + (u * 7 + u / 3) % 4
            placements += "\(u + 1),\(100_000 + u),\(node),1765000000000,2026-01-01 00:00:00,2026-01-01 00:00:00\n"
            expected[String(100_000 + u)] = "ws-node-0\(node - 10)"
        }
        // Refused: a node that does not exist, a user id that is no key, a user placed twice.
        placements += "2001,555,99,0,,\n2002,\"bad key!\",11,0,,\n2003,100000,12,0,,\n"
        let nodeFile = try scope.write("fun_ai_workspace_node.csv", nodes)
        let placementFile = try scope.write("fun_ai_workspace_placement.csv", placements)
        let db = scope.path("registry.db")
        let bin = try scope.gatewayBinary()

        let first = try scope.run(bin, ["registry", "import", "--to", db, "--static-nodes", nodeFile, placementFile])
        #expect(first.status == 0, "\(first.stdoutText) \(first.stderr)")
        #expect(first.stdoutText.contains("4 node(s): 4 imported") && first.stdoutText.contains("1000 placement(s): 1000 imported"), "\(first.stdoutText)")
        #expect(first.stdoutText.contains("3 row(s) refused") && first.stdoutText.contains("row 1001: node_id 99")
                && first.stdoutText.contains("row 1002:") && first.stdoutText.contains("row 1003: user_id 100000 placed twice"), "\(first.stdoutText)")
        let second = try scope.run(bin, ["registry", "import", "--to", db, "--static-nodes", nodeFile, placementFile])
        #expect(second.stdoutText.contains("4 node(s): 0 imported, 4 already there")
                && second.stdoutText.contains("1000 placement(s): 0 imported, 1000 already there"), "\(second.stdoutText)")

        let port = try Ports.free()
        let yaml = """
        workers: 2
        listeners:
          - address: 127.0.0.1:\(port)
        logging: {access: "off", error: stderr}
        admin: {address: "off"}
        registry: {database: "\(db)"}
        pools: {workspace: {policy: rendezvous}}
        routes:
          - {name: workspace, path_prefix: /ws/, key: {path_segment: /ws/}, pool: workspace}

        """
        _ = try scope.startGateway(yaml: yaml, port: port)
        let client = HTTPClient(port: port)
        var wrong: [String] = []
        for (user, node) in expected.sorted(by: { $0.key < $1.key }) {
            let r = try client.send("GET", "/ws/\(user)/")
            if r.header("X-WS-Upstream") != node { wrong.append("\(user): \(r.header("X-WS-Upstream") ?? "status \(r.status)") not \(node)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) moved: \(wrong.prefix(5))")
        var spread: [String: Int] = [:]
        for u in 0..<200 { spread[try client.send("GET", "/ws/new-user-\(u)/").header("X-WS-Upstream") ?? "-", default: 0] += 1 }
        #expect(spread.keys.sorted() == ["ws-node-01", "ws-node-02", "ws-node-03", "ws-node-04"] && spread.values.allSatisfy { $0 >= 20 }, "\(spread)")
    }

    @Test("JSON exports of the deploy side's runtime tables go to the runtime pool; a bad file is refused whole")
    func runtimeJSON() throws {
        let scope = try Scope("import-json")
        defer { scope.close() }
        let nodes = try scope.write("fun_ai_deploy_runtime_node.json", """
            [{"id": 1, "name": "rt-1", "agent_base_url": "http://127.0.0.1:7005", "gateway_base_url": "http://127.0.0.1:8081", "enabled": 1, "weight": 100},
             {"id": 2, "name": "rt-2", "agent_base_url": "http://127.0.0.1:7006", "gateway_base_url": "ftp://nope", "enabled": 0, "weight": 50}]
            """)
        let placements = try scope.write("fun_ai_deploy_runtime_placement.json", """
            [{"app_id": "app-42", "node_id": 1, "last_active_at": 1765000000000}, {"app_id": "app-43", "node_id": 2, "last_active_at": null}]
            """)
        let bin = try scope.gatewayBinary()
        let db = scope.path("registry.db")
        let r = try scope.run(bin, ["registry", "import", "--to", db, nodes, placements])
        #expect(r.status == 0 && r.stdoutText.contains("1 node(s): 1 imported") && r.stdoutText.contains("1 placement(s): 1 imported")
                && r.stdoutText.contains("gateway_base_url ftp://nope") && r.stdoutText.contains("node_id 2 names no imported node"), "\(r.stdoutText) \(r.stderr)")
        let broken = try scope.write("fun_ai_workspace_placement.csv", "user_id,node_id\n\"unterminated,1\n")
        let bad = try scope.run(bin, ["registry", "import", "--to", db, broken])
        #expect(bad.status == 1 && bad.stderr.contains("quoted field never ends"), "\(bad.stderr)")
        let unknown = try scope.run(bin, ["registry", "import", "--to", db, try scope.write("users.csv", "a\n")])
        #expect(unknown.status == 1 && unknown.stderr.contains("not a table"), "\(unknown.stderr)")
    }
}

// The operator commands end to end: `switchyard nodes|placements|route` run as separate
// processes against a gateway started with its admin listener; placements are made by real
// requests through the gateway (curl) and the compat endpoint, and every change the CLI makes is
// checked in the gateway's behaviour, not only in the CLI's words.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

private let adminToken = "0123456789abcdef0123"
private let nodeToken = "nodetoken-0123456789"

/// A gateway with its admin listener, for the CLI to talk to.
private struct CLIWorld {
    let scope: Scope
    let gateway: Gateway
    let adminPort: Int
    let upstream: Upstreams
    let configPath: String

    var admin: String { "http://127.0.0.1:\(adminPort)" }
    func preview(_ i: Int) -> String { "http://127.0.0.1:\(upstream.ports[i])" }

    /// Runs `switchyard ARGS --config <this gateway's YAML>` in the test's directory, with the
    /// SWITCHYARD_ADMIN* variables only as given.
    func cli(_ args: [String], env: [String: String] = [:], config: Bool = true) throws -> CLIRun {
        try runCLI(scope, args + (config ? ["--config", configPath] : []), env: env)
    }

    /// The CLI, asserted to succeed.
    func ok(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> CLIRun {
        let r = try cli(args)
        #expect(r.status == 0, "switchyard \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
        return r
    }

    /// `--json` output as an object.
    func json(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let r = try ok(args + ["--json"], sourceLocation: sourceLocation)
        return try #require(Data(r.stdout.utf8).json(), "not a JSON object: \(r)", sourceLocation: sourceLocation)
    }

    /// The node a user's request went to (the gateway's X-WS-Upstream).
    func nodeOf(_ user: String) throws -> String? {
        try scope.get(gateway.url("/ws/\(user)/")).header("X-WS-Upstream")
    }

    func placements(node: String? = nil) throws -> [[String: Any]] {
        try json(["placements", "list", "--limit", "10000"] + (node.map { ["--node", $0] } ?? []))["placements"] as? [[String: Any]] ?? []
    }
}

private struct CLIRun: CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String
    var description: String { "exit \(status), stdout \(stdout.prefix(600).debugDescription), stderr \(stderr.prefix(600).debugDescription)" }
}

private func runCLI(_ scope: Scope, _ args: [String], env: [String: String] = [:]) throws -> CLIRun {
    var environment = ProcessInfo.processInfo.environment
    environment["SWITCHYARD_ADMIN"] = nil
    environment["SWITCHYARD_ADMIN_TOKEN"] = nil
    environment.merge(env) { _, new in new }
    let child = try Child(name: "cli-\(UUID().uuidString.prefix(8))", executable: try scope.gatewayBinary(),
                          arguments: args, dir: scope.dir, environment: environment)
    let status = child.wait(timeout: 30)
    if status == nil { child.stop(grace: 1) }
    defer {
        try? FileManager.default.removeItem(at: child.stdoutURL)
        try? FileManager.default.removeItem(at: child.stderrURL)
    }
    return CLIRun(status: status ?? -1, stdout: child.stdout, stderr: child.stderr)
}

/// A `kubectl get`-style table as rows of header → cell, checking that every column starts
/// at the same offset on every line.
private func parseTable(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> (headers: [String], rows: [[String: String]]) {
    let lines = text.split(separator: "\n").map(String.init)
    guard let head = lines.first else { return ([], []) }
    let headers = head.split(separator: " ").map(String.init)
    var starts: [Int] = []
    var previous: Character = " "
    for (i, c) in head.enumerated() {
        if c != " " && previous == " " { starts.append(i) }
        previous = c
    }
    var rows: [[String: String]] = []
    for line in lines.dropFirst() {
        let chars = Array(line)
        for s in starts.dropFirst() {
            #expect(s < chars.count && chars[s] != " " && chars[s - 1] == " ", "column misaligned at \(s): \(line.debugDescription)",
                    sourceLocation: sourceLocation)
        }
        let cells = line.split(separator: " ").map(String.init)
        #expect(cells.count == headers.count, "\(cells.count) cells under \(headers.count) headers: \(line.debugDescription)",
                sourceLocation: sourceLocation)
        rows.append(Dictionary(uniqueKeysWithValues: zip(headers, cells)))
    }
    return (headers, rows)
}

/// The "Name: value" lines of `route explain`, up to the blank line before the candidates.
private func explainFields(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in text.components(separatedBy: "\n") {
        if line.isEmpty { break }
        guard let colon = line.firstIndex(of: ":") else { continue }
        out[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return out
}

extension Scope {
    /// A gateway with the admin listener, a workspace pool with a node token, keyed routes (path
    /// segment, query, cookie) and no nodes: the tests add them with the CLI.
    fileprivate func startCLIWorld(upstreams: Int = 3, admin: ((Int) -> String)? = nil) throws -> CLIWorld {
        let up = try startUpstreams(upstreams)
        let adminPort = try Ports.free()
        let gateway = try startGateway(StickyConfig(
            port: try Ports.free(), database: path("var/registry.db"), routes: [.workspace, .workspaceAPI, .assets],
            pools: [("workspace", "{node_token: \(nodeToken)}")], workers: 1, access: "off",
            admin: admin?(adminPort) ?? "{address: 127.0.0.1:\(adminPort), token: \(adminToken)}"))
        return CLIWorld(scope: self, gateway: gateway, adminPort: adminPort, upstream: up, configPath: gateway.configPath)
    }
}

@Suite("Admin CLI (switchyard nodes|placements|route)")
struct AdminCLITests {
    @Test("nodes: add, list as a table and as JSON, update, disable and enable, heartbeats, refusals, remove")
    func nodes() throws {
        let scope = try Scope("cli-nodes")
        defer { scope.close() }
        let w = try scope.startCLIWorld()
        let a = w.upstream.addresses

        let empty = try w.ok(["nodes", "list"])
        #expect(empty.stdout.isEmpty && empty.stderr.contains("No nodes."), "\(empty)")

        let added = try w.ok(["nodes", "add", "ws-1", "--pool", "workspace", "--address", a[0], "--preview-url", w.preview(0), "--static"])
        #expect(added.stdout.hasPrefix("node ws-1 created: pool workspace, \(a[0]), preview \(w.preview(0))"), "\(added)")
        let ws2 = try w.json(["nodes", "add", "ws-2", "--pool", "workspace", "--address", a[1], "--preview-url", w.preview(1),
                              "--static", "--weight", "300", "--capacity", "50", "--label", "zone=b"])
        #expect(ws2["name"] as? String == "ws-2" && ws2["weight"] as? Int == 300 && ws2["capacity"] as? Int == 50, "\(ws2)")
        #expect(ws2["labels"] as? [String: String] == ["zone": "b"] && ws2["static"] as? Bool == true, "\(ws2)")
        _ = try w.ok(["nodes", "add", "ws-hb", "--pool", "workspace", "--address", a[2], "--preview-url", w.preview(2),
                      "--api-url", "http://127.0.0.1:7001"])
        _ = try w.ok(["nodes", "add", "ws-off", "--pool", "workspace", "--address", a[2], "--preview-url", w.preview(2),
                      "--static", "--disabled"])

        let table = parseTable(try w.ok(["nodes", "list"]).stdout)
        #expect(table.headers == ["NAME", "POOL", "ENABLED", "HEALTHY", "HEARTBEAT", "WEIGHT", "CAPACITY", "PLACEMENTS",
                                  "TUNNELS", "ADDRESS", "PREVIEW_URL"])
        #expect(table.rows.map { $0["NAME"] ?? "" } == ["ws-1", "ws-2", "ws-hb", "ws-off"], "by pool, then name: \(table.rows)")
        let row = Dictionary(uniqueKeysWithValues: table.rows.map { ($0["NAME"] ?? "", $0) })
        #expect(row["ws-1"]?["ENABLED"] == "yes" && row["ws-1"]?["HEALTHY"] == "yes" && row["ws-1"]?["HEARTBEAT"] == "static")
        #expect(row["ws-1"]?["ADDRESS"] == a[0] && row["ws-1"]?["PREVIEW_URL"] == w.preview(0) && row["ws-1"]?["CAPACITY"] == "-")
        #expect(row["ws-2"]?["WEIGHT"] == "300" && row["ws-2"]?["CAPACITY"] == "50" && row["ws-2"]?["POOL"] == "workspace")
        #expect(row["ws-hb"]?["HEALTHY"] == "no" && row["ws-hb"]?["HEARTBEAT"] == "never", "no heartbeat yet: \(row["ws-hb"] ?? [:])")
        #expect(row["ws-off"]?["ENABLED"] == "no" && row["ws-off"]?["HEALTHY"] == "no")

        let listed = try w.json(["nodes", "list"])["nodes"] as? [[String: Any]] ?? []
        #expect(listed.compactMap { $0["name"] as? String } == ["ws-1", "ws-2", "ws-hb", "ws-off"])
        #expect(listed.first { $0["name"] as? String == "ws-hb" }?["api_base_url"] as? String == "http://127.0.0.1:7001")
        #expect((try w.json(["nodes", "list", "--pool", "runtime"])["nodes"] as? [Any])?.isEmpty == true)
        #expect(try w.ok(["nodes", "list", "--pool", "runtime"]).stderr.contains("No nodes in pool runtime."))

        // A heartbeat with the pool's node token makes ws-hb healthy.
        let beat = try scope.curl(["-X", "POST", "-H", "X-Node-Token: \(nodeToken)", "-H", "Content-Type: application/json",
                                   "--data", #"{"name": "ws-hb", "pool": "workspace"}"#, w.admin + "/internal/nodes/heartbeat"])
        #expect(beat.status == 200, "\(beat.summary)")
        let hb = parseTable(try w.ok(["nodes", "list", "--pool", "workspace"]).stdout).rows.first { $0["NAME"] == "ws-hb" }
        #expect(hb?["HEALTHY"] == "yes" && (hb?["HEARTBEAT"]?.hasSuffix("ms") == true || hb?["HEARTBEAT"]?.hasSuffix("s") == true),
                "\(hb ?? [:])")

        // add on an existing name updates it; what is not given keeps its value.
        let updated = try w.ok(["nodes", "add", "ws-2", "--pool", "workspace", "--address", a[1], "--preview-url", w.preview(1),
                                "--weight", "200"])
        #expect(updated.stdout.hasPrefix("node ws-2 updated:") && updated.stdout.contains("weight 200")
                && updated.stdout.contains("capacity 50") && updated.stdout.contains("labels zone=b"), "\(updated)")

        // Disabled: no new user lands there; enabled: back in scheduling.
        #expect(try w.ok(["nodes", "disable", "ws-2"]).stdout.hasPrefix("node ws-2 disabled: no new users"))
        #expect((try w.json(["nodes", "list"])["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == "ws-2" }?["enabled"] as? Bool == false)
        var landed = Set<String>()
        for i in 0..<12 { if let n = try w.nodeOf("off\(i)") { landed.insert(n) } }
        #expect(!landed.contains("ws-2") && !landed.isEmpty, "new users while ws-2 was disabled went to \(landed)")
        #expect(try w.ok(["nodes", "enable", "ws-2"]).stdout.hasPrefix("node ws-2 enabled: takes new users"))
        #expect(try w.json(["nodes", "enable", "ws-2"])["enabled"] as? Bool == true)
        var after = Set<String>()
        for i in 0..<12 { if let n = try w.nodeOf("on\(i)") { after.insert(n) } }
        #expect(after.contains("ws-2"), "weight 200 of 500 and no new user on ws-2 after enabling: \(after)")

        // Refusals: the API's error and field on stderr, exit 1; with --json the API's body on stdout.
        let badWeight = try w.cli(["nodes", "add", "ws-9", "--pool", "workspace", "--address", a[0], "--preview-url", w.preview(0),
                                   "--weight", "0"])
        #expect(badWeight.status == 1 && badWeight.stderr.contains("must be between 1 and 10000 (field: weight)"), "\(badWeight)")
        let badJSON = try w.cli(["nodes", "add", "ws-9", "--pool", "workspace", "--address", "nohost", "--preview-url", w.preview(0), "--json"])
        #expect(badJSON.status == 1 && Data(badJSON.stdout.utf8).json()?["field"] as? String == "address", "\(badJSON)")
        let movePool = try w.cli(["nodes", "add", "ws-1", "--pool", "runtime", "--address", a[0], "--preview-url", w.preview(0)])
        #expect(movePool.status == 1 && movePool.stderr.contains("HTTP 409") && movePool.stderr.contains("(field: pool)"), "\(movePool)")
        let ghost = try w.cli(["nodes", "enable", "ghost"])
        #expect(ghost.status == 1 && ghost.stderr.contains("no node named ghost"), "\(ghost)")
        #expect((try w.json(["nodes", "list"])["nodes"] as? [Any])?.count == 4, "a refused request changed nothing")

        // Usage errors are 2, before anything is sent.
        let usage = try w.cli(["nodes", "add", "ws-9", "--pool", "workspace"])
        #expect(usage.status == 2 && usage.stderr.contains("--address"), "\(usage)")
        let badLabel = try w.cli(["nodes", "add", "ws-9", "--pool", "workspace", "--address", a[0], "--preview-url", w.preview(0),
                                  "--label", "novalue"])
        #expect(badLabel.status == 2 && badLabel.stderr.contains("key=value"), "\(badLabel)")

        let removed = try w.ok(["nodes", "remove", "ws-off"])
        #expect(removed.stdout == "node ws-off removed\n", "\(removed)")
        #expect(parseTable(try w.ok(["nodes", "list"]).stdout).rows.map { $0["NAME"] ?? "" } == ["ws-1", "ws-2", "ws-hb"])
        #expect(try w.cli(["nodes", "rm", "ws-off"]).status == 1, "removing twice is a 404")
    }

    @Test("placements: made by traffic and the compat endpoint, listed and paged, reassigned; drain to a node and by policy; remove drops")
    func placementsAndMoves() throws {
        let scope = try Scope("cli-placements")
        defer { scope.close() }
        let w = try scope.startCLIWorld()
        let a = w.upstream.addresses
        for i in 0..<2 {
            _ = try w.ok(["nodes", "add", "ws-\(i + 1)", "--pool", "workspace", "--address", a[i], "--preview-url", w.preview(i), "--static"])
        }
        _ = try w.ok(["nodes", "add", "ws-3", "--pool", "workspace", "--address", a[2], "--preview-url", w.preview(2), "--static", "--disabled"])

        // 30 users through the gateway, 2 through the API server's old question.
        var placed: [String: String] = [:]
        for i in 0..<30 {
            let user = "u\(String(i).leftPad(2))"
            let node = try w.nodeOf(user)
            placed[user] = try #require(node, "\(user) was not routed")
        }
        for user in ["c1", "c2"] {
            let r = try scope.get(w.admin + "/api/fun-ai/workspace/internal/gateway/node?userId=\(user)")
            let node = try #require(r.json?["node"] as? String, "\(r.summary)")
            #expect(r.header("X-WS-Node") == (node == "ws-1" ? w.preview(0) : w.preview(1)), "\(r.summary)")
            placed[user] = node
        }
        #expect(Set(placed.values) == ["ws-1", "ws-2"], "32 users on \(Set(placed.values))")

        let table = parseTable(try w.ok(["placements", "list", "--limit", "1000"]).stdout)
        #expect(table.headers == ["POOL", "KEY", "NODE", "HOST_PORT", "CREATED"])
        #expect(table.rows.map { $0["KEY"] ?? "" } == placed.keys.sorted(), "sorted by pool and key")
        for row in table.rows {
            #expect(row["POOL"] == "workspace" && row["NODE"] == placed[row["KEY"] ?? ""] && row["HOST_PORT"] == "-", "\(row)")
            #expect(row["CREATED"]?.count == 20 && row["CREATED"]?.hasSuffix("Z") == true, "\(row)")
        }
        let onWs1 = placed.filter { $0.value == "ws-1" }.keys.sorted()
        let ws1 = try w.json(["placements", "list", "--node", "ws-1", "--pool", "workspace"])
        #expect(ws1["total"] as? Int == onWs1.count, "\(ws1)")
        #expect((ws1["placements"] as? [[String: Any]])?.compactMap { $0["key"] as? String } == onWs1)

        // Paging: --offset/--limit reach the API; the table says where the next page starts.
        let page = try w.json(["placements", "list", "--offset", "5", "--limit", "5"])
        #expect(page["offset"] as? Int == 5 && page["limit"] as? Int == 5 && page["total"] as? Int == 32, "\(page)")
        #expect((page["placements"] as? [[String: Any]])?.compactMap { $0["key"] as? String } == Array(placed.keys.sorted()[5..<10]))
        let pageTable = try w.ok(["placements", "list", "--offset", "5", "--limit", "5"])
        #expect(parseTable(pageTable.stdout).rows.count == 5 && pageTable.stderr.contains("6-10 of 32; next page: --offset 10"),
                "\(pageTable)")
        let badLimit = try w.cli(["placements", "list", "--limit", "0"])
        #expect(badLimit.status == 1 && badLimit.stderr.contains("(field: limit)"), "\(badLimit)")

        // Reassign one user: the gateway sends them to the new node from the next request.
        let mover = try #require(onWs1.first)
        let moved = try w.ok(["placements", "reassign", "workspace", mover, "--to", "ws-2"])
        #expect(moved.stdout == "workspace/\(mover): ws-1 -> ws-2\n", "\(moved)")
        #expect(try w.nodeOf(mover) == "ws-2")
        placed[mover] = "ws-2"
        let again = try w.cli(["placements", "reassign", "workspace", mover, "--to", "ws-2"])
        #expect(again.status == 1 && again.stderr.contains("HTTP 409") && again.stderr.contains("(field: node)"), "\(again)")
        let disabled = try w.cli(["placements", "reassign", "workspace", mover, "--to", "ws-3"])
        #expect(disabled.status == 1 && disabled.stderr.contains("disabled"), "\(disabled)")
        let nobody = try w.cli(["placements", "reassign", "workspace", "nobody", "--to", "ws-2"])
        #expect(nobody.status == 1 && nobody.stderr.contains("no placement for nobody"), "\(nobody)")
        #expect(try w.nodeOf(mover) == "ws-2", "refusals moved nothing")

        // Drain to a named node, a few at a time.
        _ = try w.ok(["nodes", "enable", "ws-3"])
        _ = try w.ok(["nodes", "disable", "ws-1"])
        let firstDrain = try w.ok(["nodes", "drain", "ws-1", "--to", "ws-3", "--limit", "3"])
        #expect(firstDrain.stdout.hasPrefix("node ws-1: 3 moved, 0 unmoved"), "\(firstDrain)")
        #expect(parseTable(String(firstDrain.stdout.split(separator: "\n", maxSplits: 1)[1])).rows == [["TARGET": "ws-3", "MOVED": "3"]],
                "\(firstDrain)")
        let onWs3 = try w.placements(node: "ws-3")
        #expect(onWs3.count == 3)
        for p in onWs3 {
            let key = try #require(p["key"] as? String)
            #expect(placed[key] == "ws-1", "\(key) came from \(placed[key] ?? "-")")
            placed[key] = "ws-3"
            #expect(try w.nodeOf(key) == "ws-3")
        }

        // Drain the rest by policy: every move listed with --json, every user where it says.
        let left = placed.filter { $0.value == "ws-1" }.count
        let drain = try w.json(["nodes", "drain", "ws-1"])
        let moves = drain["placements"] as? [[String: Any]] ?? []
        let byTarget = drain["by_target"] as? [String: Int] ?? [:]
        #expect(drain["moved"] as? Int == left && drain["unmoved"] as? Int == 0 && moves.count == left, "\(drain)")
        #expect(byTarget.values.reduce(0, +) == left && Set(byTarget.keys).isSubset(of: ["ws-2", "ws-3"]), "\(byTarget)")
        for m in moves {
            let key = try #require(m["key"] as? String), to = try #require(m["to"] as? String)
            #expect(m["from"] as? String == "ws-1" && placed[key] == "ws-1", "\(m)")
            placed[key] = to
            #expect(try w.nodeOf(key) == to, "\(key) drained to \(to)")
        }
        #expect(try w.placements(node: "ws-1").isEmpty)
        #expect(try w.ok(["nodes", "drain", "ws-1"]).stdout == "node ws-1: no placements to move\n")
        let badTarget = try w.cli(["nodes", "drain", "ws-2", "--to", "ghost"])
        #expect(badTarget.status == 1 && badTarget.stderr.contains("no node named ghost"), "\(badTarget)")

        // Remove a node: its placements are dropped and its users placed anew on their next request.
        let onWs3Now = placed.filter { $0.value == "ws-3" }.keys.sorted()
        let removed = try w.ok(["nodes", "remove", "ws-3"])
        #expect(removed.stdout.contains("node ws-3 removed; \(onWs3Now.count) placement"), "\(removed)")
        #expect(try w.placements().count == 32 - onWs3Now.count)
        for key in onWs3Now.prefix(3) { #expect(try w.nodeOf(key) == "ws-2", "ws-1 is disabled, ws-3 gone") }

        // A node that never sent a heartbeat: the API refuses to move a user there, or the CLI warns
        // that the user will get 503 node_down (the API checks only that the target is enabled).
        _ = try w.ok(["nodes", "add", "ws-4", "--pool", "workspace", "--address", a[2], "--preview-url", w.preview(2)])
        let toStale = try w.cli(["placements", "reassign", "workspace", try #require(onWs3Now.first), "--to", "ws-4"])
        if toStale.status == 0 {
            #expect(toStale.stderr.contains("warning: ws-4 is not healthy"), "\(toStale)")
        } else {
            #expect(toStale.status == 1 && toStale.stderr.contains("(field: node)"), "\(toStale)")
        }
    }

    @Test("route explain: a /ws/<id>/ URL and a cookie-routed asset, existing and would-be placements, no key, bad input")
    func routeExplain() throws {
        let scope = try Scope("cli-explain")
        defer { scope.close() }
        let w = try scope.startCLIWorld(upstreams: 2)
        let a = w.upstream.addresses
        for i in 0..<2 {
            _ = try w.ok(["nodes", "add", "ws-\(i + 1)", "--pool", "workspace", "--address", a[i], "--preview-url", w.preview(i), "--static"])
        }
        let aliceNode = try #require(try w.nodeOf("alice"))
        let alicePreview = aliceNode == "ws-1" ? w.preview(0) : w.preview(1)

        let explained = try w.ok(["route", "explain", w.gateway.url("/ws/alice/index.html?x=1")])
        let f = explainFields(explained.stdout)
        #expect(f["Rule"] == "workspace (host *, path prefix /ws/)", "\(explained)")
        #expect(f["Target"] == "node, pool workspace" && f["Key from"] == "path segment after /ws/" && f["Key"] == "alice", "\(f)")
        #expect(f["Placement"] == "existing" && f["Node"]?.hasPrefix("\(aliceNode) (enabled, static") == true, "\(f)")
        #expect(f["Upstream"] == alicePreview && f["Outcome"] == "forwarded", "\(f)")
        let candidates = explained.stdout.components(separatedBy: "\n\n").last ?? ""
        #expect(Set(parseTable(candidates).rows.compactMap { $0["CANDIDATE"] }) == ["ws-1", "ws-2"], "\(explained)")

        // The cookie-keyed asset route finds the same user among other cookies.
        let asset = try w.json(["route", "explain", "/@vite/client", "--cookie", "theme=dark", "--cookie", "ws_uid=alice"])
        #expect((asset["rule"] as? [String: Any])?["name"] as? String == "assets" && asset["key_source"] as? String == "cookie ws_uid", "\(asset)")
        #expect(asset["key"] as? String == "alice" && asset["placement"] as? String == "existing", "\(asset)")
        #expect((asset["node"] as? [String: Any])?["name"] as? String == aliceNode && asset["upstream"] as? String == alicePreview)
        let query = try w.json(["route", "explain", "/api/fun-ai/workspace/files?userId=alice"])
        #expect(query["key"] as? String == "alice" && (query["node"] as? [String: Any])?["name"] as? String == aliceNode, "\(query)")

        // A new user: the node that would be chosen, and nothing is created; the real request agrees.
        let before = try w.placements().count
        let bob = try w.json(["route", "explain", "/ws/bob/", "--method", "POST"])
        #expect((bob["placement"] as? String)?.hasPrefix("new") == true && bob["method"] as? String == "POST", "\(bob)")
        let bobNode = try #require((bob["node"] as? [String: Any])?["name"] as? String)
        #expect(try w.placements().count == before, "explain created a placement")
        #expect(try w.nodeOf("bob") == bobNode, "explain said \(bobNode)")

        // No key: the 400 the request would get, as an answer (exit 0).
        let nokey = try w.ok(["route", "explain", "/@vite/client"])
        #expect(explainFields(nokey.stdout)["Outcome"] == "no routing key (400)" && explainFields(nokey.stdout)["Key"] == "none", "\(nokey)")
        let bad = try w.cli(["route", "explain", "no-slash"])
        #expect(bad.status == 1 && bad.stderr.contains("(field: url)"), "\(bad)")
        let badHeader = try w.cli(["route", "explain", "/ws/x/", "--header", "novalue"])
        #expect(badHeader.status == 2, "\(badHeader)")
    }

    @Test("finding the gateway: config, token file, environment and flags; wrong token 1, unreachable 3, usage and config 2")
    func endpointAndExitCodes() throws {
        let scope = try Scope("cli-endpoint")
        defer { scope.close() }
        // No token in the YAML: the gateway generates one into the file, and the CLI reads it there.
        let w = try scope.startCLIWorld(upstreams: 1) { "{address: 127.0.0.1:\($0), token_file: secrets/admin.token}" }
        let adminPort = w.adminPort
        let token = try String(contentsOfFile: scope.path("secrets/admin.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64)
        let fromConfig = try w.cli(["nodes", "list", "--json"])
        #expect(fromConfig.status == 0 && Data(fromConfig.stdout.utf8).json()?["nodes"] != nil, "\(fromConfig)")

        // Wrong token: the API's refusal, exit 1; the environment overrides the file, a flag the environment.
        let wrong = try w.cli(["nodes", "list", "--token", "wrong-token-0123456789"])
        #expect(wrong.status == 1 && wrong.stderr.contains("refused (HTTP 403): wrong admin token"), "\(wrong)")
        #expect(try w.cli(["nodes", "list"], env: ["SWITCHYARD_ADMIN_TOKEN": "wrong-token-0123456789"]).status == 1)
        #expect(try w.cli(["nodes", "list", "--token", token], env: ["SWITCHYARD_ADMIN_TOKEN": "wrong-token-0123456789"]).status == 0)
        let noConfig = try runCLI(scope, ["placements", "list", "--admin", w.admin, "--token", token, "--config", "/nonexistent.yaml"])
        #expect(noConfig.status == 0, "flags alone need no config file: \(noConfig)")
        let envOnly = try runCLI(scope, ["nodes", "list", "--config", "/nonexistent.yaml"],
                                 env: ["SWITCHYARD_ADMIN": "127.0.0.1:\(adminPort)", "SWITCHYARD_ADMIN_TOKEN": token])
        #expect(envOnly.status == 0, "\(envOnly)")

        // Nobody listening: 3. Listening but never answering: 3 after --timeout.
        let closedPort = try Ports.free()
        let refused = try w.cli(["nodes", "list", "--admin", "http://127.0.0.1:\(closedPort)"])
        #expect(refused.status == 3 && refused.stderr.contains("cannot reach the admin API at http://127.0.0.1:\(closedPort)")
                && refused.stderr.contains("refused"), "\(refused)")
        #expect(try w.cli(["nodes", "list"], env: ["SWITCHYARD_ADMIN": "http://127.0.0.1:\(closedPort)"]).status == 3)
        let (silentFD, silentPort) = try silentListener()
        defer { close(silentFD) }
        let started = Date()
        let silent = try w.cli(["nodes", "list", "--admin", "http://127.0.0.1:\(silentPort)", "--timeout", "1"])
        #expect(silent.status == 3 && silent.stderr.contains("no answer within"), "\(silent)")
        #expect(Date().timeIntervalSince(started) < 10)

        // Usage and configuration: 2.
        #expect(try w.cli(["nodes", "list", "--admin", "https://127.0.0.1:\(adminPort)"]).status == 2)
        #expect(try w.cli(["nodes", "list", "--bogus"]).status == 2)
        #expect(try w.cli(["nodes", "drain"]).status == 2, "missing NAME")
        let missing = try runCLI(scope, ["nodes", "list", "--config", "/nonexistent.yaml"])
        #expect(missing.status == 2 && missing.stderr.contains("cannot read /nonexistent.yaml"), "\(missing)")
        let off = try scope.write("off.yaml", "listeners: [{address: 127.0.0.1:1}]\nadmin: {address: \"off\"}\n")
        let offRun = try runCLI(scope, ["nodes", "list", "--config", off])
        #expect(offRun.status == 2 && offRun.stderr.contains("admin.address is off"), "\(offRun)")
        let noToken = try scope.write("notoken.yaml", "admin: {address: 127.0.0.1:\(adminPort), token_file: nowhere/admin.token}\n")
        let noTokenRun = try runCLI(scope, ["nodes", "list", "--config", noToken])
        #expect(noTokenRun.status == 2 && noTokenRun.stderr.contains("nowhere/admin.token"), "\(noTokenRun)")
        #expect(!FileManager.default.fileExists(atPath: scope.path("nowhere/admin.token")), "the CLI never creates a token")
        let typo = try scope.write("typo.yaml", "admin: {adress: 127.0.0.1:1}\n")
        let typoRun = try runCLI(scope, ["nodes", "list", "--config", typo])
        #expect(typoRun.status == 2 && typoRun.stderr.contains("admin.adress"), "\(typoRun)")
    }
}

/// A socket that listens and never accepts: connects succeed (the kernel's backlog), answers never come.
private func silentListener() throws -> (Int32, Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
    var addr = Ports.loopback(port: 0)
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 8) == 0 else { close(fd); throw HarnessError("bind/listen: errno \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

private extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

// The admin plane's side of the harness: a gateway with an admin listener and a sticky
// workspace pool, a keep-alive client for the admin API (and for keyed public routes),
// a Prometheus text parser, audit-line extraction, and the WebSocket holder peer.

import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - JSON

/// Decoded JSON, read leniently: a missing key or a wrong type reads as nil, so a failed
/// expectation prints the document rather than a decoding error.
struct AJSON: CustomStringConvertible {
    let value: Any?

    init(_ value: Any?) { self.value = value }
    init(data: Data) { self.init(try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) }
    init(text: String) { self.init(data: Data(text.utf8)) }

    subscript(key: String) -> AJSON { AJSON((value as? [String: Any])?[key]) }
    subscript(index: Int) -> AJSON {
        guard let a = value as? [Any], a.indices.contains(index) else { return AJSON(nil) }
        return AJSON(a[index])
    }

    var string: String? { value as? String }
    /// Integers only (JSONSerialization gives NSNumber; booleans are refused).
    var int: Int? {
        guard let n = value as? NSNumber, !Self.isBoolean(n), n.doubleValue == n.doubleValue.rounded() else { return nil }
        return n.intValue
    }
    var double: Double? { (value as? NSNumber)?.doubleValue }
    var bool: Bool? {
        guard let n = value as? NSNumber, Self.isBoolean(n) else { return nil }
        return n.boolValue
    }

    /// JSON `true`/`false` decode as NSNumbers of C type `char`; integers never do.
    private static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }
    var array: [AJSON] { (value as? [Any])?.map(AJSON.init) ?? [] }
    var object: [String: AJSON] { ((value as? [String: Any]) ?? [:]).mapValues(AJSON.init) }
    var keys: Set<String> { Set(((value as? [String: Any]) ?? [:]).keys) }
    var isNull: Bool { value == nil || value is NSNull }

    var description: String {
        guard let value, !(value is NSNull) else { return "null" }
        if JSONSerialization.isValidJSONObject(value),
           let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
            return String(decoding: data.prefix(2000), as: UTF8.self)
        }
        return "\(value)"
    }
}

// MARK: - Configuration

/// A gateway with the admin listener on, a `workspace` pool (keyed routes /ws/ and /) and a
/// `runtime` pool, each with its own node token.
struct AdminGatewayConfig {
    var port: Int
    var adminPort: Int
    var database: String
    /// Nodes declared in the YAML.
    var nodes: [StickyNode] = []
    var token = "admin-token-0123456789abcdef"
    var nodeToken = "node-token-workspace-0123456789"
    var runtimeNodeToken = "node-token-runtime-0123456789"
    /// Extra entries of `pools.workspace`, e.g. "heartbeat_threshold: 2s".
    var workspacePool = ""
    var allow: [String]? = nil
    var workers = 2
    var access = "off"

    func yaml() -> String {
        var admin = "address: 127.0.0.1:\(adminPort), token: \"\(token)\""
        if let allow { admin += ", allow: [\(allow.map { "\"\($0)\"" }.joined(separator: ", "))]" }
        return StickyConfig(
            port: port, database: database, nodes: nodes,
            pools: [("workspace", "{policy: rendezvous, node_token: \"\(nodeToken)\"\(workspacePool.isEmpty ? "" : ", " + workspacePool)}"),
                    ("runtime", "{policy: rendezvous, node_token: \"\(runtimeNodeToken)\"}")],
            workers: workers, access: access, admin: "{\(admin)}").yaml()
    }
}

/// A running gateway with its admin listener.
struct AdminGateway {
    let child: Child
    let config: AdminGatewayConfig

    var port: Int { config.port }
    var adminPort: Int { config.adminPort }
    func client() -> AdminClient { AdminClient(port: config.adminPort, token: config.token) }
    func publicClient() -> HTTPClient { HTTPClient(port: config.port) }

    /// Every `level=audit` line the gateway wrote to stderr so far, as JSON.
    func auditRecords() -> [AJSON] {
        child.stderr.split(separator: "\n").compactMap { line in
            guard let r = line.range(of: " level=audit ") else { return nil }
            return AJSON(text: String(line[r.upperBound...]))
        }
    }
}

extension Scope {
    /// Writes the config and starts `switchyard serve`; returns once /readyz says ready.
    func startAdminGateway(_ config: AdminGatewayConfig, name: String = "gateway") throws -> AdminGateway {
        let child = try startGateway(yaml: config.yaml(), port: config.port, name: name).child
        try Ports.waitUntilOpen(config.adminPort, child: child)
        let gw = AdminGateway(child: child, config: config)
        let client = gw.client()
        let deadline = Date().addingTimeInterval(10)
        // 403: this test's allowlist keeps 127.0.0.1 out; the listener is up, that is enough.
        while ![200, 403].contains(try client.call("GET", "/readyz", auth: .none).status) {
            guard Date() < deadline else { throw HarnessError("/readyz never said ready; stderr:\n\(child.stderr.suffix(2000))") }
            usleep(20_000)
        }
        return gw
    }
}

// MARK: - HTTP clients

/// One answer, with the body also decoded as JSON.
struct Reply: CustomStringConvertible {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]
    /// The connection was closed after this answer (by `Connection: close` or EOF).
    let closed: Bool

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: AJSON { AJSON(data: Data(body)) }
    func header(_ name: String) -> String? {
        let values = headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }
    /// The refusal's field (`{"error", "field"}`).
    var field: String? { json["field"].string }
    var description: String { "\(status) \(text.prefix(400).debugDescription)" }
}

/// A keep-alive HTTP/1.1 client on raw sockets: reconnects when the server closed, and before
/// the admin listener's 100-requests-per-connection limit. Not thread-safe: one per thread.
class HTTPClient {
    let port: Int
    private var connection: RawConnection?
    private var used = 0
    /// The admin listener closes after 100 requests; stay under it.
    var perConnection = 100

    init(port: Int) { self.port = port }

    /// Sends one request (with `Content-Length` when there is a body) and reads the answer.
    func send(_ method: String, _ target: String, headers: [String] = [], body: [UInt8]? = nil,
              timeout: Double = 10) throws -> Reply {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for h in headers { head += h + "\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return try exchange(Array(head.utf8) + (body ?? []), timeout: timeout)
    }

    /// Sends raw bytes as one request and reads one answer; the connection is dropped
    /// afterwards when the server closed it.
    func exchange(_ bytes: [UInt8], timeout: Double = 10) throws -> Reply {
        if connection == nil || used >= perConnection {
            connection = try RawConnection(port: port)
            used = 0
        }
        let c = connection!
        used += 1
        c.send(bytes)
        let r: RawResponse
        do {
            r = try c.readResponse(timeout: timeout)
        } catch {
            connection = nil
            throw error
        }
        let close = r.header("Connection")?.lowercased().contains("close") == true
        if close || c.peerClosed { connection = nil }
        return Reply(status: r.status, headers: r.headers, body: r.body, closed: close || c.peerClosed)
    }

    /// Sends `targets` as GETs in one write (HTTP/1.1 pipelining) and reads every answer.
    func pipeline(_ targets: [String], headers: [String] = []) throws -> [Reply] {
        connection = try RawConnection(port: port)
        used = targets.count
        var bytes: [UInt8] = []
        for t in targets {
            var head = "GET \(t) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
            for h in headers { head += h + "\r\n" }
            bytes += Array((head + "\r\n").utf8)
        }
        let c = connection!
        c.send(bytes)
        var out: [Reply] = []
        for _ in targets {
            let r = try c.readResponse(timeout: 20)
            out.append(Reply(status: r.status, headers: r.headers, body: r.body, closed: false))
        }
        connection = nil
        return out
    }

    func close() { connection = nil }
}

/// The admin API with its token.
final class AdminClient: HTTPClient {
    let token: String

    enum Auth { case admin, none, token(String), node(String) }

    init(port: Int, token: String) {
        self.token = token
        super.init(port: port)
    }

    /// One call; `json` is sent as the body as is (so tests can send broken JSON).
    func call(_ method: String, _ target: String, _ json: String? = nil, auth: Auth = .admin,
              headers: [String] = []) throws -> Reply {
        var h = headers
        switch auth {
        case .admin: h.append("X-Admin-Token: \(token)")
        case .none: break
        case .token(let t): h.append("X-Admin-Token: \(t)")
        case .node(let t): h.append("X-Node-Token: \(t)")
        }
        if json != nil { h.append("Content-Type: application/json") }
        return try send(method, target, headers: h, body: json.map { Array($0.utf8) })
    }

    func get(_ target: String) throws -> Reply { try call("GET", target) }

    /// Every placement of the workspace pool as key → node (one page of up to 10,000).
    func placementMap(pool: String = "workspace", node: String? = nil) throws -> [String: String] {
        var out: [String: String] = [:]
        var offset = 0
        while true {
            let r = try get("/admin/placements?pool=\(pool)\(node.map { "&node=\($0)" } ?? "")&offset=\(offset)&limit=10000")
            guard r.status == 200 else { throw HarnessError("placements: \(r)") }
            let items = r.json["placements"].array
            for p in items { out[p["key"].string ?? "?"] = p["node"].string ?? "?" }
            offset += items.count
            if items.isEmpty || offset >= (r.json["total"].int ?? 0) { return out }
        }
    }

    /// A node as the API describes it.
    func node(_ name: String) throws -> AJSON {
        let r = try get("/admin/nodes/\(name)")
        guard r.status == 200 else { throw HarnessError("GET node \(name): \(r)") }
        return r.json
    }

    /// Polls `/admin/nodes/{name}` until `healthy` is `healthy`.
    func waitHealthy(_ name: String, _ healthy: Bool, timeout: Double = 8) throws -> AJSON {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let n = try node(name)
            if n["healthy"].bool == healthy { return n }
            guard Date() < deadline else { throw HarnessError("\(name) did not become healthy=\(healthy): \(n)") }
            usleep(100_000)
        }
    }
}

// MARK: - Placing many users

/// Places `keys` through the compat endpoint, 100 pipelined requests per connection;
/// returns key → node name.
func place(_ keys: [String], admin port: Int) throws -> [String: String] {
    let client = HTTPClient(port: port)
    var out: [String: String] = [:]
    var start = 0
    while start < keys.count {
        let batch = Array(keys[start..<min(start + 100, keys.count)])
        let replies = try client.pipeline(batch.map { "/api/fun-ai/workspace/internal/gateway/node?userId=\($0)" })
        for (key, r) in zip(batch, replies) {
            guard r.status == 200, let node = r.json["node"].string else { throw HarnessError("compat \(key): \(r)") }
            out[key] = node
        }
        start += batch.count
    }
    return out
}

// MARK: - Metrics

/// One sample of the Prometheus text format 0.0.4.
struct MetricSample {
    let name: String
    let labels: [String: String]
    let value: Double
}

enum PromText {
    /// Parses the exposition text strictly: `# HELP`/`# TYPE` comments, then
    /// `name{label="value",...} number` lines; anything else is an error.
    static func parse(_ text: String) throws -> [MetricSample] {
        var out: [MetricSample] = []
        var typed = Set<String>()
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw)
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw HarnessError("bad TYPE line: \(line)")
                }
                typed.insert(String(parts[2]))
                continue
            }
            if line.hasPrefix("#") { continue }
            var name = "", labels: [String: String] = [:]
            var rest = Substring(line)
            if let brace = rest.firstIndex(of: "{") {
                name = String(rest[..<brace])
                guard let end = rest.lastIndex(of: "}") else { throw HarnessError("unclosed labels: \(line)") }
                var body = rest[rest.index(after: brace)..<end]
                while !body.isEmpty {
                    guard let eq = body.firstIndex(of: "="), body[body.index(after: eq)] == "\"" else {
                        throw HarnessError("bad label in: \(line)")
                    }
                    let key = String(body[..<eq])
                    var i = body.index(eq, offsetBy: 2)
                    var value = ""
                    while i < body.endIndex && body[i] != "\"" {
                        if body[i] == "\\" { i = body.index(after: i) }
                        value.append(body[i])
                        i = body.index(after: i)
                    }
                    guard i < body.endIndex else { throw HarnessError("unterminated label value: \(line)") }
                    labels[key] = value
                    body = body[body.index(after: i)...]
                    if body.first == "," { body = body.dropFirst() }
                }
                rest = rest[rest.index(after: end)...]
            } else {
                guard let space = rest.firstIndex(of: " ") else { throw HarnessError("no value: \(line)") }
                name = String(rest[..<space])
                rest = rest[space...]
            }
            let valueText = rest.trimmingCharacters(in: .whitespaces)
            guard let value = valueText == "+Inf" ? Double.infinity : Double(valueText) else {
                throw HarnessError("bad value in: \(line)")
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else {
                throw HarnessError("bad metric name in: \(line)")
            }
            let family = ["_bucket", "_sum", "_count"].reduce(name) { n, s in
                n.hasSuffix(s) && typed.contains(String(n.dropLast(s.count))) ? String(n.dropLast(s.count)) : n
            }
            guard typed.contains(family) else { throw HarnessError("sample before its TYPE: \(line)") }
            out.append(MetricSample(name: name, labels: labels, value: value))
        }
        return out
    }
}

extension Array where Element == MetricSample {
    func sum(_ name: String, _ match: [String: String] = [:]) -> Double {
        filter { s in s.name == name && match.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }
}

// MARK: - WebSocket holder

/// A running wsholder.py: WebSocket connections held open through the gateway.
struct WSHolder {
    let child: Child
    let stopFile: String
    /// user → port of the wspeer upstream that served the connection.
    let ports: [String: Int]

    /// Asks the holder to finish and returns its report.
    func finish(timeout: Double = 30) throws -> AJSON {
        _ = FileManager.default.createFile(atPath: stopFile, contents: Data())
        guard child.wait(timeout: timeout) != nil else {
            child.stop()
            throw HarnessError("wsholder.py did not finish; stderr: \(child.stderr.suffix(2000))")
        }
        let report = AJSON(text: child.stdout)
        guard report["users"].value != nil else {
            throw HarnessError("wsholder.py gave no report: \(child.stdout.prefix(2000)) \(child.stderr.suffix(2000))")
        }
        return report
    }
}

extension Scope {
    /// Starts wspeer.py (read-only use of another suite's peer) with `count` WebSocket ports;
    /// plain GETs there answer `{"port", "path"}`.
    func startWSNodes(_ count: Int) throws -> (child: Child, ports: [Int]) {
        let peer = try startWSPeer(ws: count, raw: 0, name: "wsnodes")
        return (peer.child, peer.wsPorts)
    }

    /// Opens one WebSocket per user through the gateway's /ws/<user>/ route and holds them.
    func holdWebSockets(gatewayPort: Int, users: [String], expectClose: [String]) throws -> WSHolder {
        let tag = UUID().uuidString.prefix(6)
        let stop = path("wsholder-\(tag).stop")
        let holder = try startPeer("wsholder.py", python: try venvPython(),
                                   ["--port", "\(gatewayPort)", "--users", users.joined(separator: ","),
                                    "--expect-close", expectClose.joined(separator: ","), "--stop-file", stop],
                                   name: "wsholder-\(tag)") { AJSON(data: $0).object.compactMapValues(\.int) }
        return WSHolder(child: holder.child, stopFile: stop, ports: holder.ready)
    }
}

// MARK: - A standard world

extension Child {
    /// SIGKILL and reap. For the Python peers: they inherit the test runner's signal mask with
    /// SIGTERM blocked, so `stop()` would wait out its whole grace period for nothing.
    func kill9() {
        signal(SIGKILL)
        wait(timeout: 5)
    }
}

/// upstream.py with three ports and a gateway whose registry holds ws-1 and ws-2 (pool
/// `workspace`, on upstream ports 0 and 1) and rt-1 (pool `runtime`, port 2), all static.
struct AdminWorld {
    let gw: AdminGateway
    let upstream: Upstreams
    let admin: AdminClient
    let web: HTTPClient

    /// The upstream port a node name stands for.
    func port(of node: String) -> Int? {
        ["ws-1": upstream.ports[0], "ws-2": upstream.ports[1], "rt-1": upstream.ports[2]][node]
    }

    func url(_ i: Int) -> String { "http://\(upstream.addresses[i])" }

    /// Ends the upstream peer at once (see `Child.kill9`); `Scope.close` does the rest.
    func stopPeers() { upstream.child.kill9() }

    /// A public request for `user` on the /ws/ route; returns the node the gateway chose.
    @discardableResult
    func visit(_ user: String) throws -> String {
        let r = try web.send("GET", "/ws/\(user)/index.html")
        guard let node = r.header("X-WS-Upstream"), r.header("X-Upstream-Port") != nil else {
            throw HarnessError("/ws/\(user)/ was not forwarded: \(r)")
        }
        return node
    }
}

extension Scope {
    func startAdminWorld(allow: [String]? = nil, workspacePool: String = "") throws -> AdminWorld {
        let up = try startUpstreams(3)
        var config = AdminGatewayConfig(port: try Ports.free(), adminPort: try Ports.free(),
                                        database: path("var/registry.db"))
        config.nodes = [StickyNode("ws-1", up.addresses[0]), StickyNode("ws-2", up.addresses[1]),
                        StickyNode("rt-1", up.addresses[2], pool: "runtime")]
        config.allow = allow
        config.workspacePool = workspacePool
        let gw = try startAdminGateway(config)
        return AdminWorld(gw: gw, upstream: up, admin: gw.client(), web: gw.publicClient())
    }
}

// MARK: - Threads

/// A flag one thread sets and others poll.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A counter threads share (e.g. a start line: each adds one, all wait for the total).
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .acquiringAndReleasing) }
    var value: Int { count.load(ordering: .acquiring) }
}

/// Started threads, joined by `wait()`.
final class ThreadGroup: Sendable {
    private let running = Atomic<Int>(0)

    func start(_ body: @escaping @Sendable () -> Void) {
        running.add(1, ordering: .relaxed)
        let thread = Thread { [self] in
            body()
            running.subtract(1, ordering: .releasing)
        }
        thread.start()
    }

    func wait(timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while running.load(ordering: .acquiring) > 0 {
            guard Date() < deadline else { throw HarnessError("threads still running after \(timeout)s") }
            usleep(5_000)
        }
    }
}

/// A value shared between threads behind a lock (a class, so escaping closures can hold it).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }

    var value: Value { withLock { $0 } }
}

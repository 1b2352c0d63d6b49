// Moves through the admin API end to end: a refused move changes nothing; drains with and
// without a target, limits and full nodes; many writers at once leave a consistent registry;
// a drain of 10,000 placements under traffic (moved users' WebSockets closed with 1012, every
// other connection untouched); and a single reassign closing exactly that user's tunnel.

import Foundation
import Synchronization
import Testing

@Suite("Admin API: drain, reassign and concurrent writers", .serialized)
struct AdminDrainTests {
    @Test("a refused drain moves nothing; drains with a target, a limit, by policy, and onto a node with little room")
    func drains() throws {
        let scope = try Scope("admin-drain")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        #expect(try a.call("PUT", "/admin/nodes/ws-3",
                           "{\"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[2])\", \"preview_base_url\": \"\(w.url(2))\", \"static\": true, \"enabled\": false}").status == 201)
        let keys = (0..<200).map { "d\($0)" }
        _ = try place(keys, admin: w.gw.adminPort)
        let snapshot = try a.placementMap()
        #expect(snapshot.count == 200)
        let onOne = snapshot.filter { $0.value == "ws-1" }.count
        #expect(onOne > 0 && onOne < 200, "rendezvous put \(onOne) of 200 on ws-1")

        let refusals: [(String, String, Int, String?)] = [
            ("ws-1", #"{"target": "ghost"}"#, 404, nil),
            ("ghost", #"{"target": "ws-2"}"#, 404, nil),
            ("ws-1", #"{"target": "rt-1"}"#, 409, nil),
            ("ws-1", #"{"target": "ws-1"}"#, 409, nil),
            ("ws-1", #"{"target": "ws-3"}"#, 409, nil),
            ("ws-1", #"{"target": 5}"#, 400, "target"),
            ("ws-1", #"{"target": "a b"}"#, 400, "target"),
            ("ws-1", #"{"tagret": "ws-2"}"#, 400, "tagret"),
            ("ws-1", #"{"limit": 0}"#, 400, "limit"),
            ("ws-1", #"{"limit": "10"}"#, 400, "limit"),
            ("ws-1", #"{"list_limit": -1}"#, 400, "list_limit"),
            ("ws-1", #"{"target": "ws-2""#, 400, nil),
            ("ws-1", "[]", 400, nil),
        ]
        for (node, body, status, field) in refusals {
            let r = try a.call("POST", "/admin/nodes/\(node)/drain", body)
            #expect(r.status == status, "drain \(node) \(body): \(r)")
            if let field { #expect(r.field == field, "drain \(node) \(body): \(r)") }
            #expect(try a.placementMap() == snapshot, "a refused drain (\(node) \(body)) moved placements")
        }
        #expect(try a.node("ws-1")["placements"].int == onOne)

        // A limited drain to a target: exactly `limit` move, the list is cut at list_limit.
        let limited = try a.call("POST", "/admin/nodes/ws-1/drain", #"{"target": "ws-2", "limit": 10, "list_limit": 3}"#)
        #expect(limited.status == 200, "\(limited)")
        #expect(limited.json["moved"].int == 10 && limited.json["unmoved"].int == 0, "\(limited)")
        #expect(limited.json["by_target"]["ws-2"].int == 10 && limited.json["truncated"].bool == true, "\(limited)")
        let listed = limited.json["placements"].array
        #expect(listed.count == 3 && listed.allSatisfy { $0["from"].string == "ws-1" && $0["to"].string == "ws-2" && $0["pool"].string == "workspace" },
                "\(limited)")
        #expect(limited.json["took_ms"].double != nil, "\(limited)")
        let afterLimited = try a.placementMap()
        let movedKeys = Set(snapshot.keys.filter { snapshot[$0] != afterLimited[$0] })
        #expect(movedKeys.count == 10 && movedKeys.allSatisfy { snapshot[$0] == "ws-1" && afterLimited[$0] == "ws-2" })
        #expect(listed.allSatisfy { movedKeys.contains($0["key"].string ?? "") })
        #expect(try a.node("ws-1")["placements"].int == onOne - 10)

        // A drain by policy (no target) goes only to enabled nodes other than the source: ws-2 (ws-3 is disabled).
        let byPolicy = try a.call("POST", "/admin/nodes/ws-1/drain", "")
        #expect(byPolicy.status == 200, "\(byPolicy)")
        #expect(byPolicy.json["moved"].int == onOne - 10 && byPolicy.json["unmoved"].int == 0, "\(byPolicy)")
        #expect(byPolicy.json["by_target"].keys == ["ws-2"] && byPolicy.json["truncated"].bool == false, "\(byPolicy)")
        #expect(try a.node("ws-1")["placements"].int == 0 && (try a.node("ws-2")["placements"].int) == 200)
        for key in keys.prefix(20) { #expect(try w.visit(key) == "ws-2", "\(key) is not served by its new node") }

        // Room for only 5: 5 move, the rest are counted as unmoved and stay.
        #expect(try a.call("PUT", "/admin/nodes/ws-1", #"{"capacity": 5}"#).status == 200)
        let tight = try a.call("POST", "/admin/nodes/ws-2/drain", "{}")
        #expect(tight.status == 200, "\(tight)")
        #expect(tight.json["moved"].int == 5 && tight.json["unmoved"].int == 195, "\(tight)")
        #expect(try a.node("ws-1")["placements"].int == 5 && (try a.node("ws-2")["placements"].int) == 195)
        let full = try a.call("POST", "/admin/nodes/ws-2/drain", #"{"target": "ws-1"}"#)
        #expect(full.status == 200 && full.json["moved"].int == 0 && full.json["unmoved"].int == 195, "draining onto a full node: \(full)")
        #expect(try a.node("ws-2")["placements"].int == 195)
        #expect(try a.call("POST", "/admin/nodes/rt-1/drain", "").json["moved"].int == 0)
    }

    @Test("admin changes survive a restart; a drain's moves survive kill -9 right after its answer")
    func persistence() throws {
        let scope = try Scope("admin-persist")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        #expect(try a.call("PUT", "/admin/nodes/ws-3",
                           "{\"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[2])\", \"preview_base_url\": \"\(w.url(2))\", \"static\": true, \"weight\": 77, \"labels\": {\"zone\": \"b\"}}").status == 201)
        _ = try place((0..<60).map { "s\($0)" }, admin: w.gw.adminPort)
        let user = try #require(try a.placementMap().first { $0.value != "ws-3" }?.key)
        #expect(try a.call("POST", "/admin/placements/workspace/\(user)/reassign", #"{"node": "ws-3"}"#).status == 200)
        let drain = try a.call("POST", "/admin/nodes/ws-2/drain", #"{"target": "ws-1"}"#)
        #expect(drain.status == 200, "\(drain)")
        let before = try a.placementMap()
        w.gw.child.signal(SIGKILL)
        _ = w.gw.child.wait(timeout: 5)

        let g2 = try scope.startAdminGateway(w.gw.config, name: "g2")
        let b = g2.client()
        #expect(try b.placementMap() == before, "placements differ after kill -9")
        #expect(try b.node("ws-2")["placements"].int == 0)
        let ws3 = try b.node("ws-3")
        #expect(ws3["weight"].int == 77 && ws3["labels"]["zone"].string == "b" && ws3["static"].bool == true, "\(ws3)")

        // Queued changes (node fields, enabled, a port report) are written by a clean stop.
        #expect(try b.call("PUT", "/admin/nodes/ws-3", #"{"weight": 88}"#).status == 200)
        #expect(try b.call("POST", "/admin/nodes/ws-3/disable").status == 200)
        #expect(try b.call("PUT", "/internal/placements/workspace/\(user)", #"{"host_port": 31001}"#, auth: .node(g2.config.nodeToken)).status == 200)
        g2.child.stop(grace: 10)
        let g3 = try scope.startAdminGateway(w.gw.config, name: "g3")
        let c = g3.client()
        let again = try c.node("ws-3")
        #expect(again["weight"].int == 88 && again["enabled"].bool == false, "\(again)")
        #expect(try c.get("/admin/placements/workspace/\(user)").json["host_port"].int == 31001)
        #expect(try c.placementMap() == before)
    }

    @Test("concurrent PUT, enable, disable and reassign: afterwards every GET agrees with the last writes and counts add up")
    func concurrentWriters() throws {
        let scope = try Scope("admin-concurrent")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let threads = 4, rounds = 40, keysPerThread = 8
        for t in 0..<threads {
            let r = try a.call("PUT", "/admin/nodes/cw-\(t)",
                               "{\"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[t % 2])\", \"preview_base_url\": \"\(w.url(t % 2))\", \"static\": true}")
            #expect(r.status == 201, "\(r)")
        }
        let keys = (0..<threads).flatMap { t in (0..<keysPerThread).map { "k\(t)-\($0)" } }
        let initial = try place(keys, admin: w.gw.adminPort)
        let auditBefore = w.gw.auditRecords().count
        let targets = ["ws-1", "ws-2"] + (0..<threads).map { "cw-\($0)" }

        struct Outcome: Sendable {
            var weight = 100
            var enabled = true
            var placement: [String: String] = [:]
            var successes = 0
            var failures: [String] = []
        }
        let outcomes = Locked<[Int: Outcome]>([:])
        let adminPort = w.gw.adminPort, token = w.gw.config.token, webPort = w.gw.port
        let group = ThreadGroup()
        let stop = StopFlag()
        for t in 0..<threads {
            let mine = (0..<keysPerThread).map { "k\(t)-\($0)" }
            let start = Dictionary(uniqueKeysWithValues: mine.map { ($0, initial[$0] ?? "?") })
            group.start {
                let c = AdminClient(port: adminPort, token: token)
                var o = Outcome(placement: start)
                var rng = SystemRandomNumberGenerator()
                for i in 0..<rounds {
                    do {
                        switch i % 4 {
                        case 0:
                            let weight = Int.random(in: 1...10_000, using: &rng)
                            let r = try c.call("PUT", "/admin/nodes/cw-\(t)", "{\"weight\": \(weight)}")
                            if r.status == 200 { o.weight = weight; o.successes += 1 } else { o.failures.append("PUT: \(r)") }
                        case 1, 2:
                            let verb = i % 4 == 1 ? "disable" : "enable"
                            let r = try c.call("POST", "/admin/nodes/cw-\(t)/\(verb)")
                            if r.status == 200, r.json["enabled"].bool == (verb == "enable") {
                                o.enabled = verb == "enable"; o.successes += 1
                            } else { o.failures.append("\(verb): \(r)") }
                        default:
                            let key = mine[i % mine.count]
                            let target = targets[Int.random(in: 0..<targets.count, using: &rng)]
                            let r = try c.call("POST", "/admin/placements/workspace/\(key)/reassign", "{\"node\": \"\(target)\"}")
                            if r.status == 200, r.json["to"].string == target, r.json["from"].string == o.placement[key] {
                                o.placement[key] = target; o.successes += 1
                            } else if r.status != 409 {
                                o.failures.append("reassign \(key) from \(o.placement[key] ?? "?") to \(target): \(r)")
                            }
                        }
                    } catch {
                        o.failures.append("\(error)")
                    }
                }
                outcomes.withLock { $0[t] = o }
            }
        }
        // Readers and public traffic meanwhile.
        let readerErrors = Locked<[String]>([])
        group.start {
            let c = AdminClient(port: adminPort, token: token)
            let web = HTTPClient(port: webPort)
            var i = 0
            while !stop.isSet {
                do {
                    let n = try c.get("/admin/nodes")
                    if n.status != 200 { readerErrors.withLock { $0.append("nodes: \(n)") } }
                    let r = try web.send("GET", "/ws/reader\(i % 50)/x")
                    if r.header("X-Upstream-Port") == nil { readerErrors.withLock { $0.append("traffic: \(r)") } }
                } catch {
                    readerErrors.withLock { $0.append("\(error)") }
                }
                i += 1
            }
        }
        // Let the writers finish, then the reader.
        let deadline = Date().addingTimeInterval(60)
        while outcomes.withLock({ $0.count }) < threads && Date() < deadline { usleep(10_000) }
        stop.set()
        try group.wait()

        let results = outcomes.withLock { $0 }
        #expect(results.count == threads)
        #expect(readerErrors.withLock { $0 }.isEmpty, "\(readerErrors.withLock { $0 }.prefix(5))")
        var successes = 0
        for (t, o) in results.sorted(by: { $0.key < $1.key }) {
            #expect(o.failures.isEmpty, "thread \(t): \(o.failures.prefix(5))")
            successes += o.successes
            let node = try a.node("cw-\(t)")
            #expect(node["weight"].int == o.weight && node["enabled"].bool == o.enabled, "cw-\(t) \(node) vs last writes \(o.weight) \(o.enabled)")
            for (key, expected) in o.placement {
                #expect(try a.get("/admin/placements/workspace/\(key)").json["node"].string == expected, "\(key)")
                #expect(try w.web.send("GET", "/ws/\(key)/x").header("X-WS-Upstream") == expected, "\(key) is served elsewhere")
            }
        }
        // Counts add up three ways: per node, in the listing, and in /metrics.
        let all = try a.get("/admin/placements?limit=10000")
        let total = all.json["total"].int ?? -1
        let nodes = try a.get("/admin/nodes?pool=workspace").json["nodes"].array
        let perNode = nodes.reduce(0) { $0 + ($1["placements"].int ?? 0) }
        #expect(perNode == total, "node placement counts sum to \(perNode), listing says \(total)")
        for n in nodes {
            let name = n["name"].string ?? "?"
            #expect(try a.get("/admin/placements?node=\(name)&limit=1").json["total"].int == n["placements"].int, "\(name)")
        }
        let metrics = try PromText.parse(try a.call("GET", "/metrics", auth: .none).text)
        #expect(Int(metrics.sum("switchyard_placements")) == total)
        #expect(w.gw.auditRecords().count - auditBefore == successes, "one audit line per successful write")
        #expect(try a.call("GET", "/healthz", auth: .none).status == 200)
        #expect(w.gw.child.isRunning)
    }

    @Test("an operator's enable/disable is never undone by heartbeats or PUTs of the same node running meanwhile")
    func enableRaces() throws {
        let scope = try Scope("admin-enable-race")
        defer { scope.close() }
        let w = try scope.startAdminWorld()
        defer { w.stopPeers() }
        let a = w.admin
        let beat = "{\"name\": \"hb-r\", \"pool\": \"workspace\", \"address\": \"\(w.upstream.addresses[0])\", \"preview_base_url\": \"\(w.url(0))\"}"
        let token = w.gw.config.token, nodeToken = w.gw.config.nodeToken, port = w.gw.adminPort
        #expect(try a.call("POST", "/internal/nodes/heartbeat", beat, auth: .node(nodeToken)).status == 200)
        for writer in ["heartbeat", "PUT"] {
            // Two threads keep writing the node (never its enabled flag) while the operator flips it.
            let stop = StopFlag()
            let group = ThreadGroup()
            let errors = Locked<[String]>([])
            for t in 0..<2 {
                group.start {
                    let c = AdminClient(port: port, token: token)
                    var i = 0
                    while !stop.isSet {
                        let r = writer == "PUT"
                            ? try? c.call("PUT", "/admin/nodes/hb-r", "{\"weight\": \(100 + (i * 2 + t) % 50)}")
                            : try? c.call("POST", "/internal/nodes/heartbeat", beat, auth: .node(nodeToken))
                        if r?.status != 200 { errors.withLock { $0.append("\(writer): \(r.map { "\($0)" } ?? "failed")") } }
                        i += 1
                    }
                }
            }
            var lost: [String] = []
            for round in 0..<40 {
                for verb in ["disable", "enable"] {
                    let r = try a.call("POST", "/admin/nodes/hb-r/\(verb)")
                    #expect(r.status == 200 && r.json["enabled"].bool == (verb == "enable"), "\(r)")
                    usleep(15_000)  // every write that read the node before the flip has landed by now
                    let enabled = try a.node("hb-r")["enabled"].bool
                    if enabled != (verb == "enable") { lost.append("round \(round): \(verb) undone") }
                }
            }
            stop.set()
            try group.wait()
            #expect(errors.value.isEmpty, "\(errors.value.prefix(3))")
            #expect(lost.isEmpty, "\(writer)s running meanwhile undid the operator's last enable/disable \(lost.count) times of 80: \(lost.prefix(5))")
        }
    }

    @Test("drain of 10,000 placements under traffic: unmoved users never fail, moved users land on the new node, only moved WebSockets get 1012")
    func drainUnderTraffic() throws {
        let scope = try Scope("admin-drain-traffic")
        defer { scope.close() }
        let (nodes, ports) = try scope.startWSNodes(2)
        defer { nodes.kill9() }
        let (portA, portB) = (ports[0], ports[1])
        var config = AdminGatewayConfig(port: try Ports.free(), adminPort: try Ports.free(), database: scope.path("var/registry.db"))
        config.nodes = [StickyNode("ws-a", "127.0.0.1:\(portA)"), StickyNode("ws-b", "127.0.0.1:\(portB)", "enabled: false")]
        let gw = try scope.startAdminGateway(config)
        let a = gw.client()

        // 10,000 users on A (B is disabled while they are placed).
        let started = Date()
        let keys = (0..<10_000).map { String(format: "u%05d", $0) }
        let placed = try place(keys, admin: gw.adminPort)
        print("drainUnderTraffic: placed \(placed.count) users in \(Int(Date().timeIntervalSince(started) * 1000)) ms")
        #expect(placed.values.allSatisfy { $0 == "ws-a" })
        #expect(try a.node("ws-a")["placements"].int == 10_000)
        #expect(try a.call("POST", "/admin/nodes/ws-b/enable").status == 200)
        #expect(try a.call("POST", "/admin/nodes/ws-a/disable").status == 200)

        // Users that stay: placed on B now (A is disabled). Users that move: the first 20 of A's.
        let stay = (0..<20).map { "b\($0)" }
        let move = Array(keys.prefix(20))
        let web = gw.publicClient()
        func servedBy(_ user: String, _ client: HTTPClient) throws -> (Int, Int?) {
            let r = try client.send("GET", "/ws/\(user)/app.js")
            return (r.status, r.json["port"].int)
        }
        for user in stay {
            let (status, port) = try servedBy(user, web)
            #expect(status == 200 && port == portB, "\(user) not placed on B: \(status) \(port ?? -1)")
        }
        for user in move {
            let (status, port) = try servedBy(user, web)
            #expect(status == 200 && port == portA, "\(user) not on A: \(status) \(port ?? -1)")
        }

        let holder = try scope.holdWebSockets(gatewayPort: gw.port, users: [move[5], stay[5]], expectClose: [move[5]])
        #expect(holder.ports[move[5]] == portA && holder.ports[stay[5]] == portB, "\(holder.ports)")
        #expect(try a.node("ws-a")["open_tunnels"].int == 1 && (try a.node("ws-b")["open_tunnels"].int) == 1)

        struct Hit: Sendable { let user: String; let start: Date; let end: Date; let status: Int; let port: Int?; let error: String? }
        let hits = Locked<[Hit]>([])
        let stop = StopFlag()
        let group = ThreadGroup()
        let gatewayPort = gw.port
        for t in 0..<2 {
            let users = zip(move, stay).flatMap { [$0, $1] }.enumerated().filter { $0.offset % 2 == t }.map(\.element)
            group.start {
                let client = HTTPClient(port: gatewayPort)
                var i = 0
                while !stop.isSet {
                    let user = users[i % users.count]
                    let start = Date()
                    do {
                        let r = try client.send("GET", "/ws/\(user)/app.js?i=\(i)")
                        hits.withLock { $0.append(Hit(user: user, start: start, end: Date(), status: r.status, port: r.json["port"].int, error: nil)) }
                    } catch {
                        client.close()
                        hits.withLock { $0.append(Hit(user: user, start: start, end: Date(), status: 0, port: nil, error: "\(error)")) }
                    }
                    i += 1
                }
            }
        }
        usleep(500_000)
        let drainStart = Date()
        let drain = try a.call("POST", "/admin/nodes/ws-a/drain", #"{"target": "ws-b"}"#)
        let drainEnd = Date()
        usleep(500_000)
        stop.set()
        try group.wait()

        #expect(drain.status == 200, "\(drain)")
        print("drainUnderTraffic: drain of \(drain.json["moved"].int ?? -1) placements took_ms=\(drain.json["took_ms"].double ?? -1) "
              + "(round trip \(Int(drainEnd.timeIntervalSince(drainStart) * 1000)) ms)")
        #expect(drain.json["moved"].int == 10_000 && drain.json["unmoved"].int == 0, "\(drain.text.prefix(300))")
        #expect(drain.json["by_target"]["ws-b"].int == 10_000)
        #expect(drain.json["placements"].array.count == 1000 && drain.json["truncated"].bool == true)

        let all = hits.withLock { $0 }
        let moving = Set(move)
        let failed = all.filter { $0.status != 200 || $0.port == nil }
        #expect(failed.isEmpty, "\(failed.count) of \(all.count) requests failed: \(failed.prefix(5))")
        let wrongStay = all.filter { !moving.contains($0.user) && $0.port != portB }
        #expect(wrongStay.isEmpty, "unmoved users served elsewhere: \(wrongStay.prefix(5))")
        let late = all.filter { moving.contains($0.user) && $0.start > drainEnd }
        #expect(!late.isEmpty, "no request of a moved user after the drain")
        #expect(late.allSatisfy { $0.port == portB }, "moved users still on A after the drain: \(late.filter { $0.port != portB }.prefix(5))")
        let early = all.filter { moving.contains($0.user) && $0.end < drainStart }
        #expect(!early.isEmpty && early.allSatisfy { $0.port == portA })
        print("drainUnderTraffic: \(all.count) requests during the test (\(all.filter { $0.end >= drainStart && $0.start <= drainEnd }.count) overlapping the drain)")

        let report = try holder.finish()
        #expect(report["error"].isNull, "\(report)")
        let moved = report["users"][move[5]], kept = report["users"][stay[5]]
        #expect(moved["closed"].bool == true && moved["code"].int == 1012, "moved user's WebSocket: \(moved)")
        #expect(moved["reconnect_port"].int == portB, "the moved user reconnected to \(moved["reconnect_port"]), not B")
        #expect(kept["closed"].bool == false && kept["echo"].bool == true, "unmoved user's WebSocket: \(kept)")

        #expect(try a.node("ws-a")["placements"].int == 0)
        #expect(try a.node("ws-b")["placements"].int == 10_000 + stay.count)
        #expect(try a.placementMap(node: "ws-a").isEmpty)
        #expect(try a.call("GET", "/healthz", auth: .none).status == 200)
    }

    @Test("a single reassign closes that user's WebSocket with 1012 and no other")
    func reassignClosesOnlyThatTunnel() throws {
        let scope = try Scope("admin-reassign-ws")
        defer { scope.close() }
        let (nodes, ports) = try scope.startWSNodes(2)
        defer { nodes.kill9() }
        var config = AdminGatewayConfig(port: try Ports.free(), adminPort: try Ports.free(), database: scope.path("var/registry.db"))
        config.nodes = [StickyNode("ws-a", "127.0.0.1:\(ports[0])"), StickyNode("ws-b", "127.0.0.1:\(ports[1])")]
        let gw = try scope.startAdminGateway(config)
        let a = gw.client()
        let placed = try place((0..<40).map { "r\($0)" }, admin: gw.adminPort)
        let onA = placed.filter { $0.value == "ws-a" }.keys.sorted()
        try #require(onA.count >= 2, "rendezvous put \(onA.count) of 40 users on ws-a")
        let (mover, neighbour) = (onA[0], onA[1])

        let holder = try scope.holdWebSockets(gatewayPort: gw.port, users: [mover, neighbour], expectClose: [mover])
        #expect(holder.ports[mover] == ports[0] && holder.ports[neighbour] == ports[0], "\(holder.ports)")
        #expect(try a.node("ws-a")["open_tunnels"].int == 2)

        let r = try a.call("POST", "/admin/placements/workspace/\(mover)/reassign", #"{"node": "ws-b"}"#)
        #expect(r.status == 200 && r.json["from"].string == "ws-a" && r.json["to"].string == "ws-b", "\(r)")
        // The gateway's side: ws-a's open tunnels go from 2 to 1.
        let deadline = Date().addingTimeInterval(5)
        while try a.node("ws-a")["open_tunnels"].int != 1 && Date() < deadline { usleep(50_000) }
        #expect(try a.node("ws-a")["open_tunnels"].int == 1)

        let report = try holder.finish()
        #expect(report["error"].isNull, "\(report)")
        let m = report["users"][mover], n = report["users"][neighbour]
        #expect(m["closed"].bool == true && m["code"].int == 1012, "the reassigned user's WebSocket: \(m)")
        #expect(m["reconnect_port"].int == ports[1], "reconnected to \(m["reconnect_port"]), not ws-b")
        #expect(n["closed"].bool == false && n["echo"].bool == true, "the neighbour's WebSocket: \(n)")

        let web = gw.publicClient()
        #expect(try web.send("GET", "/ws/\(mover)/x").json["port"].int == ports[1])
        #expect(try web.send("GET", "/ws/\(neighbour)/x").json["port"].int == ports[0])
    }
}

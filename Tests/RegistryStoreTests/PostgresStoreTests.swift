import Foundation
import Synchronization
import Testing
@testable import RegistryStore
import PostgresTestServer
@testable import RouteResolver

/// The PostgreSQL store against a real server started by each test (`PostgresServer`): what is
/// written is read back by a second instance, refusals are isolated, migrations do not race, and
/// instances follow each other through LISTEN/NOTIFY.
@Suite("PostgresStore: shared registry on a real PostgreSQL")
struct PostgresStoreTests {
    @Test("Nodes (labels included) and placements written by one instance load in another, field for field")
    func roundTrip() throws {
        let server = try PostgresServer()
        let a = try PostgresStore(url: server.url())
        #expect(try a.schemaVersion() == PostgresStore.latestSchemaVersion)
        let nodes = [storeNode("n1", labels: ["zone": "eu \"1\"", "gpu": "yes"]), storeNode("n2")]
        try a.applyNow(nodes.map { .upsertNode($0) })
        let placements = (0..<500).map { storePlacement($0, nodes: ["n1", "n2"]) }
        for p in placements { a.enqueue(.upsertPlacement(p)) }
        a.enqueue(.heartbeat(name: "n2", at: 1_800_000_000_000))
        a.enqueue(.heartbeat(name: "n2", at: 1_700_000_000_000))  // older: MAX keeps the newer
        // Insert-if-absent keeps the existing row; a port for a placement on another node is not set.
        a.enqueue(.insertPlacement(PlacementRecord(pool: "workspace", key: "u1", node: "n2", hostPort: 1)))
        a.enqueue(.setHostPort(PlacementRecord(pool: "workspace", key: "u2", node: "n2", hostPort: 7)))
        a.enqueue(.deletePlacement(pool: "workspace", key: "u3"))
        a.flush()
        a.close()

        let b = try PostgresStore(url: server.url())
        defer { b.close() }
        let loaded = try b.loadAll()
        var expectedN2 = nodes[1]
        expectedN2.lastHeartbeat = 1_800_000_000_000
        #expect(loaded.nodes == [nodes[0], expectedN2])
        var expected = byKey(placements)
        expected["workspace/u3"] = nil
        #expect(byKey(loaded.placements) == expected)
    }

    @Test("A refused change (a placement on an unknown node, deleting a node that holds users) is counted; the rest of its batch commits")
    func refusalsAreIsolated() throws {
        let server = try PostgresServer()
        let store = try PostgresStore(url: server.url())
        defer { store.close() }
        try store.applyNow([.upsertNode(storeNode("n1"))])
        store.enqueue(.upsertPlacement(storePlacement(1, nodes: ["n1"])))
        store.enqueue(.upsertPlacement(storePlacement(2, nodes: ["ghost"])))
        store.enqueue(.upsertPlacement(storePlacement(3, nodes: ["n1"])))
        store.enqueue(.deleteNode(name: "n1"))
        store.flush()
        #expect(Set(try store.loadAll().placements.map(\.key)) == ["u1", "u3"])
        #expect(store.statistics.rejectedChanges == 2)
        #expect(try store.loadAll().nodes.map(\.name) == ["n1"])
        // applyNow is all or nothing.
        #expect(throws: StoreError.self) {
            try store.applyNow([.upsertNode(storeNode("n2")), .upsertPlacement(storePlacement(9, nodes: ["ghost"]))])
        }
        #expect(try store.loadAll().nodes.map(\.name) == ["n1"])
    }

    @Test("Instances starting together on an empty database migrate it once")
    func concurrentMigrations() throws {
        let server = try PostgresServer()
        let url = server.url()
        let opened = Mutex<[PostgresStore]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do { let s = try PostgresStore(url: url); opened.withLock { $0.append(s) } } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let stores = opened.withLock { $0 }
        #expect(stores.count == 4)
        for s in stores {
            #expect(try s.schemaVersion() == PostgresStore.latestSchemaVersion)
            s.close()
        }
        let db = try PGConnection(url: url, password: nil)
        #expect(try db.query("SELECT count(*) FROM switchyard.schema_version", operation: "count").int64(0, 0) == Int64(PostgresStore.latestSchemaVersion))
    }

    @Test("Another instance's commits arrive through LISTEN/NOTIFY as the rows are now; own upserts do not, own conditional writes do")
    func followsOtherInstance() throws {
        let server = try PostgresServer()
        let a = try PostgresStore(url: server.url())
        let b = try PostgresStore(url: server.url())
        defer { a.close(); b.close() }
        _ = try b.loadAll()
        let inbox = FeedInbox()
        try b.follow { inbox.add($0) }
        try b.applyNow([.upsertNode(storeNode("own"))])
        try a.applyNow([.upsertNode(storeNode("n1")), .upsertNode(storeNode("n2"))])
        a.enqueue(.upsertPlacement(storePlacement(1, nodes: ["n1"])))
        a.enqueue(.upsertPlacement(PlacementRecord(pool: "workspace", key: "u1", node: "n2", hostPort: 20_002)))
        a.flush()
        #expect(eventually { inbox.changes.contains { if case .upsertPlacement(let p) = $0 { p.node == "n2" } else { false } } })
        let changes = inbox.changes
        #expect(!changes.contains(.upsertNode(storeNode("own"))))
        #expect(changes.prefix(2) == [.upsertNode(storeNode("n1")), .upsertNode(storeNode("n2"))])
        b.enqueue(.heartbeat(name: "n1", at: 1_700_000_000_500))
        b.flush()
        #expect(eventually { inbox.changes.contains { if case .upsertNode(let n) = $0 { n.lastHeartbeat == 1_700_000_000_500 } else { false } } })
        try a.applyNow([.deletePlacement(pool: "workspace", key: "u1"), .deleteNode(name: "n2")])
        #expect(eventually { inbox.changes.contains(.deleteNode(name: "n2")) })
        #expect(inbox.changes.suffix(2) == [.deletePlacement(pool: "workspace", key: "u1"), .deleteNode(name: "n2")])
    }

    /// Two stores on `server`'s database, the first having written static workspace nodes.
    func twoStores(_ server: PostgresServer, nodes: [String], now: Int64) throws -> (PostgresStore, PostgresStore) {
        let records = nodes.map {
            NodeRecord(name: $0, pool: "workspace", address: "127.0.0.1:80", previewBaseURL: "http://127.0.0.1:80",
                       lastHeartbeat: now, isStatic: true)
        }
        let a = try PostgresStore(url: server.url())
        try a.applyNow(records.map { .upsertNode($0) })
        return (a, try PostgresStore(url: server.url()))
    }

    @Test("Two registries on one database: a new key placed on both at once ends as one placement; a reassign through one moves the user on the other")
    func registriesAgree() throws {
        let server = try PostgresServer()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (storeA, storeB) = try twoStores(server, nodes: ["n1", "n2"], now: now)
        defer { storeA.close(); storeB.close() }
        let pools = ["workspace": PoolSettings(policy: .roundRobin)]
        let a = try Registry(nodes: try storeA.loadAll().nodes, placements: [], pools: pools, store: storeA)
        let b = try Registry(nodes: try storeB.loadAll().nodes, placements: [], pools: pools, store: storeB)
        for (store, registry) in [(storeA, a), (storeB, b)] {
            try store.follow { event in
                switch event {
                case .changes(let c, let through): registry.applyExternal(c, through: through)
                case .resync(let contents, let through): _ = registry.resync(contents, through: through)
                case .failed: break
                }
            }
        }
        // Round robin with B's cursor moved on once: the two pick different nodes for "race".
        _ = Array("warm".utf8).withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }
        let pa = Array("race".utf8).withUnsafeBytes { a.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name
        let pb = Array("race".utf8).withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name
        #expect(pa != nil && pb != nil && pa != pb, "the race needs two different choices")
        storeA.flush()
        storeB.flush()
        let stored = try #require(try storeA.loadAll().placements.first { $0.key == "race" }?.node)
        #expect(eventually { a.placement(pool: "workspace", key: "race")?.node == stored && b.placement(pool: "workspace", key: "race")?.node == stored })

        let moved = Mutex<[MovedPlacement]>([])
        b.observeMoves { m in moved.withLock { $0 += m } }
        let other = stored == "n1" ? "n2" : "n1"
        try a.reassign(pool: "workspace", key: "race", to: other, now: now)
        #expect(eventually { moved.withLock { !$0.isEmpty } })
        #expect(moved.withLock { $0 } == [MovedPlacement(pool: "workspace", key: "race", from: stored, to: other)])
        #expect(Array("race".utf8).withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name == other)
    }

    @Test("Two registries drain one node at the same moment, choosing differently: each user moves once, both end agreeing, and each hears of each move once")
    func concurrentDrainsMoveOnce() throws {
        let server = try PostgresServer()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (storeA, storeB) = try twoStores(server, nodes: ["n1", "n2", "n3"], now: now)
        defer { storeA.close(); storeB.close() }
        // Round robin, so the two drains send the same users to different nodes.
        let pools = ["workspace": PoolSettings(policy: .roundRobin)]
        let keys = (0..<100).map { "d\($0)" }
        try storeA.applyNow(keys.map { .upsertPlacement(PlacementRecord(pool: "workspace", key: $0, node: "n1", createdAt: now, updatedAt: now)) })
        let (nodesA, placementsA) = try storeA.loadAll()
        let a = try Registry(nodes: nodesA, placements: placementsA, pools: pools, store: storeA)
        let (nodesB, placementsB) = try storeB.loadAll()
        let b = try Registry(nodes: nodesB, placements: placementsB, pools: pools, store: storeB)
        #expect(b.node(named: "n1")?.placementCount == 100)
        // Per registry: how often each key was heard to move.
        let heard = Mutex<[[String: Int]]>([[:], [:]])
        for (i, (store, registry)) in [(storeA, a), (storeB, b)].enumerated() {
            registry.observeMoves { moved in heard.withLock { for m in moved { $0[i][m.key, default: 0] += 1 } } }
            try store.follow { event in
                if case .changes(let c, let through) = event { registry.applyExternal(c, through: through) }
            }
        }
        _ = Array("skew".utf8).withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }
        let results = Mutex<[Registry.DrainResult]>([])
        let group = DispatchGroup()
        for registry in [a, b] {
            DispatchQueue.global().async(group: group) {
                if let r = try? registry.drain(node: "n1", now: now) { results.withLock { $0.append(r) } }
            }
        }
        group.wait()
        let r = results.withLock { $0 }
        try #require(r.count == 2)
        // ("skew" may have been placed on n1 too, and drained with the others: count the d keys.)
        let movedD = r.map { $0.moved.filter { $0.key.hasPrefix("d") }.count }
        #expect(movedD[0] + movedD[1] == 100, "moved \(movedD[0]) + \(movedD[1])")
        #expect(r[0].movedElsewhere + r[1].movedElsewhere <= 101, "elsewhere \(r[0].movedElsewhere) + \(r[1].movedElsewhere)")
        let stored = Dictionary(uniqueKeysWithValues: try storeA.loadAll().placements.filter { $0.key.hasPrefix("d") }.map { ($0.key, $0.node) })
        #expect(stored.count == 100 && !stored.values.contains("n1"))
        #expect(eventually {
            keys.allSatisfy { a.placement(pool: "workspace", key: $0)?.node == stored[$0] && b.placement(pool: "workspace", key: $0)?.node == stored[$0] }
        })
        #expect(a.node(named: "n1")?.placementCount == 0 && b.node(named: "n1")?.placementCount == 0)
        for i in 0..<2 {
            let dKeys = { heard.withLock { $0[i].filter { $0.key.hasPrefix("d") } } }
            #expect(eventually { dKeys().count == 100 }, "registry \(i) heard \(dKeys().count) users move")
            #expect(dKeys().values.allSatisfy { $0 == 1 }, "registry \(i) heard a user move twice")
        }
    }

    @Test("A writer stalled inside its transaction does not stall the others for long: they give up waiting for the write lock (a retryable failure, not a hang), and the server ends the stalled transaction")
    func stalledWriterReleasesTheLock() throws {
        let server = try PostgresServer()
        let store = try PostgresStore(url: server.url())
        defer { store.close() }
        try store.applyNow([.upsertNode(storeNode("n1"))])
        // Another instance's writer, stopped right after taking the lock the way writers do.
        let stalled = try PGConnection(url: server.url(), password: nil)
        try stalled.execute("BEGIN; SET LOCAL idle_in_transaction_session_timeout = '\(PostgresStatements.idleInTransactionSeconds)s'; "
                            + "SELECT pg_advisory_xact_lock(\(PostgresSchema.writeLock))", operation: "stall")
        let started = Date()
        do {
            try store.applyNow([.upsertNode(storeNode("n2"))])
            Issue.record("a write went through while another transaction held the write lock")
        } catch {
            #expect("\(error)".contains("lock"), "\(error)")
        }
        print("stalledWriterReleasesTheLock: gave up after \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        // The server ends the idle transaction; the next try gets the lock.
        #expect(eventually(30) { (try? store.applyNow([.upsertNode(storeNode("n2"))])) != nil })
        #expect(try store.loadAll().nodes.map(\.name).contains("n2"))
        #expect(throws: StoreError.self) { try stalled.execute("SELECT 1", operation: "after the timeout") }
    }

    @Test("The server goes away and comes back: queued changes are written after it returns, admin writes fail meanwhile, the follower resyncs")
    func serverRestart() throws {
        let server = try PostgresServer()
        let a = try PostgresStore(url: server.url())
        let b = try PostgresStore(url: server.url())
        defer { a.close(); b.close() }
        try a.applyNow([.upsertNode(storeNode("n1"))])
        _ = try b.loadAll()
        let inbox = FeedInbox()
        try b.follow { inbox.add($0) }
        server.stop()
        #expect(throws: StoreError.self) { try a.applyNow([.upsertNode(storeNode("n2"))]) }
        a.enqueue(.upsertPlacement(storePlacement(1, nodes: ["n1"])))
        #expect(eventually { inbox.events.withLock { $0.contains { if case .failed = $0 { true } else { false } } } })
        try server.start()
        a.flush()
        #expect(try a.loadAll().placements.map(\.key) == ["u1"])
        #expect(eventually(10) { inbox.resyncs > 0 })
        // After the resync the feed goes on as before.
        try a.applyNow([.upsertNode(storeNode("n3"))])
        #expect(eventually { inbox.changes.contains(.upsertNode(storeNode("n3"))) })
    }

    @Test("Passwords never appear in what is shown: user:secret@ and password= are masked")
    func redaction() {
        #expect(PostgresURL.redacted("postgres://sy:s3cret@db.internal:5432/reg?sslmode=require")
                == "postgres://sy:***@db.internal:5432/reg?sslmode=require")
        #expect(PostgresURL.redacted("postgresql://sy@db/reg?password=x&sslmode=verify-full")
                == "postgresql://sy@db/reg?password=***&sslmode=verify-full")
        #expect(PostgresURL.redacted("postgres://db/reg") == "postgres://db/reg")
        #expect(PostgresURL.matches("postgres://x") && PostgresURL.matches("postgresql://x") && !PostgresURL.matches("var/switchyard.db"))
    }
}

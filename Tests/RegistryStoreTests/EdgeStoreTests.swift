import Foundation
import Testing
@testable import RegistryStore
import PostgresTestServer
@testable import RouteResolver

/// Edge nodes in both engines (schema v4): rows round trip field for field, the mode CHECK
/// refuses what the registry would, the change feed carries an edge's writes (an operator's,
/// a mode flip, the center that holds its tunnel) to the other instance, and a v3 database
/// upgrades to v4 keeping its change log.
@Suite("Stores: edges")
struct EdgeStoreTests {
    static let edges = [
        EdgeRecord(id: "node1", hostnames: ["node1.edge.test", "*.node1.edge.test"], tokenHash: String(repeating: "ab", count: 32),
                   mode: .proxy, modeReason: "configuration", modeChangedAt: 5, publicAddress: "", failedProbes: 2,
                   tunnelCenter: "center-a", tunnelSeenAt: 9, enabled: true, createdAt: 1, updatedAt: 2),
        EdgeRecord(id: "node2", hostnames: ["node2.edge.test"], tokenHash: "", mode: .direct, modeReason: "probe ok",
                   modeChangedAt: 7, publicAddress: "https://127.0.0.9:8443", enabled: false, createdAt: 3, updatedAt: 4),
    ]

    @Test("SQLite: edges written by one instance load in another, field for field; a bad mode is refused")
    func sqliteRoundTrip() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        try checkRoundTrip(a) { try SQLiteStore(path: dir.databasePath) }
        let raw = try RawDatabase(path: dir.databasePath)
        #expect(throws: RawDatabaseError.self) {
            try raw.execute("INSERT INTO edges (edge_id, hostnames, mode, created_at, updated_at) VALUES ('x', 'x.test', 'sideways', 1, 1)")
        }
    }

    @Test("SQLite: two registries on one file: an edge created, flipped, attached and deleted through one reaches the other")
    func sqliteFeed() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        let b = try SQLiteStore(path: dir.databasePath)
        defer { a.close(); b.close() }
        try checkFeed(a, b)
    }

    @Test("SQLite: a v3 database upgrades to v4 keeping its change log; kind 'edge' is admitted")
    func sqliteUpgrade() throws {
        let dir = try StoreTestDirectory()
        let path = dir.url.appendingPathComponent("v3.db").path
        let db = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 1_000)
        try Schema.migrate(db, migrations: Array(Schema.migrations.prefix(3)))
        try db.execute("""
            INSERT INTO pods (pod_id, node_id, created_at, updated_at) VALUES ('alice', 'c1', 1, 2);
            INSERT INTO change_log (writer, kind, pool, name, at) VALUES ('w', 'pod', '', 'alice', 10), ('w', 'pod', '', 'bob', 11);
            """, operation: "v3 data")
        db.close()
        let store = try SQLiteStore(path: path)
        defer { store.close() }
        #expect(try store.schemaVersion() == 4)
        #expect(try store.loadPods().map(\.id) == ["alice"])
        let raw = try RawDatabase(path: path)
        #expect(try raw.integer("SELECT count(*) FROM change_log") == 2)
        try store.applyNow([.upsertEdge(Self.edges[0])])
        #expect(try raw.integer("SELECT MAX(seq) FROM change_log WHERE kind = 'edge'") == 3)
        #expect(try store.loadEdges() == [Self.edges[0]])
    }

    @Test("a center that starts clears the tunnel claims it left behind (killed while attached), in memory and in the store; other centers' claims stay")
    func staleClaimsCleared() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        var mine = Self.edges[0]
        mine.tunnelCenter = "center-a"
        var theirs = Self.edges[1]
        theirs.tunnelCenter = "center-b"
        try a.applyNow([.upsertEdge(mine), .upsertEdge(theirs)])
        a.close()
        let b = try SQLiteStore(path: dir.databasePath)
        defer { b.close() }
        let (nodes, placements) = try b.loadAll()
        let registry = try Registry(nodes: nodes, placements: placements, pods: [], store: b)
        registry.loadEdges(try b.loadEdges(), center: "center-a", now: 100)
        #expect(registry.edge(id: "node1")?.record.tunnelCenter == "")
        #expect(registry.edge(id: "node2")?.record.tunnelCenter == "center-b")
        b.flush()
        #expect(try b.loadEdges().map(\.tunnelCenter) == ["", "center-b"])
    }

    @Test("a tunnel claim is fresh for 35 s after its last refresh")
    func claimFreshness() {
        var e = Self.edges[0]
        e.tunnelSeenAt = 1_000_000
        #expect(e.tunnelIsFresh(now: 1_000_000 + EdgeRecord.tunnelStaleMs))
        #expect(!e.tunnelIsFresh(now: 1_000_001 + EdgeRecord.tunnelStaleMs))
        e.tunnelCenter = ""
        #expect(!e.tunnelIsFresh(now: 1_000_000))
    }

    @Test("PostgreSQL: edges round trip field for field; two registries on one database share an edge's writes; the schema is v4")
    func postgres() throws {
        let server = try PostgresServer()
        let a = try PostgresStore(url: server.url())
        try checkRoundTrip(a) { try PostgresStore(url: server.url()) }
        let c = try PostgresStore(url: server.url())
        let d = try PostgresStore(url: server.url())
        defer { c.close(); d.close() }
        try checkFeed(c, d)
        #expect(try c.schemaVersion() == 4)
    }

    // MARK: shared checks

    func checkRoundTrip(_ a: any RegistryStore, reopen: () throws -> any RegistryStore) throws {
        try a.applyNow(Self.edges.map { .upsertEdge($0) })
        var changed = Self.edges[1]
        changed.mode = .proxy
        changed.tunnelCenter = "center-b"
        a.enqueue(.upsertEdge(changed))
        a.enqueue(.deleteEdge(id: "node1"))
        a.flush()
        a.close()
        let b = try reopen()
        defer { b.close() }
        _ = try b.loadAll()
        #expect(try b.loadEdges() == [changed])
        try b.applyNow([.upsertEdge(Self.edges[0])])
        #expect(try b.loadEdges() == [Self.edges[0], changed])
    }

    func checkFeed(_ storeA: any RegistryStore, _ storeB: any RegistryStore) throws {
        func open(_ store: any RegistryStore) throws -> Registry {
            let (nodes, placements) = try store.loadAll()
            let registry = try Registry(nodes: nodes, placements: placements, pods: try store.loadPods(), store: store)
            registry.loadEdges(try store.loadEdges(), center: "center-x", now: 1)
            try store.follow { event in
                switch event {
                case .changes(let c, let through): registry.applyExternal(c, through: through)
                case .resync(let contents, let through): registry.resync(contents, through: through)
                case .failed: break
                }
            }
            return registry
        }
        let a = try open(storeA)
        let b = try open(storeB)
        var edge = EdgeRecord(id: "node7", hostnames: ["node7.edge.test"], tokenHash: String(repeating: "cd", count: 32),
                              mode: .proxy, createdAt: 1, updatedAt: 1)
        try a.upsertEdge(edge)
        #expect(eventually { b.edge(id: "node7")?.record == edge })
        // The center holding its tunnel, queued from a worker: every center learns it.
        a.edgeTunnel(id: "node7", center: "center-a", attached: true, now: 20)
        #expect(eventually { b.edge(id: "node7")?.record.tunnelCenter == "center-a" })
        // A mode flip through the signal rules on b reaches a.
        let flipped = try b.recordEdgeSignal(id: "node7", samples: [EdgeProbe(location: "p", ok: true, latencyMs: 3, at: 1)],
                                             publicAddress: "https://127.0.0.7:9443", tunnelActive: true, now: 30)
        #expect(flipped.record.mode == .direct)
        #expect(eventually { a.edge(id: "node7")?.record.mode == .direct && a.edge(forHost: "node7.edge.test") != nil })
        edge = a.edge(id: "node7")!.record
        #expect(edge.publicAddress == "https://127.0.0.7:9443" && edge.tunnelCenter == "center-a")
        try a.deleteEdge(id: "node7")
        #expect(eventually { b.edge(id: "node7") == nil && b.edge(forHost: "node7.edge.test") == nil })
    }
}

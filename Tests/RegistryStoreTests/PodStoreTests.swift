import Foundation
import Synchronization
import Testing
@testable import RegistryStore
import PostgresTestServer
@testable import RouteResolver

/// Pods in both engines: rows round trip field for field (NULLs included), the CHECKs refuse what
/// the registry would, the change feed carries pod rows between instances (a migration through
/// one closes the pod's tunnels on the other), and v2 databases upgrade to v3 keeping their data
/// and change log.
@Suite("Stores: pods")
struct PodStoreTests {
    // MARK: SQLite

    @Test("SQLite: pods written by one instance load in another, field for field; a CHECK refusal is counted")
    func sqliteRoundTrip() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        try checkRoundTrip(a) { try SQLiteStore(path: dir.databasePath) }
    }

    @Test("SQLite: two registries on one file: pods created, migrated and deleted through one reach the other; the move is announced there")
    func sqliteFeed() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        let b = try SQLiteStore(path: dir.databasePath)
        defer { a.close(); b.close() }
        try checkFeed(a, b)
        let raw = try RawDatabase(path: dir.databasePath)
        #expect(try raw.integer("SELECT count(*) FROM change_log WHERE kind = 'pod' AND writer = '\(a.writerID)'") >= 3)
    }

    @Test("SQLite: a v2 database upgrades to v3 keeping nodes, placements, change-log rows and the log's sequence")
    func sqliteUpgrade() throws {
        let dir = try StoreTestDirectory()
        let path = dir.url.appendingPathComponent("v2.db").path
        let db = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 1_000)
        try db.execute("PRAGMA foreign_keys=ON", operation: "test")
        try Schema.migrate(db, migrations: Array(Schema.migrations.prefix(2)))
        #expect(try Schema.currentVersion(db) == 2)
        try db.execute("""
            INSERT INTO nodes (name, pool, address, created_at, updated_at) VALUES ('n1', 'workspace', '10.0.0.1:80', 1, 2);
            INSERT INTO placements (pool, key, node, created_at, updated_at) VALUES ('workspace', 'alice', 'n1', 3, 4);
            INSERT INTO change_log (writer, kind, pool, name, at) VALUES
                ('w', 'node', '', 'n1', 10), ('w', 'placement', 'workspace', 'alice', 11),
                ('w', 'placement', 'workspace', 'bob', 12), ('w', 'placement', 'workspace', 'carol', 13),
                ('w', 'placement', 'workspace', 'dave', 14);
            -- Pruned rows at the end: AUTOINCREMENT's mark (5) stays above the last row (3).
            DELETE FROM change_log WHERE seq > 3;
            """, operation: "v2 data")
        db.close()
        #expect(try RawDatabase(path: path).integer("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'") == 5)

        let store = try SQLiteStore(path: path)
        #expect(try store.schemaVersion() == SQLiteStore.latestSchemaVersion)
        let loaded = try store.loadAll()
        #expect(loaded.nodes.map(\.name) == ["n1"] && loaded.placements.map(\.key) == ["alice"])
        let raw = try RawDatabase(path: path)
        #expect(try raw.integer("SELECT count(*) FROM change_log") == 3)
        #expect(try raw.integer("SELECT group_concat(seq) = '1,2,3' FROM (SELECT seq FROM change_log ORDER BY seq)") == 1)
        #expect(try raw.integer("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'") == 5)
        #expect(try raw.integer("SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'change_log%'") == 1)
        #expect(try raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'change_log_by_time'") == 1)
        // The next change gets the next number, never a reused one, and kind 'pod' is admitted.
        try store.applyNow([.upsertPod(PodRecord(id: "alice", nodeID: "c1", createdAt: 1, updatedAt: 1))])
        #expect(try raw.integer("SELECT MAX(seq) FROM change_log WHERE kind = 'pod'") == 6)
        #expect(try store.loadPods().map(\.id) == ["alice"])
        #expect(throws: RawDatabaseError.self) {
            try raw.execute("INSERT INTO change_log (writer, kind, pool, name, at) VALUES ('w', 'bogus', '', 'x', 1)")
        }
        store.close()
    }

    // MARK: PostgreSQL

    @Test("PostgreSQL: pods written by one instance load in another, field for field; a CHECK refusal is counted")
    func postgresRoundTrip() throws {
        let server = try PostgresServer()
        let a = try PostgresStore(url: server.url())
        try checkRoundTrip(a) { try PostgresStore(url: server.url()) }
    }

    @Test("PostgreSQL: two registries on one database: pods created, migrated and deleted through one reach the other; the move is announced there")
    func postgresFeed() throws {
        let server = try PostgresServer()
        let a = try PostgresStore(url: server.url())
        let b = try PostgresStore(url: server.url())
        defer { a.close(); b.close() }
        try checkFeed(a, b)
        // Pipelined batches (the writer's path) carry pods too.
        for i in 0..<200 { a.enqueue(.upsertPod(PodRecord(id: "bulk\(i)", nodeID: "c1", createdAt: 1, updatedAt: 1))) }
        a.flush()
        #expect(a.statistics.rejectedChanges == 0)
        #expect(try b.loadPods().filter { $0.id.hasPrefix("bulk") }.count == 200)
    }

    @Test("PostgreSQL: a v2 database upgrades to v3 keeping its data and change log; the kind CHECK is replaced, not doubled")
    func postgresUpgrade() throws {
        let server = try PostgresServer()
        let db = try PGConnection(url: server.url(), password: nil)
        try PostgresSchema.migrate(db, migrations: Array(PostgresSchema.migrations.prefix(2)))
        #expect(try PostgresSchema.currentVersion(db) == 2)
        let checks = "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'switchyard.change_log'::regclass AND contype = 'c'"
        // The name v3 drops is the one v2 really got.
        #expect(try db.query(checks, operation: "test").text(0, 0) == "change_log_kind_check")
        try db.execute("""
            INSERT INTO switchyard.nodes (name, pool, address, created_at, updated_at) VALUES ('n1', 'workspace', '10.0.0.1:80', 1, 2);
            INSERT INTO switchyard.placements (pool, key, node, created_at, updated_at) VALUES ('workspace', 'alice', 'n1', 3, 4);
            INSERT INTO switchyard.change_log (writer, kind, pool, name, at) VALUES
                ('w', 'node', '', 'n1', 10), ('w', 'placement', 'workspace', 'alice', 11), ('w', 'placement', 'workspace', 'bob', 12)
            """, operation: "v2 data")

        let store = try PostgresStore(url: server.url())
        defer { store.close() }
        #expect(try store.schemaVersion() == PostgresStore.latestSchemaVersion)
        let loaded = try store.loadAll()
        #expect(loaded.nodes.map(\.name) == ["n1"] && loaded.placements.map(\.key) == ["alice"])
        #expect(try db.query("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM switchyard.change_log", operation: "test").text(0, 0) == "1,2,3")
        #expect(try db.query(checks, operation: "test").text(0, 0) == "change_log_kind_check")
        let definition = try db.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'change_log_kind_check'",
                                      operation: "test").text(0, 0)
        #expect(definition.contains("'pod'"), "\(definition)")
        try store.applyNow([.upsertPod(PodRecord(id: "alice", nodeID: "c1", createdAt: 1, updatedAt: 1))])
        #expect(try db.query("SELECT MAX(seq) FROM switchyard.change_log WHERE kind = 'pod'", operation: "test").int64(0, 0) == 4)
        #expect(throws: StoreError.self) {
            try db.execute("INSERT INTO switchyard.change_log (writer, kind, pool, name, at) VALUES ('w', 'bogus', '', 'x', 1)",
                           operation: "test")
        }
    }

    // MARK: The same checks for every engine

    static let pods = [
        PodRecord(id: "alice", baseURL: "https://alice.pods.example/", accountID: "acct-1", nodeID: "c1",
                  migrationStatus: .done, migrationTargetNode: "c1", migrationProgress: 100, createdAt: 1_700_000_000_001,
                  updatedAt: 1_700_000_000_002),
        PodRecord(id: "bob", nodeID: "c-not-registered", createdAt: 5, updatedAt: 6),
        PodRecord(id: "carol", baseURL: "http://carol/", nodeID: "c2", migrationStatus: .syncing, migrationTargetNode: "c1",
                  migrationProgress: 40, createdAt: 7, updatedAt: 8),
        PodRecord(id: "gone", nodeID: "c1", createdAt: 9, updatedAt: 9),
    ]

    func checkRoundTrip(_ a: any RegistryStore & StatisticsReporting, reopen: () throws -> any RegistryStore) throws {
        try a.applyNow(Self.pods.map { .upsertPod($0) })
        var changed = Self.pods[2]
        changed.migrationStatus = nil
        changed.migrationTargetNode = nil
        changed.migrationProgress = 0
        changed.updatedAt = 10
        a.enqueue(.upsertPod(changed))
        a.enqueue(.deletePod(id: "gone"))
        // The registry validates first; the store's CHECK is the last line.
        a.enqueue(.upsertPod(PodRecord(id: "bad", nodeID: "c1", migrationProgress: 101)))
        a.enqueue(.upsertPod(PodRecord(id: "dave", nodeID: "c1", createdAt: 11, updatedAt: 12)))
        a.flush()
        #expect(a.statistics.rejectedChanges == 1)
        a.close()
        let b = try reopen()
        defer { b.close() }
        _ = try b.loadAll()
        #expect(try b.loadPods() == [Self.pods[0], Self.pods[1], changed, PodRecord(id: "dave", nodeID: "c1", createdAt: 11, updatedAt: 12)])
    }

    func checkFeed(_ storeA: any RegistryStore, _ storeB: any RegistryStore) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let centers = ["c1", "c2"].map {
            NodeRecord(name: $0, pool: "center", address: "127.0.0.1:80", previewBaseURL: "http://127.0.0.1:80",
                       lastHeartbeat: now, isStatic: true)
        }
        try storeA.applyNow(centers.map { .upsertNode($0) })
        func open(_ store: any RegistryStore) throws -> Registry {
            let (nodes, placements) = try store.loadAll()
            let registry = try Registry(nodes: nodes, placements: placements, pods: try store.loadPods(), store: store)
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
        let moved = Mutex<[MovedPlacement]>([])
        b.observeMoves { m in moved.withLock { $0 += m } }

        let created = try a.createPods([PodRecord(id: "alice", nodeID: "c1"), PodRecord(id: "bob", nodeID: "c2")], replace: false, now: now)
        #expect(created == (2, 0, 0))
        #expect(eventually { b.podCount == 2 })
        #expect(b.pod(id: "alice") == a.pod(id: "alice"))
        try a.migratePod(id: "alice", to: "c2", centerPool: "center", now: now + 1)
        #expect(eventually { moved.withLock { !$0.isEmpty } })
        #expect(moved.withLock { $0 } == [MovedPlacement(pool: Registry.podTunnelPool, key: "alice", from: "c1", to: "c2")])
        #expect(b.pod(id: "alice")?.migrationStatus == .done)
        var key = "alice"
        guard case .owner(let owner) = key.withUTF8({ b.resolvePod(UnsafeRawBufferPointer($0), centerPool: "center", now: now) }) else {
            Issue.record("not routed on b")
            return
        }
        #expect(owner.name == "c2")
        try b.deletePod(id: "bob")
        #expect(eventually { a.pod(id: "bob") == nil && a.podCount == 1 })
        // A's own writes did not come back as moves or changes there (memory had them first).
        #expect(a.pod(id: "alice")?.nodeID == "c2")
    }
}

import RouteResolver

/// The PostgreSQL engine of `StoreCore`: one connection (the writer's), the write of each change
/// together with its change-log row in one statement (one round trip), and commits that notify
/// the followers of every instance.
final class PostgresStatements: StoreEngine {
    static let refusalAbortsTransaction = true
    let db: PGConnection
    let writerID: String
    /// The last change-log number written in the open transaction (0: none yet).
    private var lastSeq: Int64 = 0

    init(_ db: PGConnection, writerID: String) {
        self.db = db
        self.writerID = writerID
    }

    func close() { db.close() }

    // MARK: Transactions

    /// Begins a write transaction behind the write lock (see `PostgresSchema.writeLock`). A
    /// connection that broke (a restarted server) is connected again first.
    ///
    /// Every instance's writer waits for that one lock, so a writer that stalls inside its
    /// transaction (its process stopped, its network cut) must not stall them all: the server
    /// ends a write transaction left idle for `idleInTransactionSeconds` (releasing the lock), and
    /// a writer waits at most `lockWaitSeconds` for the lock before its batch fails and is
    /// retried (an admin write answers 503 meanwhile).
    func beginTransaction() throws(StoreError) {
        if !db.isUp { try db.reconnect() }
        lastSeq = 0
        let begin = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '\(Self.idleInTransactionSeconds)s'; "
            + "SET LOCAL lock_timeout = '\(Self.lockWaitSeconds)s'; SELECT pg_advisory_xact_lock(\(PostgresSchema.writeLock))"
        do throws(StoreError) {
            try open(begin)
        } catch {
            // The socket may have died while idle: one reconnect, then the error stands.
            guard !db.isUp else { throw error }
            try db.reconnect()
            try open(begin)
        }
    }

    /// Runs the BEGIN statements; when a later one fails (the lock wait timed out), the
    /// transaction they opened is rolled back, so a failed begin leaves none behind.
    private func open(_ begin: String) throws(StoreError) {
        do throws(StoreError) {
            try db.execute(begin, operation: "begin")
        } catch {
            if db.isUp { try? db.execute("ROLLBACK", operation: "rollback a failed begin") }
            throw error
        }
    }

    static let lockWaitSeconds = 5
    static let idleInTransactionSeconds = 10

    /// Commits; the notification goes out with the commit (PostgreSQL delivers it only then).
    func commitTransaction() throws(StoreError) {
        if lastSeq > 0 {
            try db.execute("NOTIFY \(PostgresSchema.channel), '\(lastSeq)'; COMMIT", operation: "commit")
        } else {
            try db.execute("COMMIT", operation: "commit")
        }
    }

    func rollbackTransaction() {
        try? db.execute("ROLLBACK", operation: "rollback")
    }

    func savepoint() throws(StoreError) { try db.execute("SAVEPOINT change", operation: "savepoint") }
    func releaseSavepoint() throws(StoreError) { try db.execute("RELEASE SAVEPOINT change", operation: "release savepoint") }
    func rollbackToSavepoint() throws(StoreError) { try db.execute("ROLLBACK TO SAVEPOINT change", operation: "rollback to savepoint") }

    /// A read-only snapshot for reads that must agree with each other (nodes, placements and the
    /// log position they stand for).
    func beginReadTransaction() throws(StoreError) {
        if !db.isUp { try db.reconnect() }
        try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", operation: "begin read")
    }

    // MARK: Changes

    func apply(_ change: StoreChange, at now: Int64) throws(StoreError) -> Int64 {
        let (sql, parameters, kind) = Self.logged(change, at: now, writerID: writerID)
        let rows = try db.query(sql, parameters, operation: "apply \(kind) change")
        let seq = rows.count > 0 ? rows.int64(0, 0) : 0
        lastSeq = max(lastSeq, seq)
        return seq
    }

    /// The batch pipelined (see `PGConnection.pipeline`): one round trip per few hundred changes.
    func applyAll(_ changes: [StoreChange], at now: Int64) throws(StoreError) -> [Int64] {
        let statements = changes.map { change in
            let (sql, parameters, _) = Self.logged(change, at: now, writerID: writerID)
            return (sql: sql, parameters: parameters)
        }
        let sequence = try db.pipeline(statements, operation: "apply \(changes.count) change(s)")
        lastSeq = max(lastSeq, sequence.max() ?? 0)
        return sequence
    }

    /// The statement that writes `change` and its change-log row, with its parameters.
    private static func logged(_ change: StoreChange, at now: Int64, writerID: String) -> (String, [String?], String) {
        // Conditional writes may have lost a race: every instance, the writer included, reads
        // the row back (writer `*`, as in SQLite's log).
        let writer: String
        switch change {
        case .insertPlacement, .setHostPort, .heartbeat: writer = "*"
        default: writer = writerID
        }
        let (write, parameters, kind, pool, name) = Self.statement(for: change)
        // The write and its log row in one statement: a data-modifying WITH runs whether or not
        // its rows are used, and a refused write fails the whole statement (nothing logged).
        let n = parameters.count
        // A move is logged only if it moved something (no row: log number 0, "not written").
        let values = if case .movePlacement = change {
            "SELECT $\(n + 1), '\(kind)', $\(n + 2), $\(n + 3), $\(n + 4) WHERE EXISTS (SELECT 1 FROM w)"
        } else {
            "VALUES ($\(n + 1), '\(kind)', $\(n + 2), $\(n + 3), $\(n + 4))"
        }
        let sql = "WITH w AS (\(write)) INSERT INTO switchyard.change_log (writer, kind, pool, name, at) \(values) RETURNING seq"
        return (sql, parameters + [writer, pool, name, String(now)], kind)
    }

    private static let nodeColumns = "name, pool, address, preview_base_url, api_base_url, enabled, weight, capacity, labels, last_heartbeat, is_static, created_at, updated_at"
    private static let placementColumns = "pool, key, node, host_port, last_active, created_at, updated_at"
    static let podColumns = StoreStatements.podColumns

    /// The write of `change` (parameters `$1...`) and the log row it names.
    private static func statement(for change: StoreChange) -> (String, [String?], String, String, String) {
        switch change {
        case .upsertNode(let n):
            return ("""
                INSERT INTO switchyard.nodes (\(nodeColumns))
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13)
                ON CONFLICT (name) DO UPDATE SET
                    pool = excluded.pool, address = excluded.address,
                    preview_base_url = excluded.preview_base_url, api_base_url = excluded.api_base_url,
                    enabled = excluded.enabled, weight = excluded.weight, capacity = excluded.capacity,
                    labels = excluded.labels,
                    last_heartbeat = GREATEST(switchyard.nodes.last_heartbeat, excluded.last_heartbeat),
                    is_static = excluded.is_static, created_at = excluded.created_at,
                    updated_at = excluded.updated_at
                RETURNING 1
                """, [n.name, n.pool, n.address, n.previewBaseURL, n.apiBaseURL, n.enabled ? "t" : "f",
                      String(n.weight), String(n.capacity), LabelsJSON.encode(n.labels), String(n.lastHeartbeat),
                      n.isStatic ? "t" : "f", String(n.createdAt), String(n.updatedAt)], "node", "", n.name)
        case .deleteNode(let name):
            return ("DELETE FROM switchyard.nodes WHERE name = $1 RETURNING 1", [name], "node", "", name)
        case .heartbeat(let name, let at):
            return ("UPDATE switchyard.nodes SET last_heartbeat = GREATEST(last_heartbeat, $2) WHERE name = $1 RETURNING 1",
                    [name, String(at)], "node", "", name)
        case .upsertPlacement(let p):
            return ("""
                INSERT INTO switchyard.placements (\(placementColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (pool, key) DO UPDATE SET
                    node = excluded.node, host_port = excluded.host_port,
                    last_active = excluded.last_active, created_at = excluded.created_at,
                    updated_at = excluded.updated_at
                RETURNING 1
                """, placementParameters(p), "placement", p.pool, p.key)
        case .insertPlacement(let p):
            return ("""
                INSERT INTO switchyard.placements (\(placementColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (pool, key) DO NOTHING RETURNING 1
                """, placementParameters(p), "placement", p.pool, p.key)
        case .setHostPort(let p):
            return ("""
                UPDATE switchyard.placements SET host_port = $4, last_active = $5, updated_at = $6
                WHERE pool = $1 AND key = $2 AND node = $3 RETURNING 1
                """, [p.pool, p.key, p.node, String(p.hostPort), String(p.lastActive), String(p.updatedAt)],
                "placement", p.pool, p.key)
        case .deletePlacement(let pool, let key):
            return ("DELETE FROM switchyard.placements WHERE pool = $1 AND key = $2 RETURNING 1", [pool, key], "placement", pool, key)
        case .movePlacement(let p, let from):
            return ("""
                UPDATE switchyard.placements SET node = $3, host_port = $4, last_active = $5, updated_at = $6
                WHERE pool = $1 AND key = $2 AND node = $7 RETURNING 1
                """, [p.pool, p.key, p.node, String(p.hostPort), String(p.lastActive), String(p.updatedAt), from],
                "placement", p.pool, p.key)
        case .upsertPod(let p):
            return ("""
                INSERT INTO switchyard.pods (\(podColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (pod_id) DO UPDATE SET
                    base_url = excluded.base_url, account_id = excluded.account_id, node_id = excluded.node_id,
                    migration_status = excluded.migration_status,
                    migration_target_node = excluded.migration_target_node,
                    migration_progress = excluded.migration_progress,
                    created_at = excluded.created_at, updated_at = excluded.updated_at
                RETURNING 1
                """, [p.id, p.baseURL, p.accountID, p.nodeID, p.migrationStatus?.rawValue, p.migrationTargetNode,
                      String(p.migrationProgress), String(p.createdAt), String(p.updatedAt)], "pod", "", p.id)
        case .deletePod(let id):
            return ("DELETE FROM switchyard.pods WHERE pod_id = $1 RETURNING 1", [id], "pod", "", id)
        case .upsertEdge(let e):
            return PostgresEdgeSQL.upsert(e)
        case .deleteEdge(let id):
            return PostgresEdgeSQL.delete(id)
        }
    }

    private static func placementParameters(_ p: PlacementRecord) -> [String?] {
        [p.pool, p.key, p.node, String(p.hostPort), String(p.lastActive), String(p.createdAt), String(p.updatedAt)]
    }

    /// Drops log rows older than `cutoff`, but never the newest: its number is where every
    /// follower's cursor stands (see `PostgresReader.lastSeq`).
    func pruneChangeLog(before cutoff: Int64) throws(StoreError) {
        _ = try db.query("""
            DELETE FROM switchyard.change_log
            WHERE at < $1 AND seq < (SELECT MAX(seq) FROM switchyard.change_log)
            """, [String(cutoff)], operation: "prune change log")
    }
}

/// Reads of the stored registry, shared by the store (start-up) and its follower.
struct PostgresReader {
    let db: PGConnection

    static let nodeSelect = """
        SELECT name, pool, address, preview_base_url, api_base_url, enabled, weight, capacity,
               last_heartbeat, is_static, created_at, updated_at, labels::text
        FROM switchyard.nodes
        """
    static let placementSelect = "SELECT pool, key, node, host_port, last_active, created_at, updated_at FROM switchyard.placements"

    static let podSelect = "SELECT \(PostgresStatements.podColumns) FROM switchyard.pods"

    /// The highest change-log number this snapshot sees. Writers commit in number order (the
    /// write lock) and the newest row is never pruned, so it is the position of the snapshot.
    func lastSeq() throws(StoreError) -> Int64 {
        let rows = try db.query("SELECT COALESCE(MAX(seq), 0) FROM switchyard.change_log", operation: "read change log end")
        return rows.count > 0 ? rows.int64(0, 0) : 0
    }

    func firstSeq() throws(StoreError) -> Int64 {
        let rows = try db.query("SELECT COALESCE(MIN(seq), 0) FROM switchyard.change_log", operation: "read change log start")
        return rows.count > 0 ? rows.int64(0, 0) : 0
    }

    func nodes() throws(StoreError) -> [NodeRecord] {
        let rows = try db.query(Self.nodeSelect + " ORDER BY name", operation: "load nodes")
        let labels = try allLabels()
        return (0..<rows.count).map { Self.node(rows, $0, labels: labels[rows.text($0, 0)] ?? [:]) }
    }

    /// Every placement. Inside the caller's transaction (its snapshot), through a cursor, so a
    /// million placements arrive in pieces rather than as one result held whole by libpq.
    func placements() throws(StoreError) -> [PlacementRecord] {
        try db.execute("DECLARE placements_load NO SCROLL CURSOR FOR " + Self.placementSelect, operation: "load placements")
        var out: [PlacementRecord] = []
        while true {
            let rows = try db.query("FETCH \(Self.loadBatch) FROM placements_load", operation: "load placements")
            if rows.count == 0 { break }
            // No reserveCapacity here: growing it to the exact size on each piece would copy
            // everything read so far once per piece (quadratic); appending grows geometrically.
            for i in 0..<rows.count { out.append(Self.placement(rows, i)) }
        }
        try db.execute("CLOSE placements_load", operation: "load placements")
        return out
    }

    /// Rows per FETCH while loading placements.
    static let loadBatch = 20_000

    /// Every pod, by id (inside the caller's transaction). Pods number in the thousands, not
    /// millions like placements, so one result holds them.
    func pods() throws(StoreError) -> [PodRecord] {
        let rows = try db.query(Self.podSelect + " ORDER BY pod_id", operation: "load pods")
        return (0..<rows.count).map { Self.pod(rows, $0) }
    }

    func pod(id: String) throws(StoreError) -> PodRecord? {
        let rows = try db.query(Self.podSelect + " WHERE pod_id = $1", [id], operation: "read pod")
        return rows.count > 0 ? Self.pod(rows, 0) : nil
    }

    func node(named name: String) throws(StoreError) -> NodeRecord? {
        let rows = try db.query(Self.nodeSelect + " WHERE name = $1", [name], operation: "read node")
        guard rows.count > 0 else { return nil }
        return Self.node(rows, 0, labels: try labels(of: name))
    }

    func placement(pool: String, key: String) throws(StoreError) -> PlacementRecord? {
        let rows = try db.query(Self.placementSelect + " WHERE pool = $1 AND key = $2", [pool, key], operation: "read placement")
        return rows.count > 0 ? Self.placement(rows, 0) : nil
    }

    /// Log rows after `cursor`, oldest first: (seq, writer, kind, pool, name, at).
    func log(after cursor: Int64, limit: Int64) throws(StoreError) -> [ChangeLogEntry] {
        let rows = try db.query("""
            SELECT seq, writer, kind, pool, name, at FROM switchyard.change_log WHERE seq > $1 ORDER BY seq LIMIT $2
            """, [String(cursor), String(limit)], operation: "read change log")
        return (0..<rows.count).map {
            ChangeLogEntry(seq: rows.int64($0, 0), writer: rows.text($0, 1), kind: rows.text($0, 2),
                           pool: rows.text($0, 3), name: rows.text($0, 4), at: rows.int64($0, 5))
        }
    }

    /// Labels are decoded by the server (`jsonb_each_text`), so the store needs no JSON parser.
    private func allLabels() throws(StoreError) -> [String: [String: String]] {
        let rows = try db.query("SELECT n.name, l.key, l.value FROM switchyard.nodes n, jsonb_each_text(n.labels) l",
                                operation: "load labels")
        var out: [String: [String: String]] = [:]
        for i in 0..<rows.count { out[rows.text(i, 0), default: [:]][rows.text(i, 1)] = rows.text(i, 2) }
        return out
    }

    private func labels(of name: String) throws(StoreError) -> [String: String] {
        let rows = try db.query("SELECT l.key, l.value FROM switchyard.nodes n, jsonb_each_text(n.labels) l WHERE n.name = $1",
                                [name], operation: "read labels")
        var out: [String: String] = [:]
        for i in 0..<rows.count { out[rows.text(i, 0)] = rows.text(i, 1) }
        return out
    }

    static func node(_ r: PGRows, _ i: Int, labels: [String: String]) -> NodeRecord {
        NodeRecord(
            name: r.text(i, 0), pool: r.text(i, 1), address: r.text(i, 2), previewBaseURL: r.text(i, 3),
            apiBaseURL: r.text(i, 4), enabled: r.bool(i, 5), weight: Int(r.int64(i, 6)),
            capacity: Int(r.int64(i, 7)), labels: labels, lastHeartbeat: r.int64(i, 8),
            isStatic: r.bool(i, 9), createdAt: r.int64(i, 10), updatedAt: r.int64(i, 11))
    }

    /// A `pods` row (columns in `podColumns` order); the CHECKs keep status and progress valid.
    static func pod(_ r: PGRows, _ i: Int) -> PodRecord {
        PodRecord(
            id: r.text(i, 0), baseURL: r.text(i, 1), accountID: r.text(i, 2), nodeID: r.text(i, 3),
            migrationStatus: r.isNull(i, 4) ? nil : PodMigrationStatus(rawValue: r.text(i, 4)),
            migrationTargetNode: r.isNull(i, 5) ? nil : r.text(i, 5), migrationProgress: Int(r.int64(i, 6)),
            createdAt: r.int64(i, 7), updatedAt: r.int64(i, 8))
    }

    static func placement(_ r: PGRows, _ i: Int) -> PlacementRecord {
        // host_port is CHECKed to 0...65535, so the conversion cannot trap on stored data.
        PlacementRecord(
            pool: r.text(i, 0), key: r.text(i, 1), node: r.text(i, 2), hostPort: UInt16(r.int64(i, 3)),
            lastActive: r.int64(i, 4), createdAt: r.int64(i, 5), updatedAt: r.int64(i, 6))
    }
}

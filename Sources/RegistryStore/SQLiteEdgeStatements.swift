import RouteResolver

/// The `edges` table's statements on one SQLite connection (schema v4): the store's writes and
/// start-up read, and the follower's reads of one row or all of them. Hostnames are stored as
/// one comma-separated text (DNS names hold no comma; the registry validates them again).
final class SQLiteEdgeStatements {
    static let columns = """
        edge_id, hostnames, token_hash, mode, mode_reason, mode_changed_at, public_address,
        failed_probes, tunnel_center, tunnel_seen_at, enabled, created_at, updated_at
        """

    let upsert: SQLiteStatement
    let delete: SQLiteStatement
    let selectOne: SQLiteStatement
    let selectAll: SQLiteStatement

    init(_ db: SQLiteConnection) throws(StoreError) {
        // The registry's record is authoritative, as for nodes and pods: every column is written.
        upsert = try db.prepare("""
            INSERT INTO edges (\(Self.columns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
            ON CONFLICT (edge_id) DO UPDATE SET
                hostnames = excluded.hostnames, token_hash = excluded.token_hash, mode = excluded.mode,
                mode_reason = excluded.mode_reason, mode_changed_at = excluded.mode_changed_at,
                public_address = excluded.public_address, failed_probes = excluded.failed_probes,
                tunnel_center = excluded.tunnel_center, tunnel_seen_at = excluded.tunnel_seen_at,
                enabled = excluded.enabled, created_at = excluded.created_at, updated_at = excluded.updated_at
            """, operation: "upsert edge")
        delete = try db.prepare("DELETE FROM edges WHERE edge_id = ?1", operation: "delete edge")
        selectOne = try db.prepare("SELECT \(Self.columns) FROM edges WHERE edge_id = ?1", operation: "read edge")
        selectAll = try db.prepare("SELECT \(Self.columns) FROM edges ORDER BY edge_id", operation: "load edges")
    }

    func write(_ e: EdgeRecord) throws(StoreError) {
        let s = upsert
        s.bind(1, e.id)
        s.bind(2, e.hostnames.joined(separator: ","))
        s.bind(3, e.tokenHash)
        s.bind(4, e.mode.rawValue)
        s.bind(5, e.modeReason)
        s.bind(6, e.modeChangedAt)
        s.bind(7, e.publicAddress)
        s.bind(8, Int64(e.failedProbes))
        s.bind(9, e.tunnelCenter)
        s.bind(10, e.tunnelSeenAt)
        s.bind(11, e.enabled)
        s.bind(12, e.createdAt)
        s.bind(13, e.updatedAt)
        try s.run()
    }

    func remove(_ id: String) throws(StoreError) {
        delete.bind(1, id)
        try delete.run()
    }

    /// The row of `id` as it is now; nil when there is none.
    func read(_ id: String) throws(StoreError) -> EdgeRecord? {
        let s = selectOne
        defer { s.reset() }
        s.bind(1, id)
        return try s.step() ? Self.record(s) : nil
    }

    func readAll() throws(StoreError) -> [EdgeRecord] {
        let s = selectAll
        defer { s.reset() }
        var out: [EdgeRecord] = []
        while try s.step() { out.append(Self.record(s)) }
        return out
    }

    /// A row in `columns` order. The CHECK keeps `mode` to the two values.
    static func record(_ s: SQLiteStatement) -> EdgeRecord {
        EdgeRecord(id: s.text(0), hostnames: s.text(1).split(separator: ",").map(String.init), tokenHash: s.text(2),
                   mode: EdgeMode(rawValue: s.text(3)) ?? .proxy, modeReason: s.text(4), modeChangedAt: s.int64(5),
                   publicAddress: s.text(6), failedProbes: Int(s.int64(7)), tunnelCenter: s.text(8),
                   tunnelSeenAt: s.int64(9), enabled: s.int64(10) != 0, createdAt: s.int64(11), updatedAt: s.int64(12))
    }
}

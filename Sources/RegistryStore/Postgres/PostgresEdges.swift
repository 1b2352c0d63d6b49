import RouteResolver

/// The `switchyard.edges` table (schema v4): its write statements and reads, as
/// `SQLiteEdgeStatements` on SQLite (same columns, hostnames comma-separated).
enum PostgresEdgeSQL {
    static let columns = SQLiteEdgeStatements.columns

    /// The write of an edge's row and the log row it names (see `PostgresStatements.statement`).
    static func upsert(_ e: EdgeRecord) -> (String, [String?], String, String, String) {
        ("""
            INSERT INTO switchyard.edges (\(columns))
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (edge_id) DO UPDATE SET
                hostnames = excluded.hostnames, token_hash = excluded.token_hash, mode = excluded.mode,
                mode_reason = excluded.mode_reason, mode_changed_at = excluded.mode_changed_at,
                public_address = excluded.public_address, failed_probes = excluded.failed_probes,
                tunnel_center = excluded.tunnel_center, tunnel_seen_at = excluded.tunnel_seen_at,
                enabled = excluded.enabled, created_at = excluded.created_at, updated_at = excluded.updated_at
            RETURNING 1
            """, [e.id, e.hostnames.joined(separator: ","), e.tokenHash, e.mode.rawValue, e.modeReason, String(e.modeChangedAt),
                  e.publicAddress, String(e.failedProbes), e.tunnelCenter, String(e.tunnelSeenAt), e.enabled ? "t" : "f",
                  String(e.createdAt), String(e.updatedAt)], "edge", "", e.id)
    }

    static func delete(_ id: String) -> (String, [String?], String, String, String) {
        ("DELETE FROM switchyard.edges WHERE edge_id = $1 RETURNING 1", [id], "edge", "", id)
    }
}

extension PostgresReader {
    static let edgeSelect = "SELECT \(PostgresEdgeSQL.columns) FROM switchyard.edges"

    /// Every edge, by id (inside the caller's transaction).
    func edges() throws(StoreError) -> [EdgeRecord] {
        let rows = try db.query(Self.edgeSelect + " ORDER BY edge_id", operation: "load edges")
        return (0..<rows.count).map { Self.edge(rows, $0) }
    }

    func edge(id: String) throws(StoreError) -> EdgeRecord? {
        let rows = try db.query(Self.edgeSelect + " WHERE edge_id = $1", [id], operation: "read edge")
        return rows.count > 0 ? Self.edge(rows, 0) : nil
    }

    static func edge(_ r: PGRows, _ i: Int) -> EdgeRecord {
        EdgeRecord(id: r.text(i, 0), hostnames: r.text(i, 1).split(separator: ",").map(String.init), tokenHash: r.text(i, 2),
                   mode: EdgeMode(rawValue: r.text(i, 3)) ?? .proxy, modeReason: r.text(i, 4), modeChangedAt: r.int64(i, 5),
                   publicAddress: r.text(i, 6), failedProbes: Int(r.int64(i, 7)), tunnelCenter: r.text(i, 8),
                   tunnelSeenAt: r.int64(i, 9), enabled: r.bool(i, 10), createdAt: r.int64(i, 11), updatedAt: r.int64(i, 12))
    }
}

import RouteResolver

/// One step of the schema's history. Applied once, in order, each in its own transaction; the
/// `schema_version` table records which steps a database has.
struct SchemaMigration: Sendable {
    let version: Int
    let name: String
    let sql: String
}

/// The store's schema, as an ordered list of migrations. Never edit a released step: append one.
enum Schema {
    static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, name: "nodes and placements", sql: """
            -- STRICT: a wrong type is an error, not a silent conversion.
            -- WITHOUT ROWID: rows are small and always found by their text primary key, so the
            -- table is the key's B-tree (no second index from rowid to key).
            CREATE TABLE nodes (
                name             TEXT NOT NULL PRIMARY KEY,
                pool             TEXT NOT NULL,
                address          TEXT NOT NULL,
                preview_base_url TEXT NOT NULL DEFAULT '',
                api_base_url     TEXT NOT NULL DEFAULT '',
                enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
                weight           INTEGER NOT NULL DEFAULT 100 CHECK (weight >= 0),
                capacity         INTEGER NOT NULL DEFAULT 0 CHECK (capacity >= 0),
                -- Labels are a JSON object in the node's row: they are read and replaced only
                -- together with the node, nodes number in the hundreds, and affinity is decided
                -- in memory, so a side table would add joins and delete-reinsert for nothing.
                labels           TEXT NOT NULL DEFAULT '{}'
                                 CHECK (json_valid(labels) AND json_type(labels) = 'object'),
                last_heartbeat   INTEGER NOT NULL DEFAULT 0,
                is_static        INTEGER NOT NULL DEFAULT 0 CHECK (is_static IN (0, 1)),
                created_at       INTEGER NOT NULL,
                updated_at       INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID;

            CREATE TABLE placements (
                pool        TEXT NOT NULL,
                key         TEXT NOT NULL,
                -- A placement must name a stored node, and a node that still holds placements
                -- cannot be deleted: drain it first. Checked per statement (not deferred), so
                -- one bad change never fails a whole batch at COMMIT.
                node        TEXT NOT NULL REFERENCES nodes (name) ON DELETE RESTRICT,
                host_port   INTEGER NOT NULL DEFAULT 0 CHECK (host_port BETWEEN 0 AND 65535),
                last_active INTEGER NOT NULL DEFAULT 0,
                created_at  INTEGER NOT NULL,
                updated_at  INTEGER NOT NULL,
                PRIMARY KEY (pool, key)
            ) STRICT, WITHOUT ROWID;

            -- Drains list a node's placements; the foreign key check on node delete uses it too.
            CREATE INDEX placements_by_node ON placements (node);
            """),
        SchemaMigration(version: 2, name: "change log", sql: """
            -- The change feed: one row per committed change, naming what changed (never the data:
            -- a follower re-reads the row, so it sees what the row is now). `writer` identifies
            -- the store instance that wrote it, so a follower skips its own changes. Rows older
            -- than the retention are pruned by the writers.
            CREATE TABLE change_log (
                seq    INTEGER PRIMARY KEY AUTOINCREMENT,
                writer TEXT NOT NULL,
                kind   TEXT NOT NULL CHECK (kind IN ('node', 'placement')),
                pool   TEXT NOT NULL DEFAULT '',
                name   TEXT NOT NULL,
                at     INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX change_log_by_time ON change_log (at);
            """),
        SchemaMigration(version: 3, name: "pods", sql: """
            -- Data pods (issue 14), one row each: which center node owns it and how its last
            -- migration went. No foreign key to nodes: `node_id` names a center by node name, and
            -- pods are imported before their center first registers (and outlive a center's row
            -- being deleted and created again); routing treats an unknown owner as down.
            CREATE TABLE pods (
                pod_id                TEXT NOT NULL PRIMARY KEY,
                base_url              TEXT NOT NULL DEFAULT '',
                account_id            TEXT NOT NULL DEFAULT '',
                node_id               TEXT NOT NULL,
                -- NULL: never migrated (a CHECK passes NULL).
                migration_status      TEXT CHECK (migration_status IN ('syncing', 'done')),
                migration_target_node TEXT,
                migration_progress    INTEGER NOT NULL DEFAULT 0 CHECK (migration_progress BETWEEN 0 AND 100),
                created_at            INTEGER NOT NULL,
                updated_at            INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID;
            -- Pods per center (the admin plane's counts, a center's pod list).
            CREATE INDEX pods_by_node ON pods (node_id);

            -- The change log must admit kind 'pod', and SQLite cannot alter a CHECK: the table is
            -- rebuilt (SQLite's documented 12-step way, inside this migration's transaction).
            -- Rows keep their seq, and AUTOINCREMENT's high-water mark (sqlite_sequence), which
            -- may be above every kept row after pruning, is carried over, so no number is ever
            -- handed out twice: followers' cursors stay valid across the upgrade.
            CREATE TABLE change_log_v3 (
                seq    INTEGER PRIMARY KEY AUTOINCREMENT,
                writer TEXT NOT NULL,
                kind   TEXT NOT NULL CHECK (kind IN ('node', 'placement', 'pod')),
                pool   TEXT NOT NULL DEFAULT '',
                name   TEXT NOT NULL,
                at     INTEGER NOT NULL
            ) STRICT;
            INSERT INTO change_log_v3 (seq, writer, kind, pool, name, at)
                SELECT seq, writer, kind, pool, name, at FROM change_log ORDER BY seq;
            DELETE FROM sqlite_sequence WHERE name = 'change_log_v3';
            INSERT INTO sqlite_sequence (name, seq)
                SELECT 'change_log_v3', seq FROM sqlite_sequence WHERE name = 'change_log';
            DROP TABLE change_log;
            -- RENAME also renames the table's sqlite_sequence row.
            ALTER TABLE change_log_v3 RENAME TO change_log;
            CREATE INDEX change_log_by_time ON change_log (at);
            """),
        SchemaMigration(version: 4, name: "edges", sql: """
            -- Edge nodes (issue 15), one row each: hostnames (comma-separated), the SHA-256 of
            -- the token, the mode and why, and the center holding its tunnel ('' for none), so
            -- every center knows where each edge's tunnel is.
            CREATE TABLE edges (
                edge_id         TEXT NOT NULL PRIMARY KEY,
                hostnames       TEXT NOT NULL,
                token_hash      TEXT NOT NULL DEFAULT '',
                mode            TEXT NOT NULL CHECK (mode IN ('direct', 'proxy')),
                mode_reason     TEXT NOT NULL DEFAULT '',
                mode_changed_at INTEGER NOT NULL DEFAULT 0,
                public_address  TEXT NOT NULL DEFAULT '',
                failed_probes   INTEGER NOT NULL DEFAULT 0,
                tunnel_center   TEXT NOT NULL DEFAULT '',
                tunnel_seen_at  INTEGER NOT NULL DEFAULT 0,
                enabled         INTEGER NOT NULL DEFAULT 1,
                created_at      INTEGER NOT NULL,
                updated_at      INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID;

            -- The change log must admit kind 'edge': rebuilt as in version 3.
            CREATE TABLE change_log_v4 (
                seq    INTEGER PRIMARY KEY AUTOINCREMENT,
                writer TEXT NOT NULL,
                kind   TEXT NOT NULL CHECK (kind IN ('node', 'placement', 'pod', 'edge')),
                pool   TEXT NOT NULL DEFAULT '',
                name   TEXT NOT NULL,
                at     INTEGER NOT NULL
            ) STRICT;
            INSERT INTO change_log_v4 (seq, writer, kind, pool, name, at)
                SELECT seq, writer, kind, pool, name, at FROM change_log ORDER BY seq;
            DELETE FROM sqlite_sequence WHERE name = 'change_log_v4';
            INSERT INTO sqlite_sequence (name, seq)
                SELECT 'change_log_v4', seq FROM sqlite_sequence WHERE name = 'change_log';
            DROP TABLE change_log;
            ALTER TABLE change_log_v4 RENAME TO change_log;
            CREATE INDEX change_log_by_time ON change_log (at);
            """),
    ]

    static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Brings the database up to the last of `migrations`. Safe to run on every open and from
    /// two processes at once: each step re-reads the version inside its write transaction.
    static func migrate(_ db: SQLiteConnection, migrations: [SchemaMigration] = Schema.migrations) throws(StoreError) {
        for (index, step) in migrations.enumerated() {
            precondition(step.version == index + 1, "schema migrations must be numbered 1, 2, 3, ...")
        }
        let supported = migrations.last?.version ?? 0
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_version (
                version    INTEGER NOT NULL PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at INTEGER NOT NULL
            ) STRICT
            """, operation: "create schema_version")
        let current = try currentVersion(db)
        if current > supported { throw .schemaTooNew(found: current, supported: supported) }

        for step in migrations where step.version > current {
            try db.execute("BEGIN IMMEDIATE", operation: "begin migration \(step.version)")
            do throws(StoreError) {
                // Another process may have applied it between our read and our write lock.
                let seen = try currentVersion(db)
                if seen > supported { throw StoreError.schemaTooNew(found: seen, supported: supported) }
                if seen < step.version {
                    try db.execute(step.sql, operation: "migration \(step.version) (\(step.name))")
                    let record = try db.prepare("""
                        INSERT INTO schema_version (version, name, applied_at)
                        VALUES (?1, ?2, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
                        """, operation: "record migration \(step.version)")
                    record.bind(1, Int64(step.version))
                    record.bind(2, step.name)
                    try record.run()
                }
                try db.execute("COMMIT", operation: "commit migration \(step.version)")
            } catch {
                // Nothing of a failed step stays behind; the error that stopped it is reported.
                try? db.execute("ROLLBACK", operation: "rollback migration \(step.version)")
                throw error
            }
        }
    }

    /// The highest applied migration; 0 for a new database.
    static func currentVersion(_ db: SQLiteConnection) throws(StoreError) -> Int {
        let query = try db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version",
                                   operation: "read schema_version")
        defer { query.reset() }
        guard try query.step() else { return 0 }
        return Int(query.int64(0))
    }
}

import RouteResolver

/// The PostgreSQL schema, in its own PostgreSQL schema `switchyard` (a database shared with other
/// applications keeps its own table names), as ordered migrations numbered like SQLite's
/// (`Schema`), so `schema_version` means the same in both engines.
enum PostgresSchema {
    /// The advisory lock migrations run under: two instances starting together apply each step
    /// once, the second waits and then finds it done.
    static let migrationLock: Int64 = 0x5377_6974_6368_0001
    /// The advisory transaction lock every write transaction takes first: writers commit one
    /// after another, so change-log sequence numbers are in commit order and a follower that
    /// read up to N has seen every change numbered up to N (no later commit gets a lower one).
    static let writeLock: Int64 = 0x5377_6974_6368_0002
    /// The channel every commit notifies (payload: the last change-log number it wrote).
    static let channel = "switchyard_changes"

    static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, name: "nodes and placements", sql: """
            CREATE TABLE switchyard.nodes (
                name             TEXT NOT NULL PRIMARY KEY,
                pool             TEXT NOT NULL,
                address          TEXT NOT NULL,
                preview_base_url TEXT NOT NULL DEFAULT '',
                api_base_url     TEXT NOT NULL DEFAULT '',
                enabled          BOOLEAN NOT NULL DEFAULT TRUE,
                weight           INTEGER NOT NULL DEFAULT 100 CHECK (weight >= 0),
                capacity         INTEGER NOT NULL DEFAULT 0 CHECK (capacity >= 0),
                labels           JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
                last_heartbeat   BIGINT NOT NULL DEFAULT 0,
                is_static        BOOLEAN NOT NULL DEFAULT FALSE,
                created_at       BIGINT NOT NULL,
                updated_at       BIGINT NOT NULL
            );
            CREATE TABLE switchyard.placements (
                pool        TEXT NOT NULL,
                key         TEXT NOT NULL,
                node        TEXT NOT NULL REFERENCES switchyard.nodes (name) ON DELETE RESTRICT,
                host_port   INTEGER NOT NULL DEFAULT 0 CHECK (host_port BETWEEN 0 AND 65535),
                last_active BIGINT NOT NULL DEFAULT 0,
                created_at  BIGINT NOT NULL,
                updated_at  BIGINT NOT NULL,
                PRIMARY KEY (pool, key)
            );
            CREATE INDEX placements_by_node ON switchyard.placements (node);
            """),
        SchemaMigration(version: 2, name: "change log", sql: """
            CREATE TABLE switchyard.change_log (
                seq    BIGSERIAL PRIMARY KEY,
                writer TEXT NOT NULL,
                kind   TEXT NOT NULL CHECK (kind IN ('node', 'placement')),
                pool   TEXT NOT NULL DEFAULT '',
                name   TEXT NOT NULL,
                at     BIGINT NOT NULL
            );
            CREATE INDEX change_log_by_time ON switchyard.change_log (at);
            """),
        SchemaMigration(version: 3, name: "pods", sql: """
            -- Data pods (issue 14). No foreign key to nodes: `node_id` names a center by node
            -- name, and pods are imported before their center first registers (and outlive a
            -- center's row being deleted and created again); routing treats an unknown owner as down.
            CREATE TABLE switchyard.pods (
                pod_id                TEXT NOT NULL PRIMARY KEY,
                base_url              TEXT NOT NULL DEFAULT '',
                account_id            TEXT NOT NULL DEFAULT '',
                node_id               TEXT NOT NULL,
                -- NULL: never migrated (a CHECK passes NULL).
                migration_status      TEXT CHECK (migration_status IN ('syncing', 'done')),
                migration_target_node TEXT,
                migration_progress    INTEGER NOT NULL DEFAULT 0 CHECK (migration_progress BETWEEN 0 AND 100),
                created_at            BIGINT NOT NULL,
                updated_at            BIGINT NOT NULL
            );
            CREATE INDEX pods_by_node ON switchyard.pods (node_id);
            -- The change log admits kind 'pod'. v2's column CHECK got PostgreSQL's generated name
            -- <table>_<column>_check; dropped by that name without IF EXISTS, so a database whose
            -- constraint is not the one v2 made fails this step (and keeps v2) instead of ending
            -- with two checks. Re-adding it scans the log, which holds minutes of changes.
            ALTER TABLE switchyard.change_log DROP CONSTRAINT change_log_kind_check;
            ALTER TABLE switchyard.change_log ADD CONSTRAINT change_log_kind_check
                CHECK (kind IN ('node', 'placement', 'pod'));
            """),
        SchemaMigration(version: 4, name: "edges", sql: """
            -- Edge nodes (issue 15), as in the SQLite schema's version 4.
            CREATE TABLE switchyard.edges (
                edge_id         TEXT NOT NULL PRIMARY KEY,
                hostnames       TEXT NOT NULL,
                token_hash      TEXT NOT NULL DEFAULT '',
                mode            TEXT NOT NULL CHECK (mode IN ('direct', 'proxy')),
                mode_reason     TEXT NOT NULL DEFAULT '',
                mode_changed_at BIGINT NOT NULL DEFAULT 0,
                public_address  TEXT NOT NULL DEFAULT '',
                failed_probes   INTEGER NOT NULL DEFAULT 0,
                tunnel_center   TEXT NOT NULL DEFAULT '',
                tunnel_seen_at  BIGINT NOT NULL DEFAULT 0,
                enabled         BOOLEAN NOT NULL DEFAULT TRUE,
                created_at      BIGINT NOT NULL,
                updated_at      BIGINT NOT NULL
            );
            ALTER TABLE switchyard.change_log DROP CONSTRAINT change_log_kind_check;
            ALTER TABLE switchyard.change_log ADD CONSTRAINT change_log_kind_check
                CHECK (kind IN ('node', 'placement', 'pod', 'edge'));
            """),
    ]

    static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Brings the database up to the last migration, under the migration lock; each step in its
    /// own transaction (PostgreSQL's DDL is transactional: a failed step leaves nothing behind).
    static func migrate(_ db: PGConnection, migrations: [SchemaMigration] = PostgresSchema.migrations) throws(StoreError) {
        for (index, step) in migrations.enumerated() {
            precondition(step.version == index + 1, "schema migrations must be numbered 1, 2, 3, ...")
        }
        let supported = migrations.last?.version ?? 0
        try db.execute("SELECT pg_advisory_lock(\(migrationLock))", operation: "take the migration lock")
        defer { try? db.execute("SELECT pg_advisory_unlock(\(migrationLock))", operation: "release the migration lock") }
        try db.execute("""
            CREATE SCHEMA IF NOT EXISTS switchyard;
            CREATE TABLE IF NOT EXISTS switchyard.schema_version (
                version    INTEGER NOT NULL PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )
            """, operation: "create schema_version")
        let current = try currentVersion(db)
        if current > supported { throw .schemaTooNew(found: current, supported: supported) }
        for step in migrations where step.version > current {
            do throws(StoreError) {
                try db.execute("BEGIN", operation: "begin migration \(step.version)")
                try db.execute(step.sql, operation: "migration \(step.version) (\(step.name))")
                _ = try db.query("""
                    INSERT INTO switchyard.schema_version (version, name, applied_at)
                    VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                    """, [String(step.version), step.name], operation: "record migration \(step.version)")
                try db.execute("COMMIT", operation: "commit migration \(step.version)")
            } catch {
                try? db.execute("ROLLBACK", operation: "rollback migration \(step.version)")
                throw error
            }
        }
    }

    static func currentVersion(_ db: PGConnection) throws(StoreError) -> Int {
        let rows = try db.query("SELECT COALESCE(MAX(version), 0) FROM switchyard.schema_version", operation: "read schema_version")
        return rows.count > 0 ? Int(rows.int64(0, 0)) : 0
    }
}

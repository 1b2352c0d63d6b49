import RouteResolver
import CSQLite

/// The prepared statements of one SQLite store connection, and the mapping between records and
/// rows: the SQLite engine of `StoreCore`. Prepared once at open and reused for every change (a
/// statement compile costs more than the insert it runs).
final class StoreStatements: StoreEngine {
    private let connection: SQLiteConnection
    private let begin: SQLiteStatement
    private let beginRead: SQLiteStatement
    private let commit: SQLiteStatement
    private let rollback: SQLiteStatement
    private let upsertNode: SQLiteStatement
    private let deleteNode: SQLiteStatement
    private let upsertPlacement: SQLiteStatement
    private let deletePlacement: SQLiteStatement
    private let insertPlacement: SQLiteStatement
    private let updateHostPort: SQLiteStatement
    private let movePlacement: SQLiteStatement
    private let raiseHeartbeat: SQLiteStatement
    private let upsertPod: SQLiteStatement
    private let deletePod: SQLiteStatement
    private let selectPods: SQLiteStatement
    private let selectNodes: SQLiteStatement
    private let selectLabels: SQLiteStatement
    private let selectPlacements: SQLiteStatement
    private let countPlacements: SQLiteStatement
    private let selectVersion: SQLiteStatement
    private let logChange: SQLiteStatement
    private let pruneLog: SQLiteStatement
    private let selectLastSeq: SQLiteStatement
    private let edges: SQLiteEdgeStatements
    /// This store instance's id in `change_log.writer`.
    let writerID: String

    init(_ db: SQLiteConnection, writerID: String) throws(StoreError) {
        connection = db
        self.writerID = writerID
        // IMMEDIATE takes the write lock up front: a deferred transaction that upgrades later can
        // fail with SQLITE_BUSY without the busy handler being able to help.
        begin = try db.prepare("BEGIN IMMEDIATE", operation: "begin")
        // A deferred transaction for reading: one snapshot for nodes and placements together.
        beginRead = try db.prepare("BEGIN", operation: "begin read")
        commit = try db.prepare("COMMIT", operation: "commit")
        rollback = try db.prepare("ROLLBACK", operation: "rollback")
        // The store mirrors the in-memory registry, which is authoritative: an upsert overwrites
        // every column, created_at included.
        upsertNode = try db.prepare("""
            INSERT INTO nodes (name, pool, address, preview_base_url, api_base_url, enabled, weight,
                               capacity, labels, last_heartbeat, is_static, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
            ON CONFLICT (name) DO UPDATE SET
                pool = excluded.pool, address = excluded.address,
                preview_base_url = excluded.preview_base_url, api_base_url = excluded.api_base_url,
                enabled = excluded.enabled, weight = excluded.weight, capacity = excluded.capacity,
                labels = excluded.labels,
                -- Freshness only moves forward: an upsert racing another writer's heartbeat keeps it.
                last_heartbeat = MAX(last_heartbeat, excluded.last_heartbeat),
                is_static = excluded.is_static, created_at = excluded.created_at,
                updated_at = excluded.updated_at
            """, operation: "upsert node")
        deleteNode = try db.prepare("DELETE FROM nodes WHERE name = ?1", operation: "delete node")
        upsertPlacement = try db.prepare("""
            INSERT INTO placements (pool, key, node, host_port, last_active, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            ON CONFLICT (pool, key) DO UPDATE SET
                node = excluded.node, host_port = excluded.host_port,
                last_active = excluded.last_active, created_at = excluded.created_at,
                updated_at = excluded.updated_at
            """, operation: "upsert placement")
        deletePlacement = try db.prepare("DELETE FROM placements WHERE pool = ?1 AND key = ?2",
                                         operation: "delete placement")
        insertPlacement = try db.prepare("""
            INSERT INTO placements (pool, key, node, host_port, last_active, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            ON CONFLICT (pool, key) DO NOTHING
            """, operation: "insert placement")
        updateHostPort = try db.prepare("""
            UPDATE placements SET host_port = ?4, last_active = ?5, updated_at = ?7
            WHERE pool = ?1 AND key = ?2 AND node = ?3
            """, operation: "update host port")
        movePlacement = try db.prepare("""
            UPDATE placements SET node = ?3, host_port = ?4, last_active = ?5, updated_at = ?7
            WHERE pool = ?1 AND key = ?2 AND node = ?8
            """, operation: "move placement")
        raiseHeartbeat = try db.prepare("UPDATE nodes SET last_heartbeat = MAX(last_heartbeat, ?2) WHERE name = ?1",
                                        operation: "raise heartbeat")
        upsertPod = try db.prepare("""
            INSERT INTO pods (\(Self.podColumns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            ON CONFLICT (pod_id) DO UPDATE SET
                base_url = excluded.base_url, account_id = excluded.account_id, node_id = excluded.node_id,
                migration_status = excluded.migration_status,
                migration_target_node = excluded.migration_target_node,
                migration_progress = excluded.migration_progress,
                created_at = excluded.created_at, updated_at = excluded.updated_at
            """, operation: "upsert pod")
        deletePod = try db.prepare("DELETE FROM pods WHERE pod_id = ?1", operation: "delete pod")
        selectPods = try db.prepare("SELECT \(Self.podColumns) FROM pods ORDER BY pod_id", operation: "load pods")
        selectNodes = try db.prepare("""
            SELECT name, pool, address, preview_base_url, api_base_url, enabled, weight, capacity,
                   labels, last_heartbeat, is_static, created_at, updated_at
            FROM nodes ORDER BY name
            """, operation: "load nodes")
        // json_each decodes the labels object, so the store needs no JSON parser of its own.
        selectLabels = try db.prepare("SELECT key, value FROM json_each(?1)", operation: "decode labels")
        selectPlacements = try db.prepare("""
            SELECT pool, key, node, host_port, last_active, created_at, updated_at FROM placements
            """, operation: "load placements")
        // Counting walks the smaller by-node index; it lets loadAll size its array once.
        countPlacements = try db.prepare("SELECT count(*) FROM placements", operation: "count placements")
        selectVersion = try db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version",
                                       operation: "read schema_version")
        logChange = try db.prepare("INSERT INTO change_log (writer, kind, pool, name, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                                   operation: "log change")
        pruneLog = try db.prepare("DELETE FROM change_log WHERE at < ?1", operation: "prune change log")
        selectLastSeq = try db.prepare(Self.lastSeqSQL, operation: "read change log end")
        edges = try SQLiteEdgeStatements(db)
    }

    // MARK: Transactions

    func beginTransaction() throws(StoreError) { try begin.run() }
    func beginReadTransaction() throws(StoreError) { try beginRead.run() }
    func commitTransaction() throws(StoreError) { try commit.run() }

    /// Undoes an open transaction. Its own failure is ignored: when COMMIT fails SQLite may
    /// already have rolled back, and there is nothing better to report than the first error.
    func rollbackTransaction() {
        try? rollback.run()
    }

    /// Closes the connection; the statements keep it as a zombie until they are finalized.
    func close() {
        connection.close()
    }

    // MARK: Changes

    /// Writes `change` and its change-log row (after it, so a change SQLite refuses is not logged);
    /// returns the row's sequence number.
    @discardableResult
    func apply(_ change: StoreChange, at now: Int64) throws(StoreError) -> Int64 {
        try write(change)
        // A move whose placement already left its node changed nothing: nothing to log.
        if case .movePlacement = change, connection.changes == 0 { return 0 }
        let log = logChange
        switch change {
        case .insertPlacement, .setHostPort, .heartbeat:
            // Conditional writes may have lost a race: every instance, the writer included,
            // reads the row back (see SQLiteFollower).
            log.bind(1, "*")
        default:
            log.bind(1, writerID)
        }
        switch change {
        case .upsertNode(let node): log.bind(2, "node"); log.bind(3, ""); log.bind(4, node.name)
        case .deleteNode(let name): log.bind(2, "node"); log.bind(3, ""); log.bind(4, name)
        case .upsertPlacement(let p): log.bind(2, "placement"); log.bind(3, p.pool); log.bind(4, p.key)
        case .deletePlacement(let pool, let key): log.bind(2, "placement"); log.bind(3, pool); log.bind(4, key)
        case .insertPlacement(let p), .setHostPort(let p), .movePlacement(let p, _):
            log.bind(2, "placement"); log.bind(3, p.pool); log.bind(4, p.key)
        case .heartbeat(let name, _): log.bind(2, "node"); log.bind(3, ""); log.bind(4, name)
        case .upsertPod(let pod): log.bind(2, "pod"); log.bind(3, ""); log.bind(4, pod.id)
        case .deletePod(let id): log.bind(2, "pod"); log.bind(3, ""); log.bind(4, id)
        case .upsertEdge(let e): log.bind(2, "edge"); log.bind(3, ""); log.bind(4, e.id)
        case .deleteEdge(let id): log.bind(2, "edge"); log.bind(3, ""); log.bind(4, id)
        }
        log.bind(5, now)
        try log.run()
        return log.lastInsertRowID
    }

    /// Drops change-log rows written before `cutoff` (Unix ms).
    func pruneChangeLog(before cutoff: Int64) throws(StoreError) {
        pruneLog.bind(1, cutoff)
        try pruneLog.run()
    }

    /// The last change-log sequence number ever assigned (AUTOINCREMENT keeps it in
    /// sqlite_sequence even when the rows are pruned), so the next row is this + 1.
    static let lastSeqSQL = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0)"

    /// The last change-log sequence number assigned (0: none yet).
    func lastChangeSeq() throws(StoreError) -> Int64 {
        defer { selectLastSeq.reset() }
        return try selectLastSeq.step() ? selectLastSeq.int64(0) : 0
    }

    private func write(_ change: StoreChange) throws(StoreError) {
        switch change {
        case .upsertNode(let node):
            let s = upsertNode
            s.bind(1, node.name)
            s.bind(2, node.pool)
            s.bind(3, node.address)
            s.bind(4, node.previewBaseURL)
            s.bind(5, node.apiBaseURL)
            s.bind(6, node.enabled)
            s.bind(7, Int64(node.weight))
            s.bind(8, Int64(node.capacity))
            s.bind(9, LabelsJSON.encode(node.labels))
            s.bind(10, node.lastHeartbeat)
            s.bind(11, node.isStatic)
            s.bind(12, node.createdAt)
            s.bind(13, node.updatedAt)
            try s.run()
        case .deleteNode(let name):
            deleteNode.bind(1, name)
            try deleteNode.run()
        case .upsertPlacement(let placement):
            try run(upsertPlacement, placement)
        case .insertPlacement(let placement):
            try run(insertPlacement, placement)
        case .setHostPort(let placement):
            try run(updateHostPort, placement)
        case .movePlacement(let placement, let from):
            movePlacement.bind(8, from)
            try run(movePlacement, placement)
        case .heartbeat(let name, let at):
            raiseHeartbeat.bind(1, name)
            raiseHeartbeat.bind(2, at)
            try raiseHeartbeat.run()
        case .deletePlacement(let pool, let key):
            deletePlacement.bind(1, pool)
            deletePlacement.bind(2, key)
            try deletePlacement.run()
        case .upsertPod(let pod):
            let s = upsertPod
            s.bind(1, pod.id)
            s.bind(2, pod.baseURL)
            s.bind(3, pod.accountID)
            s.bind(4, pod.nodeID)
            s.bind(5, pod.migrationStatus?.rawValue)
            s.bind(6, pod.migrationTargetNode)
            s.bind(7, Int64(pod.migrationProgress))
            s.bind(8, pod.createdAt)
            s.bind(9, pod.updatedAt)
            try s.run()
        case .deletePod(let id):
            deletePod.bind(1, id)
            try deletePod.run()
        case .upsertEdge(let e):
            try edges.write(e)
        case .deleteEdge(let id):
            try edges.remove(id)
        }
    }

    /// Binds a placement's columns in table order (?1 pool ... ?7 updated_at) and runs `s`.
    private func run(_ s: SQLiteStatement, _ placement: PlacementRecord) throws(StoreError) {
        s.bind(1, placement.pool)
        s.bind(2, placement.key)
        s.bind(3, placement.node)
        s.bind(4, Int64(placement.hostPort))
        s.bind(5, placement.lastActive)
        s.bind(6, placement.createdAt)
        s.bind(7, placement.updatedAt)
        try s.run()
    }

    // MARK: Loading

    func loadNodes() throws(StoreError) -> [NodeRecord] {
        let s = selectNodes
        defer { s.reset() }
        var nodes: [NodeRecord] = []
        while try s.step() { nodes.append(try Self.node(s, labels: decodeLabels)) }
        return nodes
    }

    /// A `nodes` row (columns in `selectNodes` order) as a record.
    static func node(_ s: SQLiteStatement, labels: (String) throws(StoreError) -> [String: String]) throws(StoreError) -> NodeRecord {
        NodeRecord(
            name: s.text(0), pool: s.text(1), address: s.text(2), previewBaseURL: s.text(3),
            apiBaseURL: s.text(4), enabled: s.int64(5) != 0, weight: Int(s.int64(6)),
            capacity: Int(s.int64(7)), labels: try labels(s.text(8)),
            lastHeartbeat: s.int64(9), isStatic: s.int64(10) != 0, createdAt: s.int64(11),
            updatedAt: s.int64(12))
    }

    /// A `placements` row (columns in `selectPlacements` order) as a record.
    static func placement(_ s: SQLiteStatement) -> PlacementRecord {
        // host_port is CHECKed to 0...65535, so the conversion cannot trap on stored data.
        PlacementRecord(
            pool: s.text(0), key: s.text(1), node: s.text(2), hostPort: UInt16(s.int64(3)),
            lastActive: s.int64(4), createdAt: s.int64(5), updatedAt: s.int64(6))
    }

    /// The `pods` columns in table order, as every pod read selects them.
    static let podColumns = """
        pod_id, base_url, account_id, node_id, migration_status, migration_target_node, migration_progress, \
        created_at, updated_at
        """

    /// A `pods` row (columns in `podColumns` order) as a record. The CHECKs keep the status to
    /// the known values and the progress to 0...100.
    static func pod(_ s: SQLiteStatement) -> PodRecord {
        PodRecord(
            id: s.text(0), baseURL: s.text(1), accountID: s.text(2), nodeID: s.text(3),
            migrationStatus: s.optionalText(4).flatMap(PodMigrationStatus.init(rawValue:)),
            migrationTargetNode: s.optionalText(5), migrationProgress: Int(s.int64(6)),
            createdAt: s.int64(7), updatedAt: s.int64(8))
    }

    /// Every edge, by id.
    func loadEdges() throws(StoreError) -> [EdgeRecord] { try edges.readAll() }

    /// Every pod, by id.
    func loadPods() throws(StoreError) -> [PodRecord] {
        let s = selectPods
        defer { s.reset() }
        var pods: [PodRecord] = []
        while try s.step() { pods.append(Self.pod(s)) }
        return pods
    }

    func loadPlacements() throws(StoreError) -> [PlacementRecord] {
        var placements: [PlacementRecord] = []
        do {
            defer { countPlacements.reset() }
            if try countPlacements.step() { placements.reserveCapacity(Int(countPlacements.int64(0))) }
        }
        let s = selectPlacements
        defer { s.reset() }
        while try s.step() { placements.append(Self.placement(s)) }
        return placements
    }

    func schemaVersion() throws(StoreError) -> Int {
        defer { selectVersion.reset() }
        return try selectVersion.step() ? Int(selectVersion.int64(0)) : 0
    }

    func decodeLabels(_ json: String) throws(StoreError) -> [String: String] {
        if json == "{}" { return [:] }
        let s = selectLabels
        defer { s.reset() }
        s.bind(1, json)
        var labels: [String: String] = [:]
        while try s.step() { labels[s.text(0)] = s.text(1) }
        return labels
    }
}

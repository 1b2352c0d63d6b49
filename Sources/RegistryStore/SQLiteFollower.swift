import CSQLite
import Glibc
import RouteResolver

/// The SQLite side of the change feed: a thread with a connection of its own that notices
/// commits by other connections (`PRAGMA data_version` changes when another connection, in this
/// process or another, committed to the file) and reads the change log past its cursor.
///
/// For every logged change of another writer it re-reads the row as it is now: a node or
/// placement that exists becomes an upsert, one that does not a deletion. The log's payload is
/// a name, never data, so a follower cannot apply a stale or forged value. This instance's own
/// authoritative writes (upserts, deletions) are skipped — memory had them first — but its
/// conditional ones (insert-if-absent, a port while the placement is unmoved, a heartbeat) are
/// logged for everyone (writer `*`): when they lost a race, reading the row back is how this
/// instance learns what won. The registry skips rows this instance wrote after the read, or has
/// not committed yet (`RegistryStore.hasNewerWrites`; every event says how far the log stood in
/// its read). Changes are handed over in commit order, several commits
/// per batch when they come quickly. A follower that fell behind the log's retention reloads
/// everything (`.resync`).
final class SQLiteFollower: FeedFollower, @unchecked Sendable {
    // @unchecked: `stopping` is guarded by `lock`; everything else belongs to the thread.
    private let connection: SQLiteConnection
    private let dataVersion: SQLiteStatement
    private let selectLog: SQLiteStatement
    private let selectFirstSeq: SQLiteStatement
    private let selectNode: SQLiteStatement
    private let selectPlacement: SQLiteStatement
    private let selectPod: SQLiteStatement
    private let selectAllPods: SQLiteStatement
    private let edges: SQLiteEdgeStatements
    private let selectLabels: SQLiteStatement
    private let writerID: String
    private let selectAllNodes: SQLiteStatement
    private let selectAllPlacements: SQLiteStatement
    private let selectLastSeq: SQLiteStatement
    private var cursor: Int64
    private let handler: @Sendable (StoreFeedEvent) -> Void
    /// Told after every read how far the log stood in it (events or not), or that it failed.
    private let sink: any FeedSink
    private let lock = PThreadMutex()
    private let wake = PThreadCondition()
    private var stopping = false
    private var thread: pthread_t?
    private var failures = FeedFailures()
    /// How often `data_version` is checked; a check is one pragma on an idle connection.
    static let pollNanoseconds = 10_000_000
    /// Most log rows read per batch, so a burst is handed over in bounded pieces.
    static let batchLimit: Int64 = 10_000

    init(path: String, writerID: String, after cursor: Int64, sink: any FeedSink,
         handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws(StoreError) {
        connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 5_000)
        dataVersion = try connection.prepare("PRAGMA data_version", operation: "read data_version")
        selectLog = try connection.prepare(
            "SELECT seq, writer, kind, pool, name, at FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            operation: "read change log")
        selectFirstSeq = try connection.prepare("SELECT COALESCE(MIN(seq), 0) FROM change_log", operation: "read change log start")
        selectNode = try connection.prepare("""
            SELECT name, pool, address, preview_base_url, api_base_url, enabled, weight, capacity,
                   labels, last_heartbeat, is_static, created_at, updated_at
            FROM nodes WHERE name = ?1
            """, operation: "read node")
        selectPlacement = try connection.prepare("""
            SELECT pool, key, node, host_port, last_active, created_at, updated_at FROM placements
            WHERE pool = ?1 AND key = ?2
            """, operation: "read placement")
        selectPod = try connection.prepare("SELECT \(StoreStatements.podColumns) FROM pods WHERE pod_id = ?1",
                                           operation: "read pod")
        selectAllPods = try connection.prepare("SELECT \(StoreStatements.podColumns) FROM pods", operation: "reload pods")
        selectLabels = try connection.prepare("SELECT key, value FROM json_each(?1)", operation: "decode labels")
        selectAllNodes = try connection.prepare("""
            SELECT name, pool, address, preview_base_url, api_base_url, enabled, weight, capacity,
                   labels, last_heartbeat, is_static, created_at, updated_at
            FROM nodes ORDER BY name
            """, operation: "reload nodes")
        selectAllPlacements = try connection.prepare(
            "SELECT pool, key, node, host_port, last_active, created_at, updated_at FROM placements",
            operation: "reload placements")
        selectLastSeq = try connection.prepare(StoreStatements.lastSeqSQL, operation: "read change log end")
        edges = try SQLiteEdgeStatements(connection)
        self.writerID = writerID
        self.cursor = cursor
        self.handler = handler
        self.sink = sink
    }

    func start() throws(StoreError) {
        switch PThread.start({ self.run() }) {
        case .success(let t): thread = t
        case .failure(let e): throw .sqlite(code: SQLITE_ERROR, message: e.description, operation: "start follower")
        }
    }

    func stop() {
        lock.withLock { stopping = true }
        wake.signal()
        if let t = thread { pthread_join(t, nil) }
        thread = nil
        connection.close()
    }

    private func run() {
        var lastVersion: Int64 = -1
        while true {
            let stop = lock.withLock { () -> Bool in
                if !stopping { wake.wait(lock, nanoseconds: Self.pollNanoseconds) }
                return stopping
            }
            if stop { return }
            do throws(StoreError) {
                let version = try readDataVersion()
                if version == lastVersion { continue }
                while try readBatch() {}
                // Only now: after a failed batch the same version must be read again.
                lastVersion = version
                failures.cleared()
            } catch {
                // A busy or failing database: the cursor has not moved, so the next poll retries.
                sink.followerFailed()
                failures.report(error, to: handler)
            }
        }
    }

    private func readDataVersion() throws(StoreError) -> Int64 {
        defer { dataVersion.reset() }
        return try dataVersion.step() ? dataVersion.int64(0) : 0
    }

    /// Reads up to `batchLimit` log rows past the cursor in one read transaction and hands over
    /// the rows they name, as they are now, in log order. True when the limit was reached (more
    /// may be waiting).
    private func readBatch() throws(StoreError) -> Bool {
        try connection.execute("BEGIN", operation: "begin follow")
        var rows = 0
        var event: StoreFeedEvent?
        var position = cursor
        var lag: Int64?
        do throws(StoreError) {
            // The cursor is the last sequence number this follower knows was assigned (from
            // sqlite_sequence at load), so the next row is cursor + 1 unless pruning removed
            // rows this follower never read: then only a full reload can catch up.
            let first: Int64
            do {
                defer { selectFirstSeq.reset() }
                first = try selectFirstSeq.step() ? selectFirstSeq.int64(0) : 0
            }
            if first > cursor + 1 {
                let (contents, last) = try readEverything()
                try connection.execute("COMMIT", operation: "commit follow")
                cursor = last
                handler(.resync(contents, through: last))
                sink.followerRead(through: last, lagMs: nil)
                return false
            }
            let s = selectLog
            defer { s.reset() }
            s.bind(1, cursor)
            s.bind(2, Self.batchLimit)
            var last = cursor
            var entries: [ChangeLogEntry] = []
            while try s.step() {
                rows += 1
                last = s.int64(0)
                entries.append(ChangeLogEntry(seq: last, writer: s.text(1), kind: s.text(2), pool: s.text(3), name: s.text(4),
                                          at: s.int64(5)))
            }
            lag = FeedBatch.lagMs(entries, writerID: writerID, now: wallClockMs())
            var changes: [StoreChange] = []
            for row in FeedBatch.rowsToRead(entries, writerID: writerID) {
                changes.append(try current(row))
            }
            // The rows above are as of this read, which saw every commit up to `through`.
            let through: Int64
            do {
                defer { selectLastSeq.reset() }
                through = try selectLastSeq.step() ? selectLastSeq.int64(0) : last
            }
            try connection.execute("COMMIT", operation: "commit follow")
            cursor = last
            position = through
            if !changes.isEmpty { event = .changes(changes, through: through) }
        } catch {
            try? connection.execute("ROLLBACK", operation: "rollback follow")
            throw error
        }
        if let event { handler(event) }
        sink.followerRead(through: position, lagMs: lag)
        return Int64(rows) == Self.batchLimit
    }

    /// Every node, placement and pod, and the log position they stand for (inside the caller's
    /// read transaction).
    private func readEverything() throws(StoreError) -> (contents: StoreContents, last: Int64) {
        var nodes: [NodeRecord] = []
        do {
            defer { selectAllNodes.reset() }
            while try selectAllNodes.step() { nodes.append(try StoreStatements.node(selectAllNodes, labels: decodeLabels)) }
        }
        var placements: [PlacementRecord] = []
        do {
            defer { selectAllPlacements.reset() }
            while try selectAllPlacements.step() { placements.append(StoreStatements.placement(selectAllPlacements)) }
        }
        var pods: [PodRecord] = []
        do {
            defer { selectAllPods.reset() }
            while try selectAllPods.step() { pods.append(StoreStatements.pod(selectAllPods)) }
        }
        let allEdges = try edges.readAll()
        defer { selectLastSeq.reset() }
        let last = try selectLastSeq.step() ? selectLastSeq.int64(0) : cursor
        return (StoreContents(nodes: nodes, placements: placements, pods: pods, edges: allEdges), last)
    }

    /// The row named by a log entry as it is now.
    private func current(_ row: StoreRow) throws(StoreError) -> StoreChange {
        let (pool, name) = (row.pool, row.name)
        switch row.kind {
        case .node:
            let s = selectNode
            defer { s.reset() }
            s.bind(1, name)
            guard try s.step() else { return .deleteNode(name: name) }
            return .upsertNode(try StoreStatements.node(s, labels: decodeLabels))
        case .placement:
            let s = selectPlacement
            defer { s.reset() }
            s.bind(1, pool)
            s.bind(2, name)
            guard try s.step() else { return .deletePlacement(pool: pool, key: name) }
            return .upsertPlacement(StoreStatements.placement(s))
        case .pod:
            let s = selectPod
            defer { s.reset() }
            s.bind(1, name)
            guard try s.step() else { return .deletePod(id: name) }
            return .upsertPod(StoreStatements.pod(s))
        case .edge:
            guard let e = try edges.read(name) else { return .deleteEdge(id: name) }
            return .upsertEdge(e)
        }
    }

    private func decodeLabels(_ json: String) throws(StoreError) -> [String: String] {
        if json == "{}" { return [:] }
        let s = selectLabels
        defer { s.reset() }
        s.bind(1, json)
        var labels: [String: String] = [:]
        while try s.step() { labels[s.text(0)] = s.text(1) }
        return labels
    }
}

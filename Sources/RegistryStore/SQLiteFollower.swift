import CSQLite
import Glibc
import RouteResolver

/// The SQLite side of the change feed: a thread with a connection of its own that notices
/// commits by other connections (`PRAGMA data_version` changes when another connection, in this
/// process or another, committed to the file) and reads the change log past its cursor.
///
/// For every logged change written by another store instance it re-reads the row as it is now:
/// a node or placement that exists becomes an upsert, one that does not a deletion. The log's
/// payload is a name, never data, so a follower cannot apply a stale or forged value. Changes
/// are handed over in commit order, several commits per batch when they come quickly.
final class SQLiteFollower: @unchecked Sendable {
    // @unchecked: `stopping` is guarded by `lock`; everything else belongs to the thread.
    private let connection: SQLiteConnection
    private let dataVersion: SQLiteStatement
    private let selectLog: SQLiteStatement
    private let selectFirstSeq: SQLiteStatement
    private let selectNode: SQLiteStatement
    private let selectPlacement: SQLiteStatement
    private let selectLabels: SQLiteStatement
    private let writerID: String
    private var cursor: Int64
    private let handler: @Sendable (StoreFeedEvent) -> Void
    private let lock = PThreadMutex()
    private let wake = PThreadCondition()
    private var stopping = false
    private var thread: pthread_t?
    /// How often `data_version` is checked; a check is one pragma on an idle connection.
    static let pollNanoseconds = 10_000_000
    /// Most log rows read per batch, so a burst is handed over in bounded pieces.
    static let batchLimit: Int64 = 10_000

    init(path: String, writerID: String, after cursor: Int64, handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws(StoreError) {
        connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 5_000)
        dataVersion = try connection.prepare("PRAGMA data_version", operation: "read data_version")
        selectLog = try connection.prepare(
            "SELECT seq, writer, kind, pool, name FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
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
        selectLabels = try connection.prepare("SELECT key, value FROM json_each(?1)", operation: "decode labels")
        self.writerID = writerID
        self.cursor = cursor
        self.handler = handler
    }

    func start() throws(StoreError) {
        var t = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&t, nil, { context in
            let follower = Unmanaged<SQLiteFollower>.fromOpaque(context!).takeRetainedValue()
            follower.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<SQLiteFollower>.fromOpaque(context).release()
            throw .sqlite(code: SQLITE_ERROR, message: "pthread_create failed (\(rc))", operation: "start follower")
        }
        thread = t
    }

    /// Stops the thread and waits for it; a batch being handed over finishes first.
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
                lastVersion = version
                while try readBatch() {}
            } catch {
                // A busy or failing database: the cursor has not moved, so the next poll retries.
                handler(.failed(error.description))
            }
        }
    }

    private func readDataVersion() throws(StoreError) -> Int64 {
        defer { dataVersion.reset() }
        return try dataVersion.step() ? dataVersion.int64(0) : 0
    }

    /// Reads up to `batchLimit` log rows past the cursor in one read transaction and hands over
    /// the changes of other writers. True when the limit was reached (more may be waiting).
    private func readBatch() throws(StoreError) -> Bool {
        try connection.execute("BEGIN", operation: "begin follow")
        var rows = 0
        var changes: [StoreChange] = []
        var gap = false
        do throws(StoreError) {
            if cursor > 0 {
                defer { selectFirstSeq.reset() }
                // Rows up to the cursor may be pruned; a first row beyond cursor + 1 with rows
                // missing in between means this follower fell behind the retention.
                if try selectFirstSeq.step(), selectFirstSeq.int64(0) > cursor + 1 { gap = true }
            }
            let s = selectLog
            defer { s.reset() }
            s.bind(1, cursor)
            s.bind(2, Self.batchLimit)
            var last = cursor
            var seen = Set<String>()
            var pending: [(kind: String, pool: String, name: String)] = []
            while try s.step() {
                rows += 1
                last = s.int64(0)
                if s.text(1) == writerID { continue }
                let entry = (kind: s.text(2), pool: s.text(3), name: s.text(4))
                pending.append(entry)
            }
            // Several changes of one row in a batch: its current state once, at its last place.
            for entry in pending.reversed() where seen.insert("\(entry.kind)\u{0}\(entry.pool)\u{0}\(entry.name)").inserted {
                changes.append(try current(entry.kind, pool: entry.pool, name: entry.name))
            }
            changes.reverse()
            try connection.execute("COMMIT", operation: "commit follow")
            if gap && rows > 0 && cursor > 0 { handler(.gap) }
            cursor = last
        } catch {
            try? connection.execute("ROLLBACK", operation: "rollback follow")
            throw error
        }
        if !changes.isEmpty { handler(.changes(changes)) }
        return Int64(rows) == Self.batchLimit
    }

    /// The row named by a log entry as it is now.
    private func current(_ kind: String, pool: String, name: String) throws(StoreError) -> StoreChange {
        if kind == "node" {
            let s = selectNode
            defer { s.reset() }
            s.bind(1, name)
            guard try s.step() else { return .deleteNode(name: name) }
            return .upsertNode(try StoreStatements.node(s, labels: decodeLabels))
        }
        let s = selectPlacement
        defer { s.reset() }
        s.bind(1, pool)
        s.bind(2, name)
        guard try s.step() else { return .deletePlacement(pool: pool, key: name) }
        return .upsertPlacement(StoreStatements.placement(s))
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

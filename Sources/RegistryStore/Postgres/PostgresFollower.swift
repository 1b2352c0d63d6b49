import Glibc
import RouteResolver

/// The PostgreSQL side of the change feed: a thread with its own connection that LISTENs on
/// `switchyard_changes` and, when a commit notifies (or at the latest every second), reads the
/// change log past its cursor and hands over the rows it names as they are now — the payload is
/// a hint, never data. What is skipped and read back is what `SQLiteFollower` does (`FeedBatch`).
///
/// A lost connection loses the notifications sent meanwhile: the follower connects again with
/// backoff (100 ms doubling to 5 s), LISTENs again and reloads everything (`.resync`).
final class PostgresFollower: FeedFollower, @unchecked Sendable {
    // @unchecked: `stopping` is guarded by `lock`; everything else belongs to the thread.
    private let db: PGConnection
    private let writerID: String
    private var cursor: Int64
    private let handler: @Sendable (StoreFeedEvent) -> Void
    private let sink: any FeedSink
    private let lock = PThreadMutex()
    private var stopping = false
    private var thread: pthread_t?
    private var failures = FeedFailures()
    /// How long one wait for a notification lasts before `stopping` is looked at again.
    static let waitMilliseconds: Int32 = 100
    /// The log is read at least this often even without a notification.
    static let fallbackReadMs: Int64 = 1_000
    static let batchLimit: Int64 = 10_000

    init(url: String, password: String?, writerID: String, after cursor: Int64,
         sink: any FeedSink, handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws(StoreError) {
        db = try PGConnection(url: url, password: password)
        try db.execute("LISTEN \(PostgresSchema.channel)", operation: "listen")
        self.writerID = writerID
        self.cursor = cursor
        self.sink = sink
        self.handler = handler
    }

    func start() throws(StoreError) {
        switch PThread.start({ self.run() }) {
        case .success(let t): thread = t
        case .failure(let e): throw .postgres(sqlstate: "", message: e.description, operation: "start follower")
        }
    }

    func stop() {
        lock.withLock { stopping = true }
        if let t = thread { pthread_join(t, nil) }
        thread = nil
        db.close()
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func run() {
        var lastReadMs: Int64 = 0
        var backoffMs: Int64 = 100
        var needsResync = false
        while !isStopping {
            do throws(StoreError) {
                if needsResync {
                    try db.reconnect()
                    try db.execute("LISTEN \(PostgresSchema.channel)", operation: "listen")
                    try resync()
                    needsResync = false
                    backoffMs = 100
                    failures.cleared()
                }
                let notified = try waitForNotification()
                let now = wallClockMs()
                if notified || now - lastReadMs >= Self.fallbackReadMs {
                    while try readBatch() {}
                    lastReadMs = now
                }
            } catch {
                sink.followerFailed()
                failures.report(error, to: handler)
                needsResync = true
                // Sleep in short steps so `stop` is not held up by a long backoff.
                var slept: Int64 = 0
                while slept < backoffMs && !isStopping {
                    usleep(50_000)
                    slept += 50
                }
                backoffMs = min(backoffMs * 2, 5_000)
            }
        }
    }

    /// Waits up to `waitMilliseconds` for the server to send something; true when a
    /// notification arrived.
    private func waitForNotification() throws(StoreError) -> Bool {
        if !(try db.takeNotifications()).isEmpty { return true }
        var p = pollfd(fd: db.socket, events: Int16(POLLIN), revents: 0)
        let n = poll(&p, 1, Self.waitMilliseconds)
        if n < 0 && errno != EINTR { throw .postgres(sqlstate: "", message: "poll failed (errno \(errno))", operation: "wait for notifications") }
        if n <= 0 { return false }
        return !(try db.takeNotifications()).isEmpty
    }

    /// Reads up to `batchLimit` log rows past the cursor in one snapshot and hands over the rows
    /// they name. True when the limit was reached (more may be waiting).
    private func readBatch() throws(StoreError) -> Bool {
        let reader = PostgresReader(db: db)
        try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", operation: "begin follow")
        var event: StoreFeedEvent?
        var position = cursor
        var rows = 0
        var lag: Int64?
        do throws(StoreError) {
            if try reader.firstSeq() > cursor + 1 {
                // Rows this follower never read were pruned: only a full reload catches up.
                let (contents, last) = try everything(reader)
                try db.execute("COMMIT", operation: "commit follow")
                cursor = last
                handler(.resync(contents, through: last))
                sink.followerRead(through: last, lagMs: nil)
                return false
            }
            let entries = try reader.log(after: cursor, limit: Self.batchLimit)
            rows = entries.count
            lag = FeedBatch.lagMs(entries, writerID: writerID, now: wallClockMs())
            var changes: [StoreChange] = []
            for row in FeedBatch.rowsToRead(entries, writerID: writerID) {
                changes.append(try current(reader, row))
            }
            let through = try reader.lastSeq()
            try db.execute("COMMIT", operation: "commit follow")
            cursor = entries.last?.seq ?? cursor
            position = max(through, cursor)
            if !changes.isEmpty { event = .changes(changes, through: position) }
        } catch {
            try? db.execute("ROLLBACK", operation: "rollback follow")
            throw error
        }
        if let event { handler(event) }
        sink.followerRead(through: position, lagMs: lag)
        return Int64(rows) == Self.batchLimit
    }

    /// After a reconnect: everything, as one snapshot (notifications were lost meanwhile).
    private func resync() throws(StoreError) {
        let reader = PostgresReader(db: db)
        try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", operation: "begin resync")
        let snapshot: (contents: StoreContents, last: Int64)
        do throws(StoreError) {
            snapshot = try everything(reader)
            try db.execute("COMMIT", operation: "commit resync")
        } catch {
            try? db.execute("ROLLBACK", operation: "rollback resync")
            throw error
        }
        cursor = snapshot.last
        handler(.resync(snapshot.contents, through: snapshot.last))
        sink.followerRead(through: snapshot.last, lagMs: nil)
    }

    private func everything(_ reader: PostgresReader) throws(StoreError) -> (StoreContents, Int64) {
        (StoreContents(nodes: try reader.nodes(), placements: try reader.placements(), pods: try reader.pods(),
                       edges: try reader.edges()),
         try reader.lastSeq())
    }

    private func current(_ reader: PostgresReader, _ row: StoreRow) throws(StoreError) -> StoreChange {
        switch row.kind {
        case .node:
            guard let n = try reader.node(named: row.name) else { return .deleteNode(name: row.name) }
            return .upsertNode(n)
        case .placement:
            guard let p = try reader.placement(pool: row.pool, key: row.name) else { return .deletePlacement(pool: row.pool, key: row.name) }
            return .upsertPlacement(p)
        case .pod:
            guard let p = try reader.pod(id: row.name) else { return .deletePod(id: row.name) }
            return .upsertPod(p)
        case .edge:
            guard let e = try reader.edge(id: row.name) else { return .deleteEdge(id: row.name) }
            return .upsertEdge(e)
        }
    }
}

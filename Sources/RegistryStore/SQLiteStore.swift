import RouteResolver
import CSQLite
import Glibc

/// The embedded registry store: one SQLite file in WAL mode, written by a dedicated thread in
/// batched transactions.
///
/// - `enqueue` is what the event loops call: it appends to a bounded in-memory queue under a
///   short lock and returns; it never touches the disk. The writer thread sleeps on a condition
///   variable while the queue is empty, wakes at once when a change arrives, takes everything
///   queued and commits it as one transaction of upserts, so batches grow by themselves under
///   load and a single change is written without delay when idle.
/// - The queue holds at most `queueLimit` changes (default 1,000,000; a `StoreChange` is 144
///   bytes inline plus its strings, so about 150 MB at worst). Beyond that — the disk has
///   stalled for minutes — `enqueue` drops the change and counts it in
///   `statistics.droppedChanges`: memory stays bounded and the hot path never blocks, at the
///   price of those changes being lost at the next restart.
/// - Durability: WAL with `synchronous=NORMAL`. A committed transaction survives a crash or
///   `kill -9` of the process (it is in the WAL file, handed to the kernel); only a power loss or
///   kernel crash can lose the last transactions before the next checkpoint's fsync. The database
///   itself is never corrupted by either.
public final class SQLiteStore: RegistryStore, StatisticsReporting, @unchecked Sendable {
    // @unchecked: every mutable field is `core`'s, guarded by its locks.

    /// Where the embedded default keeps its database, relative to the working directory.
    public static let defaultPath = "var/switchyard.db"
    /// The schema version this build writes; newer files are refused.
    public static var latestSchemaVersion: Int { Schema.latestVersion }

    public let path: String
    let core: StoreCore<StoreStatements>
    /// This instance's id in the change log (random per open).
    public let writerID: String

    /// Opens (or creates) the database at `path`, creating its directory if needed, and brings
    /// the schema up to date.
    /// - Parameters:
    ///   - queueLimit: most changes `enqueue` holds before dropping (see the type's notes).
    ///   - busyTimeoutMilliseconds: how long a write waits for another connection's lock.
    public init(path: String, queueLimit: Int = 1_000_000, busyTimeoutMilliseconds: Int32 = 5_000) throws(StoreError) {
        self.path = path
        try Self.createParentDirectory(of: path)
        let db = try SQLiteConnection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try Self.configure(db)
        try Schema.migrate(db)
        writerID = StoreIdentity.randomWriterID()
        core = StoreCore(engine: try StoreStatements(db, writerID: writerID), queueLimit: queueLimit)
        do {
            try core.startWriter()
        } catch {
            throw .sqlite(code: SQLITE_ERROR, message: error.description, operation: "start writer")
        }
    }

    deinit { close() }

    // MARK: RegistryStore

    /// Every node and placement, from one consistent snapshot, after committing whatever was
    /// still queued. Placements come in primary-key order (pool, key).
    public func loadAll() throws(StoreError) -> (nodes: [NodeRecord], placements: [PlacementRecord]) {
        try core.loadAll { statements throws(StoreError) in
            (try statements.loadNodes(), try statements.loadPlacements(), try statements.lastChangeSeq())
        }
    }

    /// Every pod, by id, after committing whatever was still queued. Its own read, after
    /// `loadAll`'s: a pod changed between the two is read here as it is now and then comes again
    /// through the feed (which starts at `loadAll`'s position), which changes nothing.
    public func loadPods() throws(StoreError) -> [PodRecord] {
        try core.readSnapshot { statements throws(StoreError) in try statements.loadPods() }
    }

    /// Every edge, by id (a read of its own after `loadAll`, as `loadPods`).
    public func loadEdges() throws(StoreError) -> [EdgeRecord] {
        try core.readSnapshot { statements throws(StoreError) in try statements.loadEdges() }
    }

    /// Queues `change` for the writer thread and returns at once (see the type's notes for
    /// what happens when the queue is full).
    @discardableResult
    public func enqueue(_ change: StoreChange) -> Bool { core.enqueue(change) }

    /// Applies `changes` in one transaction after everything enqueued before the call, and
    /// throws with none of them applied if any fails. Waits for the writer's current batch.
    @discardableResult
    public func applyNow(_ changes: [StoreChange]) throws(StoreError) -> [Bool] { try core.applyNow(changes) }

    /// Returns once every change enqueued before the call is committed (or was rejected by a
    /// constraint, see `statistics`). While the database refuses writes this waits.
    public func flush() { core.flush() }

    /// Commits what is queued, stops the writer thread and closes the database. Idempotent; later
    /// `enqueue` calls are dropped and other calls throw `StoreError.closed`. If the database
    /// keeps failing, queued changes are abandoned after a few attempts rather than hanging.
    public func close() { core.close() }

    /// Starts following other writers' commits to the same file (see `SQLiteFollower`), from
    /// the state the last `loadAll` read (or from now, without one). Once per store.
    public func follow(_ handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws(StoreError) {
        let (path, writerID, core) = (path, writerID, core)
        try core.follow(lastSeq: { statements throws(StoreError) in try statements.lastChangeSeq() }) { start throws(StoreError) in
            try SQLiteFollower(path: path, writerID: writerID, after: start, sink: core, handler: handler)
        }
    }

    public func hasNewerWrites(for row: StoreRow, than position: Int64) -> Bool {
        core.hasNewerWrites(for: row, than: position)
    }

    // MARK: Introspection

    /// A copy of the write counters.
    public var statistics: StoreStatistics { core.statistics }

    public var health: StoreHealth { statistics.health(engine: "sqlite", now: wallClockMs()) }

    /// The schema version recorded in the file.
    public func schemaVersion() throws(StoreError) -> Int {
        try core.withDatabase { statements throws(StoreError) in try statements.schemaVersion() }
    }
}

extension SQLiteStore {
    private static func configure(_ db: SQLiteConnection) throws(StoreError) {
        // journal_mode answers with the mode in force; a file that cannot do WAL (a network file
        // system, say) would silently stay in "delete" mode, so check.
        let journal = try db.prepare("PRAGMA journal_mode=WAL", operation: "set journal_mode")
        let mode = try journal.step() ? journal.text(0) : ""
        journal.reset()
        guard mode.lowercased() == "wal" else {
            throw .sqlite(code: SQLITE_ERROR, message: "journal_mode is \(mode), not wal", operation: "set journal_mode")
        }
        // synchronous=NORMAL in WAL mode: commits append to the WAL without fsync, which is enough
        // to survive the process dying (the kernel has the pages); fsync happens at checkpoints,
        // so a power loss can drop the last commits but never corrupts the file.
        // journal_size_limit: truncate the WAL back to 64 MB after a burst has been checkpointed.
        // cache_size (KiB when negative): 32 MB; measured on 1M placements, 8 MB halves random
        // upsert throughput and 128 MB gains about 40%, and 32 MB is the middle ground.
        try db.execute("""
            PRAGMA synchronous=NORMAL;
            PRAGMA foreign_keys=ON;
            PRAGMA journal_size_limit=67108864;
            PRAGMA cache_size=-32768;
            """, operation: "configure connection")
    }

    /// `mkdir -p` of the database's directory, so the default `var/` works on a fresh checkout.
    private static func createParentDirectory(of path: String) throws(StoreError) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = String(path[..<slash])
        if directory.isEmpty { return }
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o750) != 0 {
                let error = errno
                if error != EEXIST { throw .directory(path: prefix, errno: error) }
            }
            prefix += "/"
        }
    }
}

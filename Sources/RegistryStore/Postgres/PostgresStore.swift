import Glibc
import RouteResolver

/// The shared registry store: PostgreSQL, written by a dedicated thread in batched transactions
/// (the same queue and writer as `SQLiteStore`, see `StoreCore`), followed through LISTEN/NOTIFY.
///
/// - Several gateways open the same database. Every commit logs the rows it changed in
///   `switchyard.change_log` and notifies `switchyard_changes`; each instance's follower rereads
///   the named rows and hands them to the registry (`PostgresFollower`).
/// - Writers commit one after another behind an advisory transaction lock, so change-log
///   numbers are in commit order and a follower's cursor never skips a late commit.
/// - Schema migrations run at open under an advisory lock: instances starting together apply
///   each step once.
/// - Nothing on an event loop touches the connection: `enqueue` only queues. While the server
///   is unreachable the queue holds changes (bounded) and the writer retries with backoff,
///   connecting again; `applyNow` (admin writes) throws, so the admin API answers 503.
public final class PostgresStore: RegistryStore, StatisticsReporting, @unchecked Sendable {
    // @unchecked: every mutable field is `core`'s, guarded by its locks.
    public static var latestSchemaVersion: Int { PostgresSchema.latestVersion }

    /// The URL without its password, for messages.
    public let target: String
    private let url: String
    private let password: String?
    let core: StoreCore<PostgresStatements>
    public let writerID: String

    /// Connects, brings the schema up to date and starts the writer thread. `password`: one given
    /// apart from the URL (a file, the environment); never part of a message.
    public init(url: String, password: String? = nil, queueLimit: Int = 1_000_000) throws(StoreError) {
        self.url = url
        self.password = password
        let db = try PGConnection(url: url, password: password)
        target = db.target
        try PostgresSchema.migrate(db)
        writerID = StoreIdentity.randomWriterID()
        core = StoreCore(engine: PostgresStatements(db, writerID: writerID), queueLimit: queueLimit)
        do {
            try core.startWriter()
        } catch {
            throw .postgres(sqlstate: "", message: error.description, operation: "start writer")
        }
    }

    deinit { close() }

    // MARK: RegistryStore

    /// Every node and placement from one snapshot, after committing whatever was still queued.
    public func loadAll() throws(StoreError) -> (nodes: [NodeRecord], placements: [PlacementRecord]) {
        try core.loadAll { engine throws(StoreError) in
            let reader = PostgresReader(db: engine.db)
            return (try reader.nodes(), try reader.placements(), try reader.lastSeq())
        }
    }

    /// Every pod, by id, after committing whatever was still queued; read after `loadAll` (see
    /// `RegistryStore.loadPods`).
    public func loadPods() throws(StoreError) -> [PodRecord] {
        try core.readSnapshot { engine throws(StoreError) in try PostgresReader(db: engine.db).pods() }
    }

    /// Every edge, by id (as `loadPods`).
    public func loadEdges() throws(StoreError) -> [EdgeRecord] {
        try core.readSnapshot { engine throws(StoreError) in try PostgresReader(db: engine.db).edges() }
    }

    @discardableResult
    public func enqueue(_ change: StoreChange) -> Bool { core.enqueue(change) }

    /// Applies `changes` in one transaction after everything enqueued before the call; throws
    /// with none applied if any fails (the server unreachable included).
    @discardableResult
    public func applyNow(_ changes: [StoreChange]) throws(StoreError) -> [Bool] { try core.applyNow(changes) }

    public func flush() { core.flush() }

    public func close() { core.close() }

    /// Starts following every instance's commits (see `PostgresFollower`) from the state the
    /// last `loadAll` read (or from now). Once per store.
    public func follow(_ handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws(StoreError) {
        let (url, password, writerID, core) = (url, password, writerID, core)
        try core.follow(lastSeq: { engine throws(StoreError) in try PostgresReader(db: engine.db).lastSeq() }) { start throws(StoreError) in
            try PostgresFollower(url: url, password: password, writerID: writerID, after: start, sink: core, handler: handler)
        }
    }

    public func hasNewerWrites(for row: StoreRow, than position: Int64) -> Bool {
        core.hasNewerWrites(for: row, than: position)
    }

    public var statistics: StoreStatistics { core.statistics }

    public var health: StoreHealth { statistics.health(engine: "postgresql", now: wallClockMs()) }

    public func schemaVersion() throws(StoreError) -> Int {
        try core.withDatabase { engine throws(StoreError) in try PostgresSchema.currentVersion(engine.db) }
    }
}

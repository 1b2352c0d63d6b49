import RouteResolver

/// A store that counts its writes (both engines): what tools check after a bulk write.
public protocol StatisticsReporting {
    var statistics: StoreStatistics { get }
}

/// Counters a store keeps about its writes, for metrics and operators.
public struct StoreStatistics: Sendable, Equatable {
    /// Queued changes the writer committed (`applyNow` changes are not counted).
    public var committedChanges: UInt64 = 0
    /// Transactions the writer committed (one per batch).
    public var committedBatches: UInt64 = 0
    /// The most changes one writer transaction carried.
    public var largestBatch: Int = 0
    /// Changes queued and not yet committed.
    public var pendingChanges: Int = 0
    /// Changes `enqueue` refused because the queue was full or the store closed. They are in
    /// memory only and will be missing after a restart.
    public var droppedChanges: UInt64 = 0
    /// Queued changes SQLite refused (a constraint: a placement on an unknown node, deleting a
    /// node that still holds placements). Retrying cannot help, so they are skipped.
    public var rejectedChanges: UInt64 = 0
    /// Queued changes given up at `close()` after the database kept failing.
    public var abandonedChanges: UInt64 = 0
    /// Writer transactions that failed as a whole (busy, disk full, I/O) and were retried.
    public var failedBatches: UInt64 = 0
    /// The latest error the writer met, rejection or failure.
    public var lastError: StoreError?
    /// The writer's last attempt failed (the database unreachable, busy, full); cleared by the
    /// next commit.
    public var writerFailing = false
    /// The change feed's state: nil while not following; false after a failed read, until a
    /// read succeeds again.
    public var feedConnected: Bool?
    /// When the feed last read the log successfully (Unix ms; 0: never).
    public var lastFeedReadMs: Int64 = 0
    /// How long the newest change of another writer took to reach this instance, as of the last
    /// read that saw one (ms).
    public var lastChangeLagMs: Int64?

    /// The part operators watch (`/readyz`, `/metrics`), as the registry's protocol names it.
    public func health(engine: String, now: Int64) -> StoreHealth {
        StoreHealth(engine: engine, connected: !writerFailing && feedConnected != false,
                    following: feedConnected != nil,
                    lastChangeLagMs: lastChangeLagMs,
                    feedAgeMs: lastFeedReadMs > 0 ? max(0, now - lastFeedReadMs) : nil,
                    pendingChanges: pendingChanges, droppedChanges: droppedChanges)
    }
}

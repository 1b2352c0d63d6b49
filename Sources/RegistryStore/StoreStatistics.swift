import RouteResolver

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
}

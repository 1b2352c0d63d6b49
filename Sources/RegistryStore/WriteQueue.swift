import RouteResolver

/// The writer's inbox: changes in arrival order, bounded, with the counters `flush` waits on.
/// A plain value guarded by the store's queue lock; every operation is O(1) except the rare
/// `giveBack`, so the lock is never held for long.
struct WriteQueue {
    let limit: Int
    private(set) var pending: [StoreChange] = []
    /// The array the writer handed back, reused so a steady flow does not reallocate.
    private var spare: [StoreChange] = []
    /// Changes ever accepted into `pending`.
    private(set) var accepted: UInt64 = 0
    /// Accepted changes that are committed, rejected or abandoned: `flush` waits for this to
    /// reach the `accepted` it saw.
    private(set) var finished: UInt64 = 0
    var closing = false
    var statistics = StoreStatistics()
    /// Rows with accepted changes not committed yet (queued or in the writer's batch), counted.
    private(set) var pendingRows: [StoreRow: Int] = [:]
    /// While a follower runs: the change-log sequence number of this store's last committed
    /// write of each row the follower has not read past yet (see `hasNewerWrites`).
    private(set) var committedRows: [StoreRow: Int64] = [:]
    var recordsCommittedRows = false

    init(limit: Int) {
        precondition(limit > 0, "the write queue needs room for at least one change")
        self.limit = limit
    }

    /// Appends `change`; false (and counted as dropped) when full or closing. Returns whether the
    /// queue was empty before, the only moment the writer may be asleep waiting for work.
    mutating func push(_ change: StoreChange) -> (accepted: Bool, wasEmpty: Bool) {
        guard !closing, pending.count < limit else {
            statistics.droppedChanges += 1
            return (false, false)
        }
        let wasEmpty = pending.isEmpty
        pending.append(change)
        accepted += 1
        pendingRows[StoreRow(change), default: 0] += 1
        return (true, wasEmpty)
    }

    /// Everything queued, oldest first; the queue is left empty.
    mutating func takeAll() -> [StoreChange] {
        var batch = spare
        spare = []
        swap(&batch, &pending)
        return batch
    }

    /// Puts a batch that could not be committed back in front of what arrived since, so order
    /// is kept when it is retried.
    mutating func giveBack(_ batch: [StoreChange], error: StoreError) {
        pending = batch + pending
        statistics.failedBatches += 1
        statistics.lastError = error
        statistics.writerFailing = true
    }

    /// The batch is about to commit (`sequence[i]`: the log row of `batch[i]`, 0 if refused):
    /// each row moves from pending to written-at-its-log-row in one step (see
    /// `StoreCore.commit`).
    mutating func markWritten(_ batch: [StoreChange], sequence: [Int64]) {
        for (change, seq) in zip(batch, sequence) {
            settle(change)
            if seq > 0 { noteCommitted(StoreRow(change), seq) }
        }
    }

    /// The commit after `markWritten` failed: the batch's rows are pending again (it is given
    /// back and retried). Their written marks stay; they only defer reads until the log passes
    /// numbers that were never committed.
    mutating func unmarkWritten(_ batch: [StoreChange]) {
        for change in batch { pendingRows[StoreRow(change), default: 0] += 1 }
    }

    /// Records a committed batch (after `markWritten`) and keeps its storage for the next one.
    mutating func committed(_ batch: inout [StoreChange], sequence: [Int64], rejected: Int, rejection: StoreError?) {
        let count = batch.count
        finished += UInt64(count)
        statistics.committedChanges += UInt64(count - rejected)
        statistics.rejectedChanges += UInt64(rejected)
        statistics.committedBatches += 1
        statistics.writerFailing = false
        statistics.largestBatch = max(statistics.largestBatch, count)
        if let rejection { statistics.lastError = rejection }
        batch.removeAll(keepingCapacity: true)
        // A burst's huge array is not worth keeping around: reuse only moderate ones.
        if batch.capacity <= 65_536 { spare = batch }
    }

    /// A write committed outside the queue (`applyNow`).
    mutating func noteCommitted(_ row: StoreRow, _ seq: Int64) {
        if recordsCommittedRows { committedRows[row] = seq }
    }

    /// Whether `row` has a change queued, or one committed past `position`.
    func hasNewerWrites(for row: StoreRow, than position: Int64) -> Bool {
        if pendingRows[row] != nil { return true }
        if let seq = committedRows[row], seq > position { return true }
        return false
    }

    /// The follower read the log through `position`: writes up to it are in every later read.
    mutating func forgetCommitted(through position: Int64) {
        if committedRows.isEmpty { return }
        committedRows = committedRows.filter { $0.value > position }
    }

    /// Gives up on everything queued (the store is closing and the database keeps failing).
    mutating func abandonAll() {
        let count = pending.count
        for change in pending { settle(change) }
        pending = []
        finished += UInt64(count)
        statistics.abandonedChanges += UInt64(count)
    }

    /// A change is committed, refused or abandoned: its row is no longer waiting on it.
    private mutating func settle(_ change: StoreChange) {
        let row = StoreRow(change)
        if let n = pendingRows[row], n > 1 { pendingRows[row] = n - 1 } else { pendingRows[row] = nil }
    }
}

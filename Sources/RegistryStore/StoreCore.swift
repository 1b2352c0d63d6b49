import Glibc
import RouteResolver

/// The shared state of one `SQLiteStore`: the connection with its statements, and the write
/// queue. The writer thread holds a reference to this object, not to the store, so dropping the
/// last reference to the store still runs its `deinit` (which closes and joins the thread).
///
/// Two locks, never held in the order queue-then-database:
/// - `queueLock` guards `queue` and is held only for O(1) work, so `enqueue` never waits for I/O;
/// - `databaseLock` guards the connection and is held for a whole transaction, which is what
///   serialises `applyNow`, `loadAll` and the writer.
final class StoreCore: @unchecked Sendable {
    let queueLock = PThreadMutex()
    /// The writer sleeps on it when the queue is empty.
    let workAvailable = PThreadCondition()
    /// `flush` sleeps on it until its changes are finished.
    let progress = PThreadCondition()
    var queue: WriteQueue

    let databaseLock = PThreadMutex()
    private var connection: SQLiteConnection?
    private var statements: StoreStatements?

    /// How many failed attempts at a batch `close()` tolerates before abandoning it.
    static let attemptsAtClose = 3
    /// How long change-log rows are kept for followers (a follower polls every few ms, so only a
    /// process stopped for longer than this can fall behind the log; it then sees a gap).
    static let changeLogRetentionMs: Int64 = 10 * 60 * 1000
    /// Pruning runs at most this often (a DELETE by time index, off the hot path).
    static let pruneIntervalMs: Int64 = 10_000
    /// Under the database lock.
    private var lastPruneMs: Int64 = 0

    init(connection: SQLiteConnection, statements: StoreStatements, queueLimit: Int) {
        self.connection = connection
        self.statements = statements
        self.queue = WriteQueue(limit: queueLimit)
    }

    // MARK: Writer thread

    /// The writer thread's body: sleep until there is work, commit all of it as one batch,
    /// repeat; return once the store is closing and the queue is empty.
    func runWriter() {
        var failures = 0
        while true {
            queueLock.lock()
            while queue.pending.isEmpty && !queue.closing { workAvailable.wait(queueLock) }
            let done = queue.pending.isEmpty
            queueLock.unlock()
            if done { return }

            do throws(StoreError) {
                try withDatabase { statements throws(StoreError) in try commitPending(statements) }
                failures = 0
            } catch {
                failures += 1
                queueLock.withLock {
                    if queue.closing && failures >= Self.attemptsAtClose {
                        queue.abandonAll()
                        progress.broadcast()
                    } else {
                        // Busy, full or failing disk: back off (10 ms doubling to 1 s) and retry
                        // the same changes; close() cuts the wait short.
                        let delay = min(10_000_000 << min(failures - 1, 7), 1_000_000_000)
                        workAvailable.wait(queueLock, nanoseconds: delay)
                    }
                }
            }
        }
    }

    // MARK: Under the database lock

    /// Runs `body` with the statements while holding the database lock.
    func withDatabase<T>(_ body: (StoreStatements) throws(StoreError) -> T) throws(StoreError) -> T {
        try databaseLock.withLock { () throws(StoreError) -> T in
            guard let statements else { throw .closed }
            return try body(statements)
        }
    }

    /// Commits everything queued so far as one transaction. A change SQLite refuses is skipped
    /// and counted (it could never succeed); any other failure rolls the batch back and puts it
    /// back at the head of the queue. Call with the database lock held.
    func commitPending(_ statements: StoreStatements) throws(StoreError) {
        var batch = queueLock.withLock { queue.takeAll() }
        if batch.isEmpty { return }
        var rejected = 0
        var rejection: StoreError?
        var sequence: [Int64] = []
        sequence.reserveCapacity(batch.count)
        let now = wallClockMs()
        do throws(StoreError) {
            try statements.beginTransaction()
            for change in batch {
                do throws(StoreError) {
                    sequence.append(try statements.apply(change, at: now))
                } catch where error.isRejection {
                    sequence.append(0)
                    // With SQLite's default ABORT resolution a constraint failure undoes only its
                    // own statement; the transaction and the rest of the batch go on.
                    rejected += 1
                    rejection = error
                }
            }
            try statements.commitTransaction()
        } catch {
            statements.rollbackTransaction()
            queueLock.withLock { queue.giveBack(batch, error: error) }
            throw error
        }
        if now - lastPruneMs >= Self.pruneIntervalMs {
            lastPruneMs = now
            // A failed prune only keeps rows longer; the next interval tries again.
            try? statements.pruneChangeLog(before: now - Self.changeLogRetentionMs)
        }
        queueLock.withLock {
            queue.committed(&batch, sequence: sequence, rejected: rejected, rejection: rejection)
            progress.broadcast()
        }
    }

    /// Applies `changes` in one transaction, all or nothing. Call with the database lock held.
    func applyAtomically(_ changes: [StoreChange], _ statements: StoreStatements) throws(StoreError) {
        try statements.beginTransaction()
        do throws(StoreError) {
            let now = wallClockMs()
            var sequence: [Int64] = []
            sequence.reserveCapacity(changes.count)
            for change in changes { sequence.append(try statements.apply(change, at: now)) }
            try statements.commitTransaction()
            // Before the caller changes memory: from here a follower's older read of these rows
            // is deferred (see `RegistryStore.hasNewerWrites`).
            queueLock.withLock {
                for (change, seq) in zip(changes, sequence) { queue.noteCommitted(StoreRow(change), seq) }
            }
        } catch {
            statements.rollbackTransaction()
            throw error
        }
    }

    /// Frees the statements, then the connection. Later calls find nothing and throw `.closed`.
    func closeDatabase() {
        databaseLock.withLock {
            statements = nil
            connection?.close()
            connection = nil
        }
    }
}

/// Unix milliseconds from the real-time clock (change-log rows are compared across processes).
func wallClockMs() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
}

import Glibc
import RouteResolver

/// The shared state of one store (`SQLiteStore`, `PostgresStore`): the engine (a connection with
/// its statements), and the write queue. The writer thread holds a reference to this object, not
/// to the store, so dropping the last reference to the store still runs its `deinit` (which
/// closes and joins the thread).
///
/// Two locks, never held in the order queue-then-database:
/// - `queueLock` guards `queue` and is held only for O(1) work, so `enqueue` never waits for I/O;
/// - `databaseLock` guards the connection and is held for a whole transaction, which is what
///   serialises `applyNow`, `loadAll` and the writer.
final class StoreCore<Engine: StoreEngine>: FeedSink, @unchecked Sendable {
    let queueLock = PThreadMutex()
    /// The writer sleeps on it when the queue is empty.
    let workAvailable = PThreadCondition()
    /// `flush` sleeps on it until its changes are finished.
    let progress = PThreadCondition()
    var queue: WriteQueue

    let databaseLock = PThreadMutex()
    private var engine: Engine?

    /// How many failed attempts at a batch `close()` tolerates before abandoning it.
    static var attemptsAtClose: Int { 3 }
    /// How long change-log rows are kept for followers (a follower polls every few ms, so only a
    /// process stopped for longer than this can fall behind the log; it then sees a gap).
    static var changeLogRetentionMs: Int64 { 10 * 60 * 1000 }
    /// Pruning runs at most this often (a DELETE by time index, off the hot path).
    static var pruneIntervalMs: Int64 { 10_000 }
    /// Under the database lock.
    private var lastPruneMs: Int64 = 0

    /// The writer thread, the feed's follower, and the log position the last `loadAll` read:
    /// started, recorded and stopped under this lock.
    private let lifecycle = PThreadMutex()
    private var writerThread: pthread_t?
    private var follower: (any FeedFollower)?
    private var loadedThrough: Int64?

    init(engine: Engine, queueLimit: Int) {
        self.engine = engine
        self.queue = WriteQueue(limit: queueLimit)
    }

    // MARK: What every store does the same way

    /// Queues `change` for the writer thread and returns at once (dropped and counted when the
    /// queue is full).
    @discardableResult
    func enqueue(_ change: StoreChange) -> Bool {
        let (accepted, wake) = queueLock.withLock { () -> (Bool, Bool) in
            let r = queue.push(change)
            return (r.accepted, r.wasEmpty)
        }
        // Only an empty queue can have a sleeping writer; signalling outside the lock lets it
        // run without first bumping into the mutex we hold.
        if wake { workAvailable.signal() }
        return accepted
    }

    /// Returns once every change enqueued before the call is committed, refused or abandoned.
    func flush() {
        queueLock.withLock {
            let target = queue.accepted
            while queue.finished < target { progress.wait(queueLock) }
        }
    }

    /// Stops the follower, then the writer thread after it has written what is queued, then
    /// closes the database. Idempotent.
    func close() {
        lifecycle.withLock {
            follower?.stop()
            follower = nil
            guard let thread = writerThread else { return }
            writerThread = nil
            queueLock.withLock { queue.closing = true }
            workAvailable.signal()
            pthread_join(thread, nil)
            closeDatabase()
        }
    }

    /// Everything a store holds, from one read snapshot (`body` returns it with the log position
    /// it stands for, which `follow` starts from).
    func loadAll(_ body: (Engine) throws(StoreError) -> ([NodeRecord], [PlacementRecord], Int64)) throws(StoreError)
        -> (nodes: [NodeRecord], placements: [PlacementRecord]) {
        let (nodes, placements, seq) = try readSnapshot(body)
        lifecycle.withLock { loadedThrough = seq }
        return (nodes, placements)
    }

    /// Starts the change feed once: `make` builds the follower from the position to read after
    /// (the last `loadAll`'s, else the log's end now, from `lastSeq`).
    func follow(lastSeq: (Engine) throws(StoreError) -> Int64,
                make: (Int64) throws(StoreError) -> any FeedFollower) throws(StoreError) {
        try lifecycle.withLock { () throws(StoreError) in
            guard writerThread != nil else { throw .closed }
            guard follower == nil else { return }
            let start: Int64
            if let loaded = loadedThrough { start = loaded } else { start = try withDatabase(lastSeq) }
            followerStarting()
            let f = try make(start)
            try f.start()
            follower = f
        }
    }

    func hasNewerWrites(for row: StoreRow, than position: Int64) -> Bool {
        queueLock.withLock { queue.hasNewerWrites(for: row, than: position) }
    }

    /// The follower read the log through `position` (see `WriteQueue.forgetCommitted`).
    func followerRead(through position: Int64, lagMs: Int64?) {
        let now = wallClockMs()
        queueLock.withLock {
            queue.forgetCommitted(through: position)
            queue.statistics.feedConnected = true
            queue.statistics.lastFeedReadMs = now
            if let lagMs { queue.statistics.lastChangeLagMs = lagMs }
        }
    }

    func followerFailed() {
        queueLock.withLock { queue.statistics.feedConnected = false }
    }

    /// A follower starts: the feed counts as connected once its first read succeeds.
    private func followerStarting() {
        queueLock.withLock {
            queue.recordsCommittedRows = true
            queue.statistics.feedConnected = false
        }
    }

    var statistics: StoreStatistics {
        queueLock.withLock {
            var copy = queue.statistics
            copy.pendingChanges = queue.pending.count
            return copy
        }
    }

    /// Applies `changes` in one transaction after everything enqueued before it (so a queued
    /// placement cannot later overwrite what a drain or reassignment decided); none of them
    /// when any fails.
    func applyNow(_ changes: [StoreChange]) throws(StoreError) -> [Bool] {
        try withDatabase { engine throws(StoreError) in
            try commitPending(engine)
            return try applyAtomically(changes, engine)
        }
    }

    /// Runs `body` in one read snapshot, after committing whatever was still queued.
    func readSnapshot<T>(_ body: (Engine) throws(StoreError) -> T) throws(StoreError) -> T {
        try withDatabase { engine throws(StoreError) in
            try commitPending(engine)
            try engine.beginReadTransaction()
            do throws(StoreError) {
                let value = try body(engine)
                try engine.commitTransaction()
                return value
            } catch {
                engine.rollbackTransaction()
                throw error
            }
        }
    }

    // MARK: Writer thread

    /// Starts the writer thread; it holds this core (not the store) until it returns. On failure
    /// the database is closed.
    func startWriter() throws(PThreadError) {
        switch PThread.start({ self.runWriter() }) {
        case .success(let t): lifecycle.withLock { writerThread = t }
        case .failure(let e):
            closeDatabase()
            throw e
        }
    }

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

    /// Runs `body` with the engine while holding the database lock.
    func withDatabase<T>(_ body: (Engine) throws(StoreError) -> T) throws(StoreError) -> T {
        try databaseLock.withLock { () throws(StoreError) -> T in
            guard let engine else { throw .closed }
            return try body(engine)
        }
    }

    /// Commits everything queued so far as one transaction. A change the database refuses is
    /// skipped and counted (it could never succeed); any other failure rolls the batch back and
    /// puts it back at the head of the queue. Call with the database lock held.
    func commitPending(_ statements: Engine) throws(StoreError) {
        var batch = queueLock.withLock { queue.takeAll() }
        if batch.isEmpty { return }
        let now = wallClockMs()
        // Where a refusal aborts the transaction, the batch runs without savepoints (one round
        // trip less per change) until a change is refused; then once more with a savepoint each.
        var outcome: BatchOutcome
        do throws(StoreError) {
            outcome = try attempt(batch, statements, at: now, isolated: false)
            if case .abortedByRefusal = outcome { outcome = try attempt(batch, statements, at: now, isolated: true) }
        } catch {
            queueLock.withLock { queue.giveBack(batch, error: error) }
            throw error
        }
        guard case .committed(let sequence, let rejected, let rejection) = outcome else {
            preconditionFailure("a batch with a savepoint per change is never aborted by a refusal")
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

    private enum BatchOutcome {
        /// `sequence[i]`: the log row of change i (0: refused).
        case committed(sequence: [Int64], rejected: Int, rejection: StoreError?)
        /// A change was refused and the engine aborted the transaction: nothing was written.
        case abortedByRefusal
    }

    /// One try at committing `batch` in one transaction; rolled back when it throws.
    private func attempt(_ batch: [StoreChange], _ statements: Engine, at now: Int64, isolated: Bool) throws(StoreError) -> BatchOutcome {
        var rejected = 0
        var rejection: StoreError?
        var sequence: [Int64] = []
        sequence.reserveCapacity(batch.count)
        do throws(StoreError) {
            try statements.beginTransaction()
            if Engine.refusalAbortsTransaction && !isolated {
                // All or nothing anyway: the engine may send the whole batch at once.
                do throws(StoreError) {
                    sequence = try statements.applyAll(batch, at: now)
                } catch where error.isRejection {
                    statements.rollbackTransaction()
                    return .abortedByRefusal
                }
                try commit(batch, sequence, statements)
                return .committed(sequence: sequence, rejected: 0, rejection: nil)
            }
            for change in batch {
                if isolated { try statements.savepoint() }
                do throws(StoreError) {
                    sequence.append(try statements.apply(change, at: now))
                    if isolated { try statements.releaseSavepoint() }
                } catch where error.isRejection {
                    // SQLite (default ABORT resolution) undoes only the refused statement, a
                    // savepoint does the same elsewhere; the rest of the batch goes on.
                    if isolated { try statements.rollbackToSavepoint() }
                    sequence.append(0)
                    rejected += 1
                    rejection = error
                }
            }
            try commit(batch, sequence, statements)
        } catch {
            statements.rollbackTransaction()
            throw error
        }
        return .committed(sequence: sequence, rejected: rejected, rejection: rejection)
    }

    /// Commits the open transaction of `batch` (`sequence[i]`: the log row of change i, 0 if
    /// refused). Just before, its rows stop counting as pending and count as written at their log
    /// rows (`WriteQueue.markWritten`): a follower whose read sees the commit reads a position at
    /// or past them and applies what it read (this instance's conditional writes may have lost a
    /// race, and only that read tells); one that read earlier saw a position below them, because
    /// writers hold the write lock from their first log row to the commit. If the commit fails,
    /// the rows are pending again.
    private func commit(_ batch: [StoreChange], _ sequence: [Int64], _ statements: Engine) throws(StoreError) {
        queueLock.withLock { queue.markWritten(batch, sequence: sequence) }
        do throws(StoreError) {
            try statements.commitTransaction()
        } catch {
            queueLock.withLock { queue.unmarkWritten(batch) }
            throw error
        }
    }

    /// Applies `changes` in one transaction, all or nothing; returns which were written (a
    /// conditional move that found its placement gone logs nothing: log row 0). Call with the
    /// database lock held.
    func applyAtomically(_ changes: [StoreChange], _ statements: Engine) throws(StoreError) -> [Bool] {
        try statements.beginTransaction()
        do throws(StoreError) {
            let sequence = try statements.applyAll(changes, at: wallClockMs())
            try statements.commitTransaction()
            // Before the caller changes memory: from here a follower's older read of these rows
            // is deferred (see `RegistryStore.hasNewerWrites`).
            queueLock.withLock {
                for (change, seq) in zip(changes, sequence) where seq > 0 { queue.noteCommitted(StoreRow(change), seq) }
            }
            return sequence.map { $0 > 0 }
        } catch {
            statements.rollbackTransaction()
            throw error
        }
    }

    /// Closes the engine's connection and drops it. Later calls find nothing and throw `.closed`.
    func closeDatabase() {
        databaseLock.withLock {
            engine?.close()
            engine = nil
        }
    }
}

/// Unix milliseconds from the real-time clock (change-log rows are compared across processes).
func wallClockMs() -> Int64 {
    var t = timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
}

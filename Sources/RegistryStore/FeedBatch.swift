import RouteResolver

/// Which rows a batch of change-log entries asks a follower to read back, the same for every
/// engine: this instance's own authoritative writes are skipped (memory had them first), its
/// conditional ones (writer `*`) are not; a run of entries for one row is read once, and the
/// order of different rows is kept (a node before the placements on it).
enum FeedBatch {
    static func rowsToRead(_ entries: [ChangeLogEntry], writerID: String) -> [StoreRow] {
        var rows: [StoreRow] = []
        var previous: StoreRow?
        for e in entries where e.writer != writerID {
            // The schema's CHECK admits only known kinds; a newer build's kind is refused at
            // open (`schemaTooNew`), so an unknown one here cannot be read back and is passed over.
            guard let kind = StoreRow.Kind(rawValue: e.kind) else { continue }
            let row = StoreRow(kind: kind, pool: e.pool, name: e.name)
            if row == previous { continue }
            previous = row
            rows.append(row)
        }
        return rows
    }

    /// How long after it was written the newest change of another writer in `entries` reached
    /// this follower (ms; nil when there is none). Both clocks are wall clocks, of this machine
    /// and the writer's: across machines the figure is only as good as their time sync.
    static func lagMs(_ entries: [ChangeLogEntry], writerID: String, now: Int64) -> Int64? {
        guard let newest = entries.last(where: { $0.writer != writerID }) else { return nil }
        return max(0, now - newest.at)
    }
}

/// A change-feed thread (`SQLiteFollower`, `PostgresFollower`); its store's core starts and
/// stops it.
protocol FeedFollower: AnyObject {
    func start() throws(StoreError)
    /// Stops the thread and waits for it; a batch being handed over finishes first.
    func stop()
}

/// A follower's failures as its handler hears of them: each new one at once, the same one again
/// at most once a minute (a database down for an hour is one line a minute, not ten a second).
struct FeedFailures {
    private var last = ""
    private var lastMs: Int64 = 0

    mutating func report(_ error: StoreError, to handler: (StoreFeedEvent) -> Void) {
        let now = wallClockMs()
        guard error.description != last || now - lastMs >= 60_000 else { return }
        last = error.description
        lastMs = now
        handler(.failed(error.description))
    }

    /// A read succeeded: the next failure is news again.
    mutating func cleared() { last = "" }
}

/// Where a follower reports how it is doing (the store's core; `StoreStatistics` shows it).
protocol FeedSink: AnyObject, Sendable {
    /// A read of the log succeeded and saw it through `position`; `lagMs`: see `FeedBatch.lagMs`.
    func followerRead(through position: Int64, lagMs: Int64?)
    /// A read failed (the database unreachable, busy, broken); the follower retries by itself.
    func followerFailed()
}

/// One change-log row: which row changed, by which writer (`*`: read back by every instance).
struct ChangeLogEntry: Equatable {
    let seq: Int64
    let writer: String
    let kind: String
    let pool: String
    let name: String
    /// When the writer wrote it (Unix ms, the writer's clock).
    let at: Int64
}

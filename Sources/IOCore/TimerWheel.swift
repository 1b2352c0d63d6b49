/// A hashed timing wheel with lazy expiry (the shape nginx and h2o use for connection timeouts).
///
/// Each connection keeps its own `deadline`; the wheel only holds (slot, generation) entries, with
/// the tick they are due, in bucket `tick % bucketCount`. A deadline more than one turn away
/// shares its bucket with nearer ones: when the bucket comes up early, its entry stays in it for
/// the next turn. A due entry is checked against its owner: gone (generation changed), moved
/// later (re-queued), or due (fired). Moving a deadline later therefore costs nothing; moving it
/// earlier adds one entry. Buckets keep their capacity, so steady state allocates nothing.
public struct TimerWheel {
    public static let tickMs: UInt64 = 50
    public static let bucketCount = 1024  // 51.2 s per turn; later deadlines go round again
    private var buckets: [[(token: UInt64, tick: UInt64)]]
    /// The last tick whose bucket was processed.
    public private(set) var processedTick: UInt64
    public private(set) var pending = 0

    public init(now: UInt64) {
        buckets = Array(repeating: [], count: Self.bucketCount)
        processedTick = now / Self.tickMs
    }

    public static func tick(for deadline: UInt64) -> UInt64 { (deadline + tickMs - 1) / tickMs }

    /// Queues `token` for `tick` (must be > processedTick; earlier ticks are clamped to the next one).
    public mutating func insert(_ token: UInt64, tick: UInt64) -> UInt64 {
        let t = max(tick, processedTick + 1)
        buckets[Int(t % UInt64(Self.bucketCount))].append((token, t))
        pending += 1
        return t
    }

    /// Milliseconds until the next tick that may hold work, for epoll_wait; -1 when idle.
    public func timeoutMs(now: UInt64) -> Int32 {
        if pending == 0 { return -1 }
        let next = (processedTick + 1) * Self.tickMs
        return next > now ? Int32(next - now) : 0
    }

    /// Empties every bucket up to `now` into `due` as (token, tick) pairs. The caller handles them
    /// afterwards and may insert again then (never while the wheel is being advanced).
    public mutating func advance(now: UInt64, into due: inout [(token: UInt64, tick: UInt64)]) {
        let target = now / Self.tickMs
        // After a stall longer than a turn, one pass over the last turn sees every bucket with
        // a tick at which all its overdue entries count as due.
        if target > processedTick + UInt64(Self.bucketCount) { processedTick = target - UInt64(Self.bucketCount) }
        var steps = 0
        while processedTick < target && steps < Self.bucketCount {
            processedTick += 1
            steps += 1
            let i = Int(processedTick % UInt64(Self.bucketCount))
            if buckets[i].isEmpty { continue }
            // Hand out what is due; entries for a later turn stay (compacted in place).
            var kept = 0
            let n = buckets[i].count
            for j in 0..<n {
                let e = buckets[i][j]
                if e.tick <= processedTick {
                    due.append(e)
                } else {
                    buckets[i][kept] = e
                    kept += 1
                }
            }
            pending -= buckets[i].count - kept
            buckets[i].removeLast(buckets[i].count - kept)
        }
        if processedTick < target { processedTick = target }
    }
}

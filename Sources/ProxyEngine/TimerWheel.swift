/// A hashed timing wheel with lazy expiry (the shape nginx and h2o use for connection timeouts).
///
/// Each connection keeps its own `deadline`; the wheel only holds (slot, generation) entries in the
/// bucket of the tick they are due. When a bucket comes up, each entry is checked against its
/// owner: gone (generation changed), moved later (re-queued), or due (fired). Moving a deadline
/// later therefore costs nothing; moving it earlier adds one entry. Buckets keep their capacity,
/// so steady state allocates nothing.
struct TimerWheel {
    static let tickMs: UInt64 = 50
    static let bucketCount = 1024  // 51.2 s per turn; later deadlines go round again
    private var buckets: [[UInt64]]
    /// The last tick whose bucket was processed.
    private(set) var processedTick: UInt64
    private(set) var pending = 0

    init(now: UInt64) {
        buckets = Array(repeating: [], count: Self.bucketCount)
        processedTick = now / Self.tickMs
    }

    static func tick(for deadline: UInt64) -> UInt64 { (deadline + tickMs - 1) / tickMs }

    /// Queues `token` for `tick` (must be > processedTick; earlier ticks are clamped to the next one).
    mutating func insert(_ token: UInt64, tick: UInt64) -> UInt64 {
        let t = max(tick, processedTick + 1)
        buckets[Int(t % UInt64(Self.bucketCount))].append(token)
        pending += 1
        return t
    }

    /// Milliseconds until the next tick that may hold work, for epoll_wait; -1 when idle.
    func timeoutMs(now: UInt64) -> Int32 {
        if pending == 0 { return -1 }
        let next = (processedTick + 1) * Self.tickMs
        return next > now ? Int32(next - now) : 0
    }

    /// Empties every bucket up to `now` into `due` as (token, tick) pairs. The caller handles them
    /// afterwards and may insert again then (never while the wheel is being advanced).
    mutating func advance(now: UInt64, into due: inout [(token: UInt64, tick: UInt64)]) {
        let target = now / Self.tickMs
        var steps = 0
        while processedTick < target && steps < Self.bucketCount {
            processedTick += 1
            steps += 1
            let i = Int(processedTick % UInt64(Self.bucketCount))
            if buckets[i].isEmpty { continue }
            pending -= buckets[i].count
            for token in buckets[i] { due.append((token, processedTick)) }
            buckets[i].removeAll(keepingCapacity: true)
        }
        if processedTick < target { processedTick = target }
    }
}

import CLinux
import Glibc
import HTTP1Codec
import IOCore
import Synchronization

/// What the engine's main thread shares with one worker: the eventfd that wakes it and the flag
/// that asks it to drain.
final class WorkerControl: Sendable {
    let wakeFD: Int32
    let drainRequested = Atomic<Bool>(false)
    /// Users whose tunnels must close (their placements moved).
    private let posted = Mutex<[TunnelKey]>([])
    /// Client connections for edge tunnels this worker holds (EdgeTunnelDirectory).
    private let handoffs = Mutex<[EdgeHandoff]>([])

    init() throws(SysError) {
        wakeFD = try Sys.eventFD()
    }

    func post(_ keys: [TunnelKey]) {
        posted.withLock { $0.append(contentsOf: keys) }
        wake()
    }

    func takePosted() -> [TunnelKey] {
        posted.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }

    func postHandoff(_ h: EdgeHandoff) {
        handoffs.withLock { $0.append(h) }
        wake()
    }

    func takeHandoffs() -> [EdgeHandoff] {
        handoffs.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }

    /// Wakes the worker (it re-reads shared state such as the certificates on each turn).
    func wake() {
        Sys.signalEventFD(wakeFD)
    }

    func requestDrain() {
        drainRequested.store(true, ordering: .releasing)
        wake()
    }
}

/// Request ids: 128 bits from a per-worker SplitMix64 stream seeded by getrandom, as 32 hex digits.
struct RequestIDGenerator {
    private var state: UInt64

    init() {
        var seed: UInt64 = 0
        _ = cl_getrandom(&seed, 8)
        state = seed ^ cl_monotonic_us()
    }

    @inline(__always) mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A new request id as 32 lowercase hex digits at `p`.
    @inline(__always) mutating func write(_ p: UnsafeMutablePointer<UInt8>) {
        let a = next(), b = next()
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: a >> 32), p)
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: a), p + 8)
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: b >> 32), p + 16)
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: b), p + 24)
    }
}

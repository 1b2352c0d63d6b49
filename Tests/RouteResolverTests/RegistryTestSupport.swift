import Foundation
import Synchronization
@testable import RouteResolver

/// A fixed "now" for tests (Unix ms): heartbeats are set relative to it.
let testNow: Int64 = 1_700_000_000_000

/// A store that records what the registry queues, so tests can check what would be persisted.
final class RecordingStore: RegistryStore {
    private let changes = Mutex<[StoreChange]>([])

    var recorded: [StoreChange] { changes.withLock { $0 } }

    /// Placement writes of any kind (a new key's insert-if-absent, a move's upsert, a port).
    var placementUpserts: [PlacementRecord] {
        recorded.compactMap {
            switch $0 {
            case .upsertPlacement(let p), .insertPlacement(let p), .setHostPort(let p): return p
            default: return nil
            }
        }
    }

    func loadAll() throws -> (nodes: [NodeRecord], placements: [PlacementRecord]) { ([], []) }
    func loadPods() throws -> [PodRecord] { [] }
    func loadEdges() throws -> [EdgeRecord] { [] }
    /// Set by a test: the queue is full, every enqueue is refused.
    let refusing = Mutex<Bool>(false)
    func enqueue(_ change: StoreChange) -> Bool {
        if refusing.withLock({ $0 }) { return false }
        changes.withLock { $0.append(change) }
        return true
    }
    /// Moves a test lists here find their placement gone from `from` (another instance moved it).
    let movedElsewhere = Mutex<Set<String>>([])
    /// Set by a test: every `applyNow` fails (the database is unreachable).
    let failing = Mutex<Bool>(false)
    struct Unavailable: Error {}
    func applyNow(_ changes: [StoreChange]) throws -> [Bool] {
        if failing.withLock({ $0 }) { throw Unavailable() }
        let gone = movedElsewhere.withLock { $0 }
        let written = changes.map { c -> Bool in
            if case .movePlacement(let p, _) = c { return !gone.contains(p.key) }
            return true
        }
        self.changes.withLock { $0.append(contentsOf: zip(changes, written).filter(\.1).map(\.0)) }
        return written
    }
    func flush() {}
    func close() {}
    /// No other writers here: the feed tests call `Registry.applyExternal` directly.
    func follow(_ handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws {}
    /// Rows a test marks as written but not committed yet.
    let pendingRows = Mutex<Set<StoreRow>>([])
    /// Rows a test marks as committed by this instance, at a log position.
    let committedRows = Mutex<[StoreRow: Int64]>([:])
    func hasNewerWrites(for row: StoreRow, than position: Int64) -> Bool {
        pendingRows.withLock { $0.contains(row) } || committedRows.withLock { ($0[row] ?? .min) > position }
    }
    var health: StoreHealth {
        StoreHealth(engine: "recording", connected: true, following: false, lastChangeLagMs: nil, feedAgeMs: nil,
                    pendingChanges: 0, droppedChanges: 0)
    }
}

/// A workspace node with a fresh heartbeat unless told otherwise.
func testNode(_ name: String, pool: String = "workspace", weight: Int = 100, capacity: Int = 0,
              enabled: Bool = true, heartbeatAgeMs: Int64 = 1_000, isStatic: Bool = false,
              labels: [String: String] = [:]) -> NodeRecord {
    NodeRecord(name: name, pool: pool, address: "10.0.0.1:80", previewBaseURL: "http://\(name):80",
               apiBaseURL: "http://\(name):7001", enabled: enabled, weight: weight, capacity: capacity,
               labels: labels, lastHeartbeat: testNow - heartbeatAgeMs, isStatic: isStatic)
}

func makeRegistry(_ nodes: [NodeRecord], placements: [PlacementRecord] = [],
                  settings: PoolSettings = PoolSettings(), store: RecordingStore? = nil) throws -> Registry {
    try Registry(nodes: nodes, placements: placements, pools: ["workspace": settings], store: store)
}

extension Registry {
    /// `resolve` with a String key, as a test writes it.
    func resolve(_ key: String, pool: String = "workspace", now: Int64 = testNow) -> Resolution {
        var copy = key
        return copy.withUTF8 { resolve(pool: pool, key: UnsafeRawBufferPointer($0), now: now) }
    }

    /// The node name `resolve` routes `key` to, or nil for any other answer.
    func nodeName(_ key: String, pool: String = "workspace", now: Int64 = testNow) -> String? {
        resolve(key, pool: pool, now: now).routedNode?.name
    }

    /// The node `explain` says a new key would be placed on.
    func wouldPlace(_ key: String, pool: String = "workspace", now: Int64 = testNow) -> String? {
        if case .wouldPlace(let name) = explain(pool: pool, key: key, now: now).outcome { return name }
        return nil
    }

    func count(on name: String) -> Int? { node(named: name)?.placementCount }
}

/// Test keys like real user ids: `u` followed by a number, in a fixed sequence.
func testKeys(_ count: Int, prefix: String = "u") -> [String] {
    (0..<count).map { "\(prefix)\($0 &* 7919 &+ 104_729)" }
}

/// Runs `body(i)` on `count` threads at once (a start barrier lines them up) and waits for all.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let barrier = StartBarrier()
    let done = DispatchSemaphore(value: 0)
    for i in 0..<count {
        Thread {
            barrier.arrived.add(1, ordering: .acquiringAndReleasing)
            while barrier.arrived.load(ordering: .acquiring) < count {}
            body(i)
            done.signal()
        }.start()
    }
    for _ in 0..<count { done.wait() }
}

final class StartBarrier: Sendable {
    let arrived = Atomic<Int>(0)
}

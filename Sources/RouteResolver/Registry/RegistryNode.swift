import Synchronization

/// One node as the registry holds it: the engine gets this from a `Resolution` and connects to
/// `previewBaseURL` or `address`. Immutable; a node update replaces the object, so a request
/// that already holds one finishes with a consistent view. The heartbeat and placement count
/// change far more often than anything else and live in a shared `NodeCounters` instead, so
/// heartbeats do not replace the object.
public final class RegistryNode: Sendable {
    public let name: String
    public let pool: String
    public let address: String
    public let previewBaseURL: String
    public let apiBaseURL: String
    public let enabled: Bool
    public let weight: Int
    /// Most placements; 0 = unlimited.
    public let capacity: Int
    public let labels: [String: String]
    public let isStatic: Bool
    public let createdAt: Int64
    public let updatedAt: Int64

    /// Index in the registry's node tables; placements refer to nodes by it.
    let id: UInt16
    let counters: NodeCounters
    /// The name's UTF-8 bytes, hashed for every rendezvous choice.
    let nameBytes: [UInt8]

    init(_ record: NodeRecord, id: UInt16, counters: NodeCounters) {
        name = record.name
        pool = record.pool
        address = record.address
        previewBaseURL = record.previewBaseURL
        apiBaseURL = record.apiBaseURL
        enabled = record.enabled
        weight = record.weight
        capacity = record.capacity
        labels = record.labels
        isStatic = record.isStatic
        createdAt = record.createdAt
        updatedAt = record.updatedAt
        self.id = id
        self.counters = counters
        nameBytes = Array(record.name.utf8)
    }

    /// Unix milliseconds of the last heartbeat; 0 = never.
    public var lastHeartbeat: Int64 { counters.lastHeartbeat.load(ordering: .relaxed) }

    /// Counts one finished request (or tunnel) to this node.
    public func recordTraffic(bytesIn: UInt64, bytesOut: UInt64) {
        counters.requests.add(1, ordering: .relaxed)
        counters.bytesIn.add(bytesIn, ordering: .relaxed)
        counters.bytesOut.add(bytesOut, ordering: .relaxed)
    }

    /// Requests finished and bytes moved (client to node, node to client) since start.
    public var traffic: (requests: UInt64, bytesIn: UInt64, bytesOut: UInt64) {
        (counters.requests.load(ordering: .relaxed), counters.bytesIn.load(ordering: .relaxed),
         counters.bytesOut.load(ordering: .relaxed))
    }

    /// How many placements this node holds now.
    public var placementCount: Int { counters.placements.load(ordering: .relaxed) }

    /// The node as a store record, with its current heartbeat.
    public var record: NodeRecord {
        NodeRecord(name: name, pool: pool, address: address, previewBaseURL: previewBaseURL,
                   apiBaseURL: apiBaseURL, enabled: enabled, weight: weight, capacity: capacity,
                   labels: labels, lastHeartbeat: lastHeartbeat, isStatic: isStatic,
                   createdAt: createdAt, updatedAt: updatedAt)
    }

    /// Heartbeat fresh enough (or exempt): `now - lastHeartbeat <= thresholdMs`.
    @inline(__always)
    func isFresh(now: Int64, thresholdMs: Int64) -> Bool {
        isStatic || now &- lastHeartbeat <= thresholdMs
    }

    /// Room for one more placement.
    @inline(__always)
    func hasRoom() -> Bool {
        capacity == 0 || placementCount < capacity
    }

    /// Takes one unit of capacity, or returns false when the node is full. A compare-exchange
    /// rather than check-then-add: two workers placing different keys on the node's last free
    /// unit at once must not both succeed.
    func reserve() -> Bool {
        var current = counters.placements.load(ordering: .relaxed)
        while capacity == 0 || current < capacity {
            let (exchanged, original) = counters.placements.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}

/// The mutable part of a node, kept across updates of its record (same name, same counters).
final class NodeCounters: Sendable {
    /// Exact number of placements on the node: capacity and the spread policies depend on it.
    let placements = Atomic<Int>(0)
    let lastHeartbeat: Atomic<Int64>
    /// The newest heartbeat known to be in the store, whoever wrote it (this instance's queued
    /// writes, rows read back from the feed or at load): what `Registry.heartbeat` compares
    /// with before writing another.
    let storedHeartbeat: Atomic<Int64>
    /// Traffic through the gateway to this node (requests finished, bytes each way).
    let requests = Atomic<UInt64>(0)
    let bytesIn = Atomic<UInt64>(0)
    let bytesOut = Atomic<UInt64>(0)

    init(lastHeartbeat: Int64) {
        self.lastHeartbeat = Atomic(lastHeartbeat)
        self.storedHeartbeat = Atomic(lastHeartbeat)
    }

    /// A heartbeat that is (or is about to be) in the store: memory and the stored mark move.
    func noteStoredHeartbeat(_ at: Int64) {
        lastHeartbeat.fetchMax(at)
        storedHeartbeat.fetchMax(at)
    }
}

import Synchronization

/// The nodes and pools as the request path sees them: immutable, replaced as a whole on every
/// node or pool change. Each placement shard holds a reference, read under the shard lock the
/// lookup takes anyway, so a lookup needs no second lock and no lock shared by all workers.
final class NodeSnapshot: Sendable {
    /// Indexed by node id; nil where an id is free.
    let nodes: [RegistryNode?]
    /// Indexed by pool id.
    let pools: [PoolEntry]

    init(nodes: [RegistryNode?], pools: [PoolEntry]) {
        self.nodes = nodes
        self.pools = pools
    }

    /// The id of the pool named `name`. A linear scan: there are a handful of pools, and equal
    /// small Strings compare as two words, which beats hashing the name.
    @inline(__always)
    func poolID(_ name: String) -> Int? {
        for i in pools.indices where pools[i].name == name { return i }
        return nil
    }

    @inline(__always)
    func node(_ id: UInt16) -> RegistryNode? {
        let i = Int(id)
        return i < nodes.count ? nodes[i] : nil
    }
}

/// One pool: its settings and nodes, sorted by name (round robin order and tie-breaks).
final class PoolEntry: Sendable {
    let name: String
    let settings: PoolSettings
    let nodes: [RegistryNode]
    let cursor: RoundRobinCursor

    init(name: String, settings: PoolSettings, nodes: [RegistryNode], cursor: RoundRobinCursor) {
        self.name = name
        self.settings = settings
        self.nodes = nodes
        self.cursor = cursor
    }
}

/// Where round robin continues; kept across snapshots so a node update does not restart it.
final class RoundRobinCursor: Sendable {
    let next = Atomic<Int>(0)
}

/// The writer side of the node tables: changed only under the registry's control lock, and
/// turned into a fresh `NodeSnapshot` after every change.
struct NodeDirectory {
    private(set) var nodes: [RegistryNode?] = []
    private var idsByName: [String: UInt16] = [:]
    private(set) var poolNames: [String] = []
    private var settings: [String: PoolSettings]
    private var cursors: [String: RoundRobinCursor] = [:]

    /// Node ids are 16 bits in each placement; ids of removed nodes are reused.
    static let maxNodes = Int(UInt16.max)

    init(settings: [String: PoolSettings]) {
        self.settings = settings
        for name in settings.keys.sorted() { _ = poolID(name) }
    }

    func node(named name: String) -> RegistryNode? {
        idsByName[name].flatMap { nodes[Int($0)] }
    }

    func settings(of pool: String) -> PoolSettings {
        settings[pool] ?? PoolSettings()
    }

    /// The pool's id, adding the pool if it is new. Pools are never removed: placements refer to
    /// them by id.
    mutating func poolID(_ name: String) -> UInt16 {
        if let i = poolNames.firstIndex(of: name) { return UInt16(i) }
        poolNames.append(name)
        cursors[name] = RoundRobinCursor()
        return UInt16(poolNames.count - 1)
    }

    mutating func setSettings(_ value: PoolSettings, of pool: String) {
        settings[pool] = value
        _ = poolID(pool)
    }

    /// Adds or replaces a node. A replaced node keeps its id and counters (placement count,
    /// heartbeat); the heartbeat becomes the later of the stored one and the record's, so an
    /// admin update built from an older read cannot make a live node look stale.
    mutating func upsert(_ record: NodeRecord) throws(RegistryError) -> RegistryNode {
        try Self.validate(record)
        let node: RegistryNode
        if let id = idsByName[record.name], let old = nodes[Int(id)] {
            let counters = old.counters
            counters.noteStoredHeartbeat(record.lastHeartbeat)
            node = RegistryNode(record, id: id, counters: counters)
        } else {
            guard let id = freeID() else { throw .invalidNode("more than \(Self.maxNodes) nodes") }
            node = RegistryNode(record, id: id, counters: NodeCounters(lastHeartbeat: record.lastHeartbeat))
            idsByName[record.name] = id
        }
        _ = poolID(record.pool)
        if Int(node.id) == nodes.count { nodes.append(node) } else { nodes[Int(node.id)] = node }
        return node
    }

    /// Removes a node; its id becomes free.
    mutating func remove(named name: String) -> RegistryNode? {
        guard let id = idsByName.removeValue(forKey: name) else { return nil }
        defer { nodes[Int(id)] = nil }
        return nodes[Int(id)]
    }

    func snapshot() -> NodeSnapshot {
        var members = Array(repeating: [RegistryNode](), count: poolNames.count)
        for case let node? in nodes {
            if let p = poolNames.firstIndex(of: node.pool) { members[p].append(node) }
        }
        let pools = poolNames.indices.map { p in
            PoolEntry(name: poolNames[p], settings: settings(of: poolNames[p]),
                      nodes: members[p].sorted { $0.name < $1.name }, cursor: cursors[poolNames[p]]!)
        }
        return NodeSnapshot(nodes: nodes, pools: pools)
    }

    private func freeID() -> UInt16? {
        if let hole = nodes.firstIndex(where: { $0 == nil }) { return UInt16(hole) }
        return nodes.count < Self.maxNodes ? UInt16(nodes.count) : nil
    }

    /// Rejects records the registry cannot place by, before anything changes.
    static func validate(_ r: NodeRecord) throws(RegistryError) {
        guard (1...64).contains(r.name.utf8.count),
              r.name.utf8.allSatisfy({ KeyExtractor.isKeyByte($0) || $0 == UInt8(ascii: ".") }) else {
            throw .invalidNode("name must be 1-64 characters of [A-Za-z0-9._-]: \(r.name)")
        }
        guard !r.pool.isEmpty else { throw .invalidNode("\(r.name): empty pool") }
        guard (1...10_000).contains(r.weight) else { throw .invalidNode("\(r.name): weight must be 1...10000") }
        guard r.capacity >= 0 else { throw .invalidNode("\(r.name): negative capacity") }
    }
}

extension Atomic where Value == Int64 {
    /// Raises the value to at least `candidate`.
    func fetchMax(_ candidate: Int64) {
        var current = load(ordering: .relaxed)
        while current < candidate {
            let (done, seen) = compareExchange(expected: current, desired: candidate, ordering: .relaxed)
            if done { return }
            current = seen
        }
    }
}

extension NodeRecord {
    /// Whether the registry would take this record (name, pool, addresses, weight, capacity):
    /// for tools that build records outside it (`registry import`).
    public func validate() throws(RegistryError) { try NodeDirectory.validate(self) }
}

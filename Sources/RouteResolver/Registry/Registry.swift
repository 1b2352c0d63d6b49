import Synchronization

/// Nodes and sticky placements in memory: the answer to "which node does this key live on" for
/// every request, without the disk or the API server.
///
/// Placements are split over 64 shards by key hash, each a `Mutex` around a compact table
/// (`PlacementMap`) and a reference to the current immutable `NodeSnapshot`. A lookup takes the
/// one shard lock its key hashes to, finds the slot, reads the node from the snapshot beside it
/// and returns: no allocation, and no lock that all workers share, so with a few workers per
/// 64 shards a lookup almost never waits. Placing a new key happens under the same lock, so two
/// workers racing for one key end with one placement (the second finds the first's).
///
/// Node and pool changes are rare (admin calls, heartbeats); they are serialized by a control
/// lock, build a new snapshot and hand it to every shard. Placement counts and heartbeats are
/// atomics shared by all snapshots, so heartbeats never rebuild anything.
///
/// Every change is also queued on the `store` (which never blocks) in the order it was applied:
/// placement changes are queued under their shard lock, node changes under the control lock.
public final class Registry: Sendable {
    static let shardCount = 64

    let shards: [RegistryShard]
    let control: Mutex<NodeDirectory>
    let store: (any RegistryStore)?
    let total = Atomic<Int>(0)
    /// How many pods the shards hold together.
    let podTotal = Atomic<Int>(0)
    /// Edge nodes by id and hostname (Registry+Edges.swift): read once per passthrough connection
    /// or edge request, changed rarely.
    let edgeDirectory: Mutex<EdgeDirectory>
    let moveObservers = Mutex<[@Sendable ([MovedPlacement]) -> Void]>([])
    /// Placements given to `init` that were not loaded: their node is unknown or serves another
    /// pool, or their key is malformed. They are placed anew on their next request (and the
    /// store's row is then overwritten).
    public let skippedAtLoad: Int
    /// Pods given to `init` that break the record rules (`PodRecord.validate`): not loaded.
    public let podsSkippedAtLoad: Int

    /// The store's state (nil without a store), for `/readyz` and `/metrics`.
    public var storeHealth: StoreHealth? { store?.health }

    /// Loads nodes, placements and pods (from the store at start-up, plus static nodes from
    /// config). Pools named in `pools` get those settings; other pools get the defaults. Throws if
    /// a node record is invalid; nothing is queued on the store for what is loaded. A pod's owner
    /// need not be among `nodes` (see `PodRecord.nodeID`).
    public init(nodes: [NodeRecord], placements: [PlacementRecord], pods: [PodRecord] = [], edges: [EdgeRecord] = [],
                pools: [String: PoolSettings] = [:], store: (any RegistryStore)? = nil) throws(RegistryError) {
        var directory = NodeDirectory(settings: pools)
        for record in nodes { _ = try directory.upsert(record) }
        let snapshot = directory.snapshot()
        let perShard = placements.count / Self.shardCount + placements.count / (4 * Self.shardCount)
        var maps = (0..<Self.shardCount).map { _ in PlacementMap(minimumCapacity: perShard) }
        var skipped = 0
        var loaded = 0
        for p in placements {
            guard let node = directory.node(named: p.node), node.pool == p.pool,
                  let poolID = snapshot.poolID(p.pool) else {
                skipped += 1
                continue
            }
            var key = p.key
            let added = key.withUTF8 { utf8 -> Int? in
                let bytes = UnsafeRawBufferPointer(utf8)
                guard let digest = KeyDigest(bytes) else { return nil }
                let shard = digest.shard(of: Self.shardCount)
                if let slot = maps[shard].find(pool: UInt16(poolID), key: bytes, tag: digest.tag) {
                    // A duplicate (pool, key): the later record wins, counts stay exact.
                    snapshot.node(maps[shard].slots[slot].node)?.counters.placements.subtract(1, ordering: .relaxed)
                    maps[shard].setNode(node.id, hostPort: p.hostPort, at: slot)
                    node.counters.placements.add(1, ordering: .relaxed)
                    return 0
                }
                _ = maps[shard].insert(pool: UInt16(poolID), key: bytes, tag: digest.tag, node: node.id,
                                       hostPort: p.hostPort, createdAt: p.createdAt)
                node.counters.placements.add(1, ordering: .relaxed)
                return 1
            }
            if let added { loaded += added } else { skipped += 1 }
        }
        let (podTables, podsLoaded, podsSkipped) = Self.podTables(pods, shardCount: Self.shardCount)
        shards = zip(maps, podTables).map { RegistryShard(ShardState(nodes: snapshot, map: $0, pods: $1)) }
        control = Mutex(directory)
        edgeDirectory = Mutex(EdgeDirectory(edges.filter { (try? EdgeRecord.validate($0)) != nil }))
        self.store = store
        total.store(loaded, ordering: .relaxed)
        podTotal.store(podsLoaded, ordering: .relaxed)
        skippedAtLoad = skipped
        podsSkippedAtLoad = podsSkipped
    }

    /// The node for (pool, key). An existing placement answers at once — even on a disabled
    /// node, which keeps its users until drained. On a stale node (no fresh heartbeat) the
    /// pool's `onNodeDown` decides: `fail` → `.nodeDown`, `replace` → choose anew and overwrite.
    /// A new key is placed by the pool's policy, visible to every worker as soon as this
    /// returns, and queued on the store. Nothing else ever moves a placement.
    ///
    /// `key` is raw request bytes; `now` is Unix milliseconds. A pool with no nodes and no
    /// settings is unknown and answers `.noHealthyNode`, like a pool whose nodes are all down.
    public func resolve(pool: String, key: UnsafeRawBufferPointer, now: Int64) -> Resolution {
        guard let digest = KeyDigest(key) else { return .invalidKey }
        return shards[digest.shard(of: Self.shardCount)].state.withLock { state in
            guard let poolID = state.nodes.poolID(pool) else { return .noHealthyNode }
            guard let slot = state.map.find(pool: UInt16(poolID), key: key, tag: digest.tag) else {
                return place(&state, poolID: poolID, key: key, digest: digest, now: now)
            }
            let found = state.map.slots[slot]
            let entry = state.nodes.pools[poolID]
            if let node = state.nodes.node(found.node) {
                if node.isFresh(now: now, thresholdMs: entry.settings.heartbeatThresholdMs) {
                    return .routed(node: node, hostPort: found.hostPort, created: false)
                }
                if case .fail(let retryAfter) = entry.settings.onNodeDown {
                    return .nodeDown(node: node, retryAfterSeconds: retryAfter)
                }
            }
            return replace(&state, slot: slot, poolID: poolID, digest: digest, now: now)
        }
    }

    /// How many placements the registry holds.
    public var placementCount: Int { total.load(ordering: .relaxed) }

    // MARK: - Placing, under a shard lock

    private func place(_ state: inout ShardState, poolID: Int, key: UnsafeRawBufferPointer,
                       digest: KeyDigest, now: Int64) -> Resolution {
        let entry = state.nodes.pools[poolID]
        switch entry.chooseAndReserve(keyState: digest.keyState, now: now) {
        case .failure(let failure):
            return failure.resolution
        case .success(let node):
            _ = state.map.insert(pool: UInt16(poolID), key: key, tag: digest.tag, node: node.id, hostPort: 0,
                                 createdAt: now)
            total.add(1, ordering: .relaxed)
            store?.enqueue(.insertPlacement(PlacementRecord(
                pool: entry.name, key: String(decoding: key, as: UTF8.self), node: node.name,
                lastActive: now, createdAt: now, updatedAt: now)))
            return .routed(node: node, hostPort: 0, created: true)
        }
    }

    /// Moves a key off a stale node (`onNodeDown: .replace`). The host port is forgotten: it was
    /// the old node's. If no node can take the key, the placement stays where it was.
    private func replace(_ state: inout ShardState, slot: Int, poolID: Int, digest: KeyDigest,
                         now: Int64) -> Resolution {
        let entry = state.nodes.pools[poolID]
        switch entry.chooseAndReserve(keyState: digest.keyState, now: now) {
        case .failure(let failure):
            return failure.resolution
        case .success(let node):
            let old = state.map.slots[slot]
            state.nodes.node(old.node)?.counters.placements.subtract(1, ordering: .relaxed)
            state.map.setNode(node.id, hostPort: 0, at: slot)
            store?.enqueue(.upsertPlacement(PlacementRecord(
                pool: entry.name, key: state.map.key(at: slot), node: node.name,
                lastActive: now, createdAt: old.createdAt, updatedAt: now)))
            return .routed(node: node, hostPort: 0, created: true)
        }
    }

    /// Hands a new snapshot to every shard. Called under the control lock, so snapshots are
    /// installed in the order they were built.
    func publish(_ snapshot: NodeSnapshot) {
        for shard in shards { shard.state.withLock { $0.nodes = snapshot } }
    }

    /// The shard lock for a key's digest.
    func shard(for digest: KeyDigest) -> RegistryShard {
        shards[digest.shard(of: Self.shardCount)]
    }
}

/// What one shard lock guards.
struct ShardState {
    var nodes: NodeSnapshot
    var map: PlacementMap
    /// The pods whose id hashes here: a pod lookup takes the same one lock as a placement's and
    /// finds its owner in `nodes` beside it.
    var pods: PodTable
}

/// One shard. The padding keeps each shard's lock word on its own cache line: shards are
/// allocated together, and two workers locking neighbouring shards would otherwise keep
/// stealing the line from each other.
final class RegistryShard: Sendable {
    let state: Mutex<ShardState>
    private let padding: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    init(_ state: ShardState) {
        self.state = Mutex(state)
    }
}

extension ChoiceFailure {
    var resolution: Resolution {
        switch self {
        case .noHealthyNode: return .noHealthyNode
        case .insufficientCapacity: return .insufficientCapacity
        }
    }
}

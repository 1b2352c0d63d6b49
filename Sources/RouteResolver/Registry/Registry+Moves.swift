import Synchronization

/// A placement that moved to another node.
public struct MovedPlacement: Sendable, Equatable {
    public let pool: String
    public let key: String
    public let from: String
    public let to: String
}

/// The operator's moves: reassign one placement, drain a node. Both are serialized by the
/// control lock, planned first, written to the store in one transaction (`applyNow`), and only
/// then applied in memory: a store failure changes nothing, and a bad request is refused before
/// anything is planned. Observers (the engine, which closes moved users' tunnels) hear of every
/// move after it is visible to requests.
extension Registry {
    /// Calls `observer` with every batch of moved placements, from then on.
    public func observeMoves(_ observer: @escaping @Sendable ([MovedPlacement]) -> Void) {
        moveObservers.withLock { $0.append(observer) }
    }

    func announce(_ moved: [MovedPlacement]) {
        guard !moved.isEmpty else { return }
        for observer in moveObservers.withLock({ $0 }) { observer(moved) }
    }

    /// Moves (pool, key) to `node`, which must be in that pool, enabled, and have room. The
    /// container port is forgotten (it was the old node's).
    @discardableResult
    public func reassign(pool: String, key: String, to target: String, now: Int64) throws(RegistryError) -> MovedPlacement {
        var keyCopy = key
        let moved = try control.withLock { (directory) throws(RegistryError) -> MovedPlacement in
            guard let node = directory.node(named: target) else { throw .unknownNode(target) }
            let outcome = keyCopy.withUTF8 { utf8 -> Result<MovedPlacement, RegistryError> in
              Result { () throws(RegistryError) -> MovedPlacement in
                let bytes = UnsafeRawBufferPointer(utf8)
                guard let digest = KeyDigest(bytes) else { throw .invalidKey(key) }
                let shard = shard(for: digest)
                // Where it is now (it can only move under the control lock we hold, or by
                // `onNodeDown: replace`, which the re-check below covers).
                let current = shard.state.withLock { state -> (slot: Int, node: RegistryNode, createdAt: Int64)? in
                    guard let poolID = state.nodes.poolID(pool),
                          let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag),
                          let n = state.nodes.node(state.map.slots[slot].node) else { return nil }
                    return (slot, n, state.map.slots[slot].createdAt)
                }
                // The placement first: a request about one that does not exist is a 404, whatever the target.
                guard let current else { throw .unknownPlacement(pool: pool, key: key) }
                guard node.pool == pool else { throw .wrongPool(node: target, pool: pool) }
                guard node.enabled, node.isFresh(now: now, thresholdMs: directory.settings(of: pool).heartbeatThresholdMs) else {
                    throw .unusableTarget(target)
                }
                guard current.node.id != node.id else { throw .sameNode(target) }
                guard node.reserve() else { throw .noCapacity(target) }
                let record = PlacementRecord(pool: pool, key: key, node: node.name, hostPort: 0, lastActive: now,
                                             createdAt: current.createdAt, updatedAt: now)
                do { try store?.applyNow([.upsertPlacement(record)]) } catch {
                    node.counters.placements.subtract(1, ordering: .relaxed)
                    throw .storeFailed("\(error)")
                }
                let from = shard.state.withLock { state -> String? in
                    // Found again by key: an insert in between may have rehashed the table.
                    guard let poolID = state.nodes.poolID(pool),
                          let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag) else { return nil }
                    let oldNode = state.nodes.node(state.map.slots[slot].node)
                    oldNode?.counters.placements.subtract(1, ordering: .relaxed)
                    state.map.setNode(node.id, hostPort: 0, at: slot)
                    return oldNode?.name ?? current.node.name
                }
                guard let from else {
                    node.counters.placements.subtract(1, ordering: .relaxed)
                    throw .unknownPlacement(pool: pool, key: key)
                }
                return MovedPlacement(pool: pool, key: key, from: from, to: node.name)
              }
            }
            return try outcome.get()
        }
        announce([moved])
        return moved
    }

    /// What a drain did: the placements that moved, and how many stayed because no node
    /// could take them (all others full or down).
    public struct DrainResult: Sendable {
        public let moved: [MovedPlacement]
        public let unmoved: Int
        /// Planned moves the store found already made: another instance drained the same
        /// placements at the same time. This instance hears of where they went through the
        /// change feed (and closes their tunnels then), so each user moves once.
        public var movedElsewhere = 0
    }

    /// Moves placements off `source`: to `target` when given, else each where the pool's policy
    /// chooses among the other nodes. At most `limit` (nil: all). New keys keep away from the
    /// source only if it is disabled; an operator drains a disabled node.
    public func drain(node source: String, to target: String? = nil, limit: Int? = nil,
                      now: Int64) throws(RegistryError) -> DrainResult {
        let result = try control.withLock { (directory) throws(RegistryError) -> DrainResult in
            guard let from = directory.node(named: source) else { throw .unknownNode(source) }
            var fixed: RegistryNode?
            if let target {
                guard let t = directory.node(named: target) else { throw .unknownNode(target) }
                guard t.pool == from.pool else { throw .wrongPool(node: target, pool: from.pool) }
                guard t.id != from.id else { throw .sameNode(target) }
                guard t.enabled, t.isFresh(now: now, thresholdMs: directory.settings(of: from.pool).heartbeatThresholdMs) else {
                    throw .unusableTarget(target)
                }
                fixed = t
            }
            let snapshot = directory.snapshot()
            guard let poolID = snapshot.poolID(from.pool) else { return DrainResult(moved: [], unmoved: 0) }
            let entry = snapshot.pools[poolID]

            // 1. Plan: every key on the source, and a reserved place for each.
            struct Move { let shard: Int; let key: String; let to: RegistryNode; let createdAt: Int64 }
            var plan: [Move] = []
            var unmoved = 0
            let budget = limit ?? Int.max
            for (index, shard) in shards.enumerated() where plan.count < budget {
                let found = shard.state.withLock { state -> [(String, Int64)] in
                    var list: [(String, Int64)] = []
                    state.map.forEachOccupied { i in
                        let s = state.map.slots[i]
                        if s.node == from.id && Int(s.pool) == poolID { list.append((state.map.key(at: i), s.createdAt)) }
                    }
                    return list
                }
                for (key, createdAt) in found {
                    if plan.count >= budget { break }
                    var chosen: RegistryNode?
                    if let fixed {
                        chosen = fixed.reserve() ? fixed : nil
                    } else {
                        var k = key
                        let state = k.withUTF8 { KeyDigest(UnsafeRawBufferPointer($0))?.keyState }
                        if let state, case .success(let n) = entry.chooseAndReserve(keyState: state, now: now, excluding: from.id) {
                            chosen = n
                        }
                    }
                    guard let to = chosen else { unmoved += 1; continue }
                    plan.append(Move(shard: index, key: key, to: to, createdAt: createdAt))
                }
            }
            if plan.isEmpty { return DrainResult(moved: [], unmoved: unmoved) }

            // 2. Persist, all or nothing; each move only while the placement is still on the
            // source in the store (another instance may be draining it too).
            let records = plan.map {
                StoreChange.movePlacement(PlacementRecord(pool: from.pool, key: $0.key, node: $0.to.name, hostPort: 0,
                                                          lastActive: now, createdAt: $0.createdAt, updatedAt: now),
                                          from: from.name)
            }
            let written: [Bool]
            do { written = try store?.applyNow(records) ?? Array(repeating: true, count: plan.count) } catch {
                for m in plan { m.to.counters.placements.subtract(1, ordering: .relaxed) }
                throw .storeFailed("\(error)")
            }
            var movedElsewhere = 0

            // 3. Apply, shard by shard.
            var moved: [MovedPlacement] = []
            moved.reserveCapacity(plan.count)
            var start = 0
            while start < plan.count {
                var end = start
                while end < plan.count && plan[end].shard == plan[start].shard { end += 1 }
                shards[plan[start].shard].state.withLock { state in
                    for index in start..<end {
                        let m = plan[index]
                        guard written[index] else {
                            m.to.counters.placements.subtract(1, ordering: .relaxed)
                            movedElsewhere += 1
                            continue
                        }
                        // Found again by key (an insert may have rehashed the table); a key that
                        // left the source meanwhile (`onNodeDown: replace`) stays where it went.
                        var k = m.key
                        let slot = k.withUTF8 { utf8 -> Int? in
                            let bytes = UnsafeRawBufferPointer(utf8)
                            guard let digest = KeyDigest(bytes) else { return nil }
                            return state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag)
                        }
                        guard let slot, state.map.slots[slot].node == from.id else {
                            m.to.counters.placements.subtract(1, ordering: .relaxed)
                            continue
                        }
                        state.map.setNode(m.to.id, hostPort: 0, at: slot)
                        moved.append(MovedPlacement(pool: from.pool, key: m.key, from: from.name, to: m.to.name))
                    }
                }
                start = end
            }
            from.counters.placements.subtract(moved.count, ordering: .relaxed)
            moved.sort { $0.key < $1.key }
            var result = DrainResult(moved: moved, unmoved: unmoved)
            result.movedElsewhere = movedElsewhere
            return result
        }
        announce(result.moved)
        return result
    }

    /// Placements of a pool and/or node, sorted by pool then key, with paging. `total` counts
    /// every match.
    public func placements(pool: String?, node: String?, offset: Int, limit: Int) -> (total: Int, items: [PlacementRecord]) {
        var all: [PlacementRecord] = []
        for shard in shards {
            shard.state.withLock { state in
                state.map.forEachOccupied { i in
                    let s = state.map.slots[i]
                    let poolName = state.nodes.pools[Int(s.pool)].name
                    guard pool == nil || poolName == pool,
                          let n = state.nodes.node(s.node), node == nil || n.name == node else { return }
                    all.append(PlacementRecord(pool: poolName, key: state.map.key(at: i), node: n.name,
                                               hostPort: s.hostPort, createdAt: s.createdAt))
                }
            }
        }
        all.sort { ($0.pool, $0.key) < ($1.pool, $1.key) }
        let lower = min(max(offset, 0), all.count)
        let upper = min(lower + max(limit, 0), all.count)
        return (all.count, Array(all[lower..<upper]))
    }
}

import Synchronization

/// Changes another writer committed, as the store's change feed delivers them (a second process
/// on the same SQLite file today; other gateways on a shared database next). They are applied
/// to memory with the same effects as the local calls — new snapshots for node changes, the
/// shard tables for placements, counts kept exact — and nothing is queued on the store, which
/// has them already. Placements that moved are announced like local moves, so this instance
/// closes the moved users' tunnels too.
extension Registry {
    /// What `applyExternal` did with a batch.
    public struct FeedResult: Sendable, Equatable {
        public var applied = 0
        /// Changes that could not apply here (a placement whose node this instance does not
        /// know, a node record it refuses): counted, never half-applied.
        public var skipped = 0
        public var moved: [MovedPlacement] = []
        public init() {}
    }

    /// Applies `changes` in order (see the extension's notes).
    @discardableResult
    public func applyExternal(_ changes: [StoreChange]) -> FeedResult {
        var result = FeedResult()
        for change in changes {
            switch change {
            case .upsertNode(let record):
                let ok = control.withLock { (directory) -> Bool in
                    // A node never changes pools locally; a remote record that does is refused
                    // here too (its placements would belong to the old pool).
                    if let current = directory.node(named: record.name), current.pool != record.pool { return false }
                    guard (try? directory.upsert(record)) != nil else { return false }
                    publish(directory.snapshot())
                    return true
                }
                if ok { result.applied += 1 } else { result.skipped += 1 }
            case .deleteNode(let name):
                if removeNodeInMemory(name: name) { result.applied += 1 } else { result.skipped += 1 }
            case .upsertPlacement(let record):
                switch applyPlacement(record) {
                case .none: result.skipped += 1
                case .some(.none): result.applied += 1
                case .some(.some(let move)): result.applied += 1; result.moved.append(move)
                }
            case .deletePlacement(let pool, let key):
                if deletePlacementInMemory(pool: pool, key: key) { result.applied += 1 } else { result.skipped += 1 }
            }
        }
        announce(result.moved)
        return result
    }

    /// Sets (pool, key) → record.node. Nil: not applicable here; `.some(nil)`: applied, no move;
    /// `.some(move)`: the key was on another node.
    private func applyPlacement(_ record: PlacementRecord) -> MovedPlacement?? {
        var key = record.key
        return key.withUTF8 { utf8 -> MovedPlacement?? in
            let bytes = UnsafeRawBufferPointer(utf8)
            guard let digest = KeyDigest(bytes) else { return nil }
            return shard(for: digest).state.withLock { state -> MovedPlacement?? in
                guard let poolID = state.nodes.poolID(record.pool),
                      let node = state.nodes.pools[poolID].nodes.first(where: { $0.name == record.node }) else { return nil }
                if let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag) {
                    let old = state.map.slots[slot]
                    if old.node == node.id {
                        state.map.setHostPort(record.hostPort, at: slot)
                        return .some(nil)
                    }
                    let from = state.nodes.node(old.node)
                    from?.counters.placements.subtract(1, ordering: .relaxed)
                    node.counters.placements.add(1, ordering: .relaxed)
                    state.map.setNode(node.id, hostPort: record.hostPort, at: slot)
                    return .some(MovedPlacement(pool: record.pool, key: record.key, from: from?.name ?? "", to: node.name))
                }
                _ = state.map.insert(pool: UInt16(poolID), key: bytes, tag: digest.tag, node: node.id,
                                     hostPort: record.hostPort, createdAt: record.createdAt)
                node.counters.placements.add(1, ordering: .relaxed)
                total.add(1, ordering: .relaxed)
                return .some(nil)
            }
        }
    }

    private func deletePlacementInMemory(pool: String, key: String) -> Bool {
        var key = key
        return key.withUTF8 { utf8 -> Bool in
            let bytes = UnsafeRawBufferPointer(utf8)
            guard let digest = KeyDigest(bytes) else { return false }
            return shard(for: digest).state.withLock { state -> Bool in
                guard let poolID = state.nodes.poolID(pool),
                      let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag) else { return false }
                state.nodes.node(state.map.slots[slot].node)?.counters.placements.subtract(1, ordering: .relaxed)
                state.map.remove(at: slot)
                total.subtract(1, ordering: .relaxed)
                return true
            }
        }
    }

    /// `removeNode` without the store: the node and whatever placements it still holds here.
    private func removeNodeInMemory(name: String) -> Bool {
        control.withLock { directory -> Bool in
            guard let node = directory.remove(named: name) else { return false }
            let snapshot = directory.snapshot()
            var dropped = 0
            for shard in shards {
                dropped += shard.state.withLock { state -> Int in
                    state.nodes = snapshot
                    return state.map.removeAll(where: { $0.node == node.id }) { _, _ in }
                }
            }
            total.subtract(dropped, ordering: .relaxed)
            node.counters.placements.subtract(dropped, ordering: .relaxed)
            return true
        }
    }
}

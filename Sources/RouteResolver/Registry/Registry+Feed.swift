import Synchronization

/// Rows as the store's change feed delivers them: what a commit left in the store, by this
/// instance or another writer (a second process on the same SQLite file today; other gateways
/// on a shared database next). They are applied to memory with the same effects as the local
/// calls — new snapshots for node changes, the shard tables for placements, counts kept exact —
/// and nothing is queued on the store, which has them already. A row this instance wrote itself
/// usually changes nothing (memory has it); after a race with another writer it brings memory
/// to the row that won. Placements that moved are announced like local moves, so this instance
/// closes the moved users' tunnels too.
extension Registry {
    /// What `applyExternal` did with a batch.
    public struct FeedResult: Sendable, Equatable {
        public var applied = 0
        /// Changes that could not apply here (a placement whose node this instance does not
        /// know, a node record it refuses): counted, never half-applied.
        public var skipped = 0
        /// Rows this instance wrote after they were read (or has not committed yet): memory is newer.
        public var deferred = 0
        public var moved: [MovedPlacement] = []
        public init() {}
    }

    /// Applies `changes` in order (see the extension's notes). `position` is how far the store's
    /// log stood when the rows were read (`StoreFeedEvent`): a row this instance wrote again
    /// since, or has not committed yet, is older than memory and deferred. The default counts
    /// only uncommitted writes.
    @discardableResult
    public func applyExternal(_ changes: [StoreChange], through position: Int64 = .max) -> FeedResult {
        var result = FeedResult()
        for change in changes {
            // The pending check and the apply happen under the lock that the local writes of
            // that row hold while they change memory and queue the change, so no local write
            // can slip in between.
            switch change {
            case .upsertNode(let record):
                switch applyNode(record, change, position) {
                case .some(true): result.applied += 1
                case .some(false): result.skipped += 1
                case .none: result.deferred += 1
                }
            case .heartbeat(let name, let at):
                control.withLock { $0.node(named: name)?.counters.noteStoredHeartbeat(at) }
                result.applied += 1
            case .deleteNode(let name):
                let applied = control.withLock { (directory) -> Bool in
                    if store?.hasNewerWrites(for: StoreRow(change), than: position) == true { return false }
                    removeNodeInMemory(&directory, name: name)  // already gone: nothing to do
                    return true
                }
                if applied { result.applied += 1 } else { result.deferred += 1 }
            case .upsertPlacement(let record), .insertPlacement(let record), .setHostPort(let record), .movePlacement(let record, _):
                switch applyPlacement(record, change, position) {
                case .skipped: result.skipped += 1
                case .deferred: result.deferred += 1
                case .applied(nil): result.applied += 1
                case .applied(let move?): result.applied += 1; result.moved.append(move)
                }
            case .deletePlacement(let pool, let key):
                if deletePlacementInMemory(pool: pool, key: key, change, position) { result.applied += 1 } else { result.deferred += 1 }
            case .upsertPod(let record):
                guard (try? PodRecord.validate(record)) != nil else { result.skipped += 1; continue }
                switch setPodInMemory(record, unlessNewerThan: position) {
                case .skipped: result.skipped += 1
                case .deferred: result.deferred += 1
                case .applied(nil): result.applied += 1
                case .applied(let move?): result.applied += 1; result.moved.append(move)
                }
            case .deletePod(let id):
                if removePodInMemory(id, unlessNewerThan: position) { result.applied += 1 } else { result.deferred += 1 }
            case .upsertEdge(let record):
                switch applyEdge(record, unlessNewerThan: position) {
                case true?: result.applied += 1
                case false?: result.skipped += 1
                case nil: result.deferred += 1
                }
            case .deleteEdge(let id):
                if removeEdgeInMemory(id, unlessNewerThan: position) { result.applied += 1 } else { result.deferred += 1 }
            }
        }
        announce(result.moved)
        return result
    }

    /// A node row. Unchanged but for a later heartbeat (the common case: heartbeats, and this
    /// instance's own writes read back): only the shared heartbeat counter moves — no new node
    /// object, no snapshot, so the workers' per-node caches stay valid. A row in another pool
    /// than the node here means it was deleted and created again: the old one (and what it held
    /// here) goes first. False for a record the registry refuses.
    private func applyNode(_ record: NodeRecord, _ change: StoreChange, _ position: Int64) -> Bool? {
        control.withLock { (directory) -> Bool? in
            if store?.hasNewerWrites(for: StoreRow(change), than: position) == true { return nil }
            if let current = directory.node(named: record.name) {
                var same = current.record
                same.lastHeartbeat = record.lastHeartbeat
                if same == record {
                    current.counters.noteStoredHeartbeat(record.lastHeartbeat)
                    return true
                }
                if current.pool != record.pool {
                    guard (try? NodeDirectory.validate(record)) != nil else { return false }
                    removeNodeInMemory(&directory, name: record.name)
                }
            }
            guard (try? directory.upsert(record)) != nil else { return false }
            publish(directory.snapshot())
            return true
        }
    }

    private enum PlacementOutcome {
        /// Not applicable here (a node this instance does not know, a malformed key).
        case skipped
        /// This instance wrote the key after the row was read, or has not committed its write yet.
        case deferred
        /// Applied; with the move when the key was on another node.
        case applied(MovedPlacement?)
    }

    /// Sets (pool, key) → record.node.
    private func applyPlacement(_ record: PlacementRecord, _ change: StoreChange, _ position: Int64) -> PlacementOutcome {
        var key = record.key
        return key.withUTF8 { utf8 -> PlacementOutcome in
            let bytes = UnsafeRawBufferPointer(utf8)
            guard let digest = KeyDigest(bytes) else { return .skipped }
            return shard(for: digest).state.withLock { state -> PlacementOutcome in
                if store?.hasNewerWrites(for: StoreRow(change), than: position) == true { return .deferred }
                guard let poolID = state.nodes.poolID(record.pool),
                      let node = state.nodes.pools[poolID].nodes.first(where: { $0.name == record.node }) else { return .skipped }
                if let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag) {
                    let old = state.map.slots[slot]
                    if old.node == node.id {
                        state.map.setHostPort(record.hostPort, at: slot)
                        return .applied(nil)
                    }
                    let from = state.nodes.node(old.node)
                    from?.counters.placements.subtract(1, ordering: .relaxed)
                    node.counters.placements.add(1, ordering: .relaxed)
                    state.map.setNode(node.id, hostPort: record.hostPort, at: slot)
                    return .applied(MovedPlacement(pool: record.pool, key: record.key, from: from?.name ?? "", to: node.name))
                }
                _ = state.map.insert(pool: UInt16(poolID), key: bytes, tag: digest.tag, node: node.id,
                                     hostPort: record.hostPort, createdAt: record.createdAt)
                node.counters.placements.add(1, ordering: .relaxed)
                total.add(1, ordering: .relaxed)
                return .applied(nil)
            }
        }
    }

    /// False when this instance wrote the key after the row was read (memory is newer); an
    /// absent key (already deleted here) counts as applied.
    private func deletePlacementInMemory(pool: String, key: String, _ change: StoreChange, _ position: Int64) -> Bool {
        var key = key
        return key.withUTF8 { utf8 -> Bool in
            let bytes = UnsafeRawBufferPointer(utf8)
            guard let digest = KeyDigest(bytes) else { return true }
            return shard(for: digest).state.withLock { state -> Bool in
                if store?.hasNewerWrites(for: StoreRow(change), than: position) == true { return false }
                guard let poolID = state.nodes.poolID(pool),
                      let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag) else { return true }
                state.nodes.node(state.map.slots[slot].node)?.counters.placements.subtract(1, ordering: .relaxed)
                state.map.remove(at: slot)
                total.subtract(1, ordering: .relaxed)
                return true
            }
        }
    }

    /// `removeNode` without the store, under the control lock the caller holds: the node and
    /// whatever placements it still holds here.
    @discardableResult
    private func removeNodeInMemory(_ directory: inout NodeDirectory, name: String) -> Bool {
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

    /// Makes memory match everything the store holds (a follower that fell behind the store's
    /// history): nodes not stored are removed, stored ones applied; placements and pods not
    /// stored are dropped, stored ones applied — except rows this instance wrote after the read
    /// at `position`. Moves (of placements and of pods' owners) are announced as for any change.
    @discardableResult
    public func resync(_ contents: StoreContents, through position: Int64 = .max) -> FeedResult {
        let (nodes, placements) = (contents.nodes, contents.placements)
        let stored = Set(nodes.map(\.name))
        let gone = control.withLock { directory in directory.nodes.compactMap { $0?.name }.filter { !stored.contains($0) } }
        var result = applyExternal(gone.map { .deleteNode(name: $0) } + nodes.map { .upsertNode($0) }, through: position)
        var keys = Set<String>()
        keys.reserveCapacity(placements.count)
        for p in placements { keys.insert("\(p.pool)\u{0}\(p.key)") }
        var dropped = 0
        for shard in shards {
            dropped += shard.state.withLock { state -> Int in
                let snapshot = state.nodes
                let names = snapshot.pools.map(\.name)
                return state.map.removeAll(whereKey: { slot, key in
                    let pool = names[Int(slot.pool)], name = String(decoding: key, as: UTF8.self)
                    return !keys.contains("\(pool)\u{0}\(name)")
                        && store?.hasNewerWrites(for: StoreRow(pool: pool, key: name), than: position) != true
                }) { slot, _ in
                    snapshot.node(slot.node)?.counters.placements.subtract(1, ordering: .relaxed)
                }
            }
        }
        total.subtract(dropped, ordering: .relaxed)
        let applied = applyExternal(placements.map { .upsertPlacement($0) }, through: position)
        result.applied += applied.applied + dropped
        result.skipped += applied.skipped
        result.moved += applied.moved
        let pods = resyncPods(contents.pods, through: position)
        result.applied += pods.applied
        result.skipped += pods.skipped
        result.deferred += pods.deferred
        result.moved += pods.moved
        let storedEdges = Set(contents.edges.map(\.id))
        let goneEdges = edges().map(\.id).filter { !storedEdges.contains($0) }
        let edgeResult = applyExternal(goneEdges.map { .deleteEdge(id: $0) } + contents.edges.map { .upsertEdge($0) }, through: position)
        result.applied += edgeResult.applied
        result.skipped += edgeResult.skipped
        result.deferred += edgeResult.deferred
        return result
    }
}

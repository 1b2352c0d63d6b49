import Synchronization

/// Reading and annotating single placements, for the admin plane and the port lookup.
extension Registry {
    /// The placement of (pool, key), or nil. `lastActive` and `updatedAt` read as 0: memory
    /// keeps only what routing needs (tracking activity would cost a write per request).
    public func placement(pool: String, key: String) -> PlacementRecord? {
        withKeyBytes(key) { bytes -> PlacementRecord? in
            guard let digest = KeyDigest(bytes) else { return nil }
            return shard(for: digest).state.withLock { state -> PlacementRecord? in
                guard let poolID = state.nodes.poolID(pool),
                      let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag),
                      let node = state.nodes.node(state.map.slots[slot].node) else { return nil }
                let s = state.map.slots[slot]
                return PlacementRecord(pool: pool, key: key, node: node.name, hostPort: s.hostPort,
                                       createdAt: s.createdAt)
            }
        }
    }

    /// Records the container port of an existing placement (found by the node API or reported
    /// by the node); 0 forgets it. Queued on the store.
    public func setHostPort(pool: String, key: String, port: UInt16, now: Int64) throws(RegistryError) {
        let outcome: PlacementRecord? = withKeyBytes(key) { bytes in
            guard let digest = KeyDigest(bytes) else { return nil }
            return shard(for: digest).state.withLock { state -> PlacementRecord? in
                guard let poolID = state.nodes.poolID(pool),
                      let slot = state.map.find(pool: UInt16(poolID), key: bytes, tag: digest.tag),
                      let node = state.nodes.node(state.map.slots[slot].node) else { return nil }
                state.map.setHostPort(port, at: slot)
                // The node is reporting on the container, so the user is active now.
                let record = PlacementRecord(pool: pool, key: key, node: node.name, hostPort: port, lastActive: now,
                                             createdAt: state.map.slots[slot].createdAt, updatedAt: now)
                // Queued under the shard lock so it cannot overtake a placement change of this key.
                store?.enqueue(.setHostPort(record))
                return record
            }
        }
        if outcome == nil {
            guard withKeyBytes(key, { KeyDigest($0) != nil }) else { throw .invalidKey(key) }
            throw .unknownPlacement(pool: pool, key: key)
        }
    }

    /// Which node (pool, key) is on, or would be placed on now, and how every node of the pool
    /// scores, without creating or changing anything.
    public func explain(pool: String, key: String, now: Int64) -> PlacementExplanation {
        withKeyBytes(key) { explain(pool: pool, key: $0, now: now) }
    }

    /// `explain` for raw key bytes.
    public func explain(pool: String, key: UnsafeRawBufferPointer, now: Int64) -> PlacementExplanation {
        guard let digest = KeyDigest(key) else {
            return PlacementExplanation(outcome: .invalidKey, policy: nil, candidates: [])
        }
        let (snapshot, existing) = shard(for: digest).state.withLock { state -> (NodeSnapshot, PlacementMap.Slot?) in
            let slot = state.nodes.poolID(pool).flatMap { state.map.find(pool: UInt16($0), key: key, tag: digest.tag) }
            return (state.nodes, slot.map { state.map.slots[$0] })
        }
        guard let poolID = snapshot.poolID(pool) else {
            return PlacementExplanation(outcome: .unknownPool, policy: nil, candidates: [])
        }
        let entry = snapshot.pools[poolID]
        let candidates = entry.nodes.map { node in
            let hash = node.nameBytes.withUnsafeBytes { StableHash.rendezvous(keyState: digest.keyState, nodeName: $0) }
            return PlacementExplanation.Candidate(
                name: node.name, enabled: node.enabled,
                fresh: node.isFresh(now: now, thresholdMs: entry.settings.heartbeatThresholdMs),
                placements: node.placementCount, capacity: node.capacity, weight: node.weight,
                score: Rendezvous.score(weight: node.weight, hash: hash))
        }
        let outcome: PlacementExplanation.Outcome
        if let existing, let node = snapshot.node(existing.node),
           node.isFresh(now: now, thresholdMs: entry.settings.heartbeatThresholdMs) {
            outcome = .existing(node: node.name, hostPort: existing.hostPort)
        } else if let existing, let node = snapshot.node(existing.node),
                  case .fail(let retryAfter) = entry.settings.onNodeDown {
            outcome = .nodeDown(node: node.name, retryAfterSeconds: retryAfter)
        } else {
            switch entry.choose(keyState: digest.keyState, now: now, advancing: false) {
            case .success(let node): outcome = .wouldPlace(node: node.name)
            case .failure(.noHealthyNode): outcome = .noHealthyNode
            case .failure(.insufficientCapacity): outcome = .insufficientCapacity
            }
        }
        return PlacementExplanation(outcome: outcome, policy: entry.settings.policy, candidates: candidates)
    }

    private func withKeyBytes<T>(_ key: String, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        var copy = key
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Registry {
    /// `resolve` without changing anything (route explain): the node an existing placement
    /// names, or the node a new key would be placed on now (`created` then says it would be).
    public func dryResolve(pool: String, key: UnsafeRawBufferPointer, now: Int64) -> Resolution {
        let e = explain(pool: pool, key: key, now: now)
        switch e.outcome {
        case .existing(let name, let hostPort):
            return node(named: name).map { .routed(node: $0, hostPort: hostPort, created: false) } ?? .noHealthyNode
        case .wouldPlace(let name):
            return node(named: name).map { .routed(node: $0, hostPort: 0, created: true) } ?? .noHealthyNode
        case .nodeDown(let name, let retryAfter):
            return node(named: name).map { .nodeDown(node: $0, retryAfterSeconds: retryAfter) } ?? .noHealthyNode
        case .noHealthyNode, .unknownPool: return .noHealthyNode
        case .insufficientCapacity: return .insufficientCapacity
        case .invalidKey: return .invalidKey
        }
    }

    /// Creates the placement of a key that has none yet, on `node` (an operator or a script
    /// pinning a user before their first request; `PUT /admin/placements/{pool}/{key}`). The
    /// store first (insert-if-absent: another instance that placed the key meanwhile wins),
    /// memory after. False when the key was already on `node` (nothing to do).
    @discardableResult
    public func pin(pool: String, key: String, on name: String, now: Int64) throws(RegistryError) -> Bool {
        var keyText = key
        guard keyText.withUTF8({ KeyExtractor.isValidKey(UnsafeRawBufferPointer($0)) }) else { throw .invalidKey(key) }
        let node = control.withLock { $0.node(named: name) }
        guard let node else { throw .unknownNode(name) }
        guard node.pool == pool else { throw .wrongPool(node: name, pool: pool) }
        if let current = placement(pool: pool, key: key) {
            if current.node == name { return false }
            throw .alreadyPlaced(pool: pool, key: key, node: current.node)
        }
        let record = PlacementRecord(pool: pool, key: key, node: name, hostPort: 0, lastActive: now, createdAt: now, updatedAt: now)
        if let store {
            let written: [Bool]
            do { written = try store.applyNow([.insertPlacement(record)]) } catch { throw .storeFailed("\(error)") }
            if written.first == false { throw .alreadyPlaced(pool: pool, key: key, node: "(placed by another instance)") }
        }
        _ = applyExternal([.insertPlacement(record)])
        return true
    }
}

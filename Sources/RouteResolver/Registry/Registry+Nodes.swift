import Synchronization

/// Node and pool changes: serialized by the control lock, validated before anything changes,
/// queued on the store, then published to every shard as a new snapshot. None of them moves an
/// existing placement; only `removeNode` drops some (its own).
extension Registry {
    /// Adds a node or replaces its record. A replaced node keeps its placements, count and
    /// heartbeat (the later of the stored one and the record's). Changing weight or capacity
    /// affects only new keys.
    public func upsertNode(_ record: NodeRecord) throws(RegistryError) {
        try control.withLock { (directory) throws(RegistryError) in
            let node = try directory.upsert(record)
            store?.enqueue(.upsertNode(node.record))
            publish(directory.snapshot())
        }
    }

    /// Changes the fields `patch` sets on the node `name`, or creates it (then `pool`, `address`
    /// and `previewBaseURL` are required), in one step under the control lock: a concurrent
    /// `setEnabled` is never overwritten by a record read before it. Returns the record before
    /// (nil: created) and after.
    @discardableResult
    public func patchNode(name: String, _ patch: NodePatch, now: Int64) throws(RegistryError) -> (before: NodeRecord?, after: NodeRecord) {
        try control.withLock { (directory) throws(RegistryError) -> (NodeRecord?, NodeRecord) in
            let current = directory.node(named: name)?.record
            var record: NodeRecord
            if let current {
                if let pool = patch.pool, pool != current.pool { throw .poolChange(node: name, pool: current.pool) }
                record = current
            } else {
                for (field, value) in [("pool", patch.pool), ("address", patch.address), ("preview_base_url", patch.previewBaseURL)]
                    where value == nil { throw .missingField(field) }
                record = NodeRecord(name: name, pool: patch.pool!, address: "", createdAt: now)
            }
            if let v = patch.address { record.address = v }
            if let v = patch.previewBaseURL { record.previewBaseURL = v }
            if let v = patch.apiBaseURL { record.apiBaseURL = v }
            if let v = patch.enabled { record.enabled = v }
            if let v = patch.weight { record.weight = v }
            if let v = patch.capacity { record.capacity = v }
            if let v = patch.labels { record.labels = v }
            if let v = patch.isStatic { record.isStatic = v }
            if let v = patch.heartbeat { record.lastHeartbeat = max(record.lastHeartbeat, v) }
            var unchanged = record
            unchanged.lastHeartbeat = current?.lastHeartbeat ?? 0
            if current == nil || unchanged != current { record.updatedAt = now }
            let node = try directory.upsert(record)
            store?.enqueue(.upsertNode(node.record))
            publish(directory.snapshot())
            return (current, node.record)
        }
    }

    /// Takes a node out of scheduling (false) or back in (true). A disabled node keeps the
    /// placements it has: its users stay until an operator drains it.
    public func setEnabled(name: String, _ enabled: Bool, now: Int64) throws(RegistryError) {
        try control.withLock { (directory) throws(RegistryError) in
            guard let current = directory.node(named: name) else { throw .unknownNode(name) }
            var record = current.record
            record.enabled = enabled
            record.updatedAt = now
            let node = try directory.upsert(record)
            store?.enqueue(.upsertNode(node.record))
            publish(directory.snapshot())
        }
    }

    /// Records a heartbeat at `now` (Unix ms). Only the node's shared counter changes, so no
    /// snapshot is rebuilt; a heartbeat older than the last one is ignored. It is written to the
    /// store only when the stored one is older than the pool's `heartbeatWriteIntervalMs`
    /// (see `PoolSettings`); returns whether it was.
    @discardableResult
    public func heartbeat(name: String, now: Int64) throws(RegistryError) -> Bool {
        try control.withLock { (directory) throws(RegistryError) -> Bool in
            guard let node = directory.node(named: name) else { throw .unknownNode(name) }
            node.counters.lastHeartbeat.fetchMax(now)
            let interval = directory.settings(of: node.pool).heartbeatWriteIntervalMs
            guard now &- node.counters.storedHeartbeat.load(ordering: .relaxed) >= interval else { return false }
            // A refused write (a full queue) leaves the mark, so the next heartbeat tries again.
            guard store?.enqueue(.heartbeat(name: name, at: now)) ?? true else { return false }
            node.counters.storedHeartbeat.fetchMax(now)
            return true
        }
    }

    /// Removes a node and drops its placements (queued on the store as deletions, before the
    /// node's own deletion). Their keys are placed anew, by the pool's policy, on their next
    /// request. Removal is the operator's explicit act; to keep users where they are, disable
    /// the node and drain it instead. Returns how many placements were dropped.
    @discardableResult
    public func removeNode(name: String) throws(RegistryError) -> Int {
        try control.withLock { (directory) throws(RegistryError) -> Int in
            guard let node = directory.remove(named: name) else { throw .unknownNode(name) }
            let snapshot = directory.snapshot()
            var dropped = 0
            // The new snapshot and the dropped placements change together under each shard's
            // lock, so no shard ever holds a placement whose node id is free (and reusable).
            for shard in shards {
                dropped += shard.state.withLock { state -> Int in
                    state.nodes = snapshot
                    return state.map.removeAll(where: { $0.node == node.id }) { slot, key in
                        store?.enqueue(.deletePlacement(pool: snapshot.pools[Int(slot.pool)].name, key: key))
                    }
                }
            }
            total.subtract(dropped, ordering: .relaxed)
            node.counters.placements.subtract(dropped, ordering: .relaxed)
            store?.enqueue(.deleteNode(name: name))
            return dropped
        }
    }

    /// Changes a pool's settings (from a configuration reload). Affects only new keys and, for
    /// `onNodeDown`, keys on stale nodes.
    public func setPoolSettings(_ settings: PoolSettings, for pool: String) {
        control.withLock { directory in
            directory.setSettings(settings, of: pool)
            publish(directory.snapshot())
        }
    }

    /// Every node, by pool then name.
    public var nodes: [RegistryNode] {
        control.withLock { directory in
            directory.nodes.compactMap { $0 }.sorted { ($0.pool, $0.name) < ($1.pool, $1.name) }
        }
    }

    /// The node named `name`, if any.
    public func node(named name: String) -> RegistryNode? {
        control.withLock { $0.node(named: name) }
    }
}

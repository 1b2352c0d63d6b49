import Synchronization

/// The routing answer for one pod key (hot path).
public enum PodResolution: Sendable {
    /// The key bytes break the pod-id rules (`[A-Za-z0-9_-]{1,64}`).
    case invalidKey
    /// No such pod.
    case unknownPod
    /// The owner is a registered, enabled center of `centerPool` with a fresh heartbeat (the
    /// pool's `heartbeatThresholdMs`).
    case owner(RegistryNode)
    /// The owner is not usable: not registered (`node == nil`), in another pool, disabled, or its
    /// heartbeat is stale. The pod is not moved for it — its data lives there — so the answer is
    /// a 503 with `retryAfterSeconds` (the center pool's `onNodeDown: fail` delay, as for a
    /// placement's `nodeDown`; under `replace`, which pods ignore, the heartbeat threshold).
    case ownerDown(name: String, node: RegistryNode?, retryAfterSeconds: Int)
}

/// Data pods: who owns a pod (every pod request), and the operator's writes (create, delete,
/// migrate).
///
/// Pods live in the placement shards (`ShardState.pods`, by the same key hash), so a lookup
/// takes one shard lock, finds the record by its key bytes without building a String, and
/// checks the owner in the node snapshot the shard already holds: no allocation and no lock
/// shared by all workers. The owner is kept by name, not node id, because a pod may name a
/// center that has not registered yet (pods are imported before their centers start).
///
/// Writes are serialized by the control lock like reassign and drain, written to the store
/// first (`applyNow`, one transaction) and only then applied in memory, so a store failure
/// changes nothing. A pod whose owner changes (a migration, a replace, a row from the feed)
/// is announced to the move observers as a `MovedPlacement` in the pool `podTunnelPool`, so the
/// engine closes that pod's open tunnels on every center.
extension Registry {
    /// The pool name moved pods are announced under (not a real pool: node pools are names the
    /// operator gives, and a leading dot keeps this one apart).
    public static let podTunnelPool = ".pods"

    /// Who owns pod `key` (raw request bytes), judged against the centers of `centerPool` at
    /// `now` (Unix ms).
    public func resolvePod(_ key: UnsafeRawBufferPointer, centerPool: String, now: Int64) -> PodResolution {
        guard let digest = KeyDigest(key) else { return .invalidKey }
        return shard(for: digest).state.withLock { state -> PodResolution in
            guard let index = state.pods.find(key, tag: digest.tag) else { return .unknownPod }
            return Self.podOwner(state.pods.records[index].nodeID, in: state.nodes, centerPool: centerPool, now: now)
        }
    }

    /// The pod with this id, or nil (an invalid id names none).
    public func pod(id: String) -> PodRecord? {
        withPodKey(id) { bytes, digest in
            shard(for: digest).state.withLock { state in state.pods.find(bytes, tag: digest.tag).map { state.pods.records[$0] } }
        } ?? nil
    }

    /// Sorted by id, paged by cursor: the pods with id > `after` (nil: from the start), at most
    /// `limit`. Pod ids are ASCII, so String order is byte order (the stores' order too).
    public func pods(after: String?, limit: Int) -> [PodRecord] {
        guard limit > 0 else { return [] }
        var page: [PodRecord] = []
        for shard in shards {
            let found = shard.state.withLock { state -> [PodRecord] in
                var list = state.pods.records
                if let after { list.removeAll { $0.id <= after } }
                return list
            }
            // Each shard's candidates join the page, which is cut back to `limit` as it grows:
            // memory stays O(limit + one shard) whatever the pod count.
            page += found
            if page.count > 2 * limit {
                page.sort { $0.id < $1.id }
                page.removeSubrange(limit...)
            }
        }
        page.sort { $0.id < $1.id }
        return Array(page.prefix(limit))
    }

    /// How many pods the registry holds.
    public var podCount: Int { podTotal.load(ordering: .relaxed) }

    /// Pods per owning node id (registered or not).
    public func podCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for shard in shards {
            shard.state.withLock { state in
                for record in state.pods.records { counts[record.nodeID, default: 0] += 1 }
            }
        }
        return counts
    }

    /// Creates pods, all or none: every record is validated first (`PodRecord.validate`; an id
    /// listed twice is refused too), then the writes go to the store in one transaction, and
    /// memory changes only after the store accepted them. A pod that exists with the same fields
    /// (times aside) is left alone and counted unchanged; one with different fields throws
    /// `.podExists` unless `replace` (then it keeps its `createdAt`). New pods keep the times
    /// they carry, 0 meaning `now`. A replaced pod whose owner changed is announced as moved.
    public func createPods(_ records: [PodRecord], replace: Bool,
                           now: Int64) throws(RegistryError) -> (created: Int, replaced: Int, unchanged: Int) {
        var seen = Set<String>()
        seen.reserveCapacity(records.count)
        for record in records {
            try PodRecord.validate(record)
            guard seen.insert(record.id).inserted else { throw .invalidPod("\(record.id): listed twice") }
        }
        let (moved, counts) = try control.withLock { (_) throws(RegistryError) -> ([MovedPlacement], (Int, Int, Int)) in
            var writes: [PodRecord] = []
            var created = 0, replaced = 0, unchanged = 0
            for var record in records {
                if let current = pod(id: record.id) {
                    if current.sameFields(as: record) { unchanged += 1; continue }
                    guard replace else { throw .podExists(record.id) }
                    record.createdAt = current.createdAt
                    record.updatedAt = now
                    replaced += 1
                } else {
                    if record.createdAt == 0 { record.createdAt = now }
                    if record.updatedAt == 0 { record.updatedAt = now }
                    created += 1
                }
                writes.append(record)
            }
            if !writes.isEmpty {
                do { try store?.applyNow(writes.map { .upsertPod($0) }) } catch { throw .storeFailed("\(error)") }
            }
            var moved: [MovedPlacement] = []
            for record in writes {
                if case .applied(let move?) = setPodInMemory(record, unlessNewerThan: nil) { moved.append(move) }
            }
            return (moved, (created, replaced, unchanged))
        }
        announce(moved)
        return counts
    }

    /// Deletes a pod (store first, then memory). Its open tunnels are left to finish: nothing
    /// else serves the pod, so there is nowhere better to send them.
    public func deletePod(id: String) throws(RegistryError) {
        try control.withLock { (_) throws(RegistryError) in
            guard pod(id: id) != nil else { throw .unknownPod(id) }
            do { try store?.applyNow([.deletePod(id: id)]) } catch { throw .storeFailed("\(error)") }
            _ = removePodInMemory(id, unlessNewerThan: nil)
        }
    }

    /// The instant migration, one row update: `nodeID` = target, `migrationStatus` = done,
    /// `migrationTargetNode` = target, `migrationProgress` = 100, `updatedAt` = now. The target
    /// must be a registered node of `centerPool` (else `.unknownNode` / `.wrongPool`), enabled
    /// and fresh (else `.unusableTarget`: the pod's users would get 503), and not the owner
    /// (`.sameNode`). Written to the store first, memory after; then announced as moved.
    public func migratePod(id: String, to target: String, centerPool: String,
                           now: Int64) throws(RegistryError) -> (before: PodRecord, after: PodRecord) {
        let (before, after) = try control.withLock { (directory) throws(RegistryError) -> (PodRecord, PodRecord) in
            guard let before = pod(id: id) else { throw .unknownPod(id) }
            guard let node = directory.node(named: target) else { throw .unknownNode(target) }
            guard node.pool == centerPool else { throw .wrongPool(node: target, pool: centerPool) }
            guard node.enabled, node.isFresh(now: now, thresholdMs: directory.settings(of: centerPool).heartbeatThresholdMs) else {
                throw .unusableTarget(target)
            }
            guard before.nodeID != target else { throw .sameNode(target) }
            var after = before
            after.nodeID = target
            after.migrationStatus = .done
            after.migrationTargetNode = target
            after.migrationProgress = 100
            after.updatedAt = now
            do { try store?.applyNow([.upsertPod(after)]) } catch { throw .storeFailed("\(error)") }
            _ = setPodInMemory(after, unlessNewerThan: nil)
            return (before, after)
        }
        announce([MovedPlacement(pool: Self.podTunnelPool, key: id, from: before.nodeID, to: target)])
        return (before, after)
    }

    // MARK: - Memory, shared with the feed

    enum PodOutcome {
        /// A record the registry refuses (from another writer).
        case skipped
        /// This instance wrote the pod after the row was read, or has not committed its write yet.
        case deferred
        /// Applied; with the move when the owner changed.
        case applied(MovedPlacement?)
    }

    /// Sets the pod's record in memory. With a feed position: not when this instance wrote the
    /// pod since (`RegistryStore.hasNewerWrites`), checked under the shard lock the write holds.
    func setPodInMemory(_ record: PodRecord, unlessNewerThan position: Int64?) -> PodOutcome {
        withPodKey(record.id) { bytes, digest in
            shard(for: digest).state.withLock { state -> PodOutcome in
                if let position, store?.hasNewerWrites(for: StoreRow(pod: record.id), than: position) == true { return .deferred }
                guard let index = state.pods.find(bytes, tag: digest.tag) else {
                    state.pods.insert(record, tag: digest.tag)
                    podTotal.add(1, ordering: .relaxed)
                    return .applied(nil)
                }
                let old = state.pods.records[index].nodeID
                state.pods.replace(at: index, with: record)
                if old == record.nodeID { return .applied(nil) }
                return .applied(MovedPlacement(pool: Self.podTunnelPool, key: record.id, from: old, to: record.nodeID))
            }
        } ?? .skipped
    }

    /// Removes the pod from memory; false when this instance wrote it after the feed's read at
    /// `position`. An absent pod counts as removed.
    func removePodInMemory(_ id: String, unlessNewerThan position: Int64?) -> Bool {
        withPodKey(id) { bytes, digest in
            shard(for: digest).state.withLock { state -> Bool in
                if let position, store?.hasNewerWrites(for: StoreRow(pod: id), than: position) == true { return false }
                guard let index = state.pods.find(bytes, tag: digest.tag) else { return true }
                state.pods.remove(at: index)
                podTotal.subtract(1, ordering: .relaxed)
                return true
            }
        } ?? true
    }

    /// `resync` for pods: those not stored are dropped (unless this instance wrote them after
    /// the read), the stored ones applied as feed rows.
    func resyncPods(_ pods: [PodRecord], through position: Int64) -> FeedResult {
        let stored = Set(pods.map(\.id))
        var dropped = 0
        for shard in shards {
            dropped += shard.state.withLock { state -> Int in
                state.pods.removeAll(keeping: {
                    stored.contains($0.id) || store?.hasNewerWrites(for: StoreRow(pod: $0.id), than: position) == true
                }) { _ in }
            }
        }
        podTotal.subtract(dropped, ordering: .relaxed)
        var result = applyExternal(pods.map { .upsertPod($0) }, through: position)
        result.applied += dropped
        return result
    }

    /// Validated pods spread over the shards (for `init`), with how many were loaded and skipped.
    /// A duplicate id: the later record wins.
    static func podTables(_ pods: [PodRecord], shardCount: Int) -> (tables: [PodTable], loaded: Int, skipped: Int) {
        var tables = (0..<shardCount).map { _ in PodTable(minimumCapacity: pods.count / shardCount) }
        var loaded = 0, skipped = 0
        for record in pods {
            guard (try? PodRecord.validate(record)) != nil else { skipped += 1; continue }
            var id = record.id
            id.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                guard let digest = KeyDigest(bytes) else { return }
                let shard = digest.shard(of: shardCount)
                if let index = tables[shard].find(bytes, tag: digest.tag) {
                    tables[shard].replace(at: index, with: record)
                } else {
                    tables[shard].insert(record, tag: digest.tag)
                    loaded += 1
                }
            }
        }
        return (tables, loaded, skipped)
    }

    /// The owner `name` as `resolvePod` answers it. The usual case — a member of the center
    /// pool — is a binary search of the pool's sorted nodes; the rest is the failure path.
    static func podOwner(_ name: String, in snapshot: NodeSnapshot, centerPool: String, now: Int64) -> PodResolution {
        guard let poolID = snapshot.poolID(centerPool) else {
            return .ownerDown(name: name, node: registered(name, in: snapshot), retryAfterSeconds: defaultPodRetryAfterSeconds)
        }
        let entry = snapshot.pools[poolID]
        let retry = entry.settings.podRetryAfterSeconds
        guard let node = entry.member(named: name) else {
            return .ownerDown(name: name, node: registered(name, in: snapshot), retryAfterSeconds: retry)
        }
        if node.enabled && node.isFresh(now: now, thresholdMs: entry.settings.heartbeatThresholdMs) { return .owner(node) }
        return .ownerDown(name: name, node: node, retryAfterSeconds: retry)
    }

    /// A pool the registry has never heard of has the default settings (`fail` after 30 s).
    static let defaultPodRetryAfterSeconds = PoolSettings().podRetryAfterSeconds

    /// The node named `name` in any pool (an index loop: no iterator, nothing allocated).
    private static func registered(_ name: String, in snapshot: NodeSnapshot) -> RegistryNode? {
        let nodes = snapshot.nodes
        var i = 0
        while i < nodes.count {
            if let node = nodes[i], node.name == name { return node }
            i += 1
        }
        return nil
    }

    /// Runs `body` with the id's bytes and digest; nil for an id that breaks the key rules.
    private func withPodKey<T>(_ id: String, _ body: (UnsafeRawBufferPointer, KeyDigest) -> T) -> T? {
        var copy = id
        return copy.withUTF8 { utf8 -> T? in
            let bytes = UnsafeRawBufferPointer(utf8)
            guard let digest = KeyDigest(bytes) else { return nil }
            return body(bytes, digest)
        }
    }
}

extension PoolEntry {
    /// The member named `name` (`nodes` is sorted by name).
    func member(named name: String) -> RegistryNode? {
        var low = 0, high = nodes.count
        while low < high {
            let mid = (low + high) / 2
            let candidate = nodes[mid].name
            if candidate == name { return nodes[mid] }
            if candidate < name { low = mid + 1 } else { high = mid }
        }
        return nil
    }
}

extension PoolSettings {
    /// Retry-After for a pod whose owner is down: the pool's `fail` delay, else its heartbeat
    /// threshold (the longest a live center can look stale); at least 1 s.
    var podRetryAfterSeconds: Int {
        if case .fail(let seconds) = onNodeDown { return max(1, seconds) }
        return max(1, Int(heartbeatThresholdMs / 1000))
    }
}

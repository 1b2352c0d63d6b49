/// Why no node could be chosen for a new key.
enum ChoiceFailure: Error, Equatable {
    /// No node of the pool is enabled with a fresh heartbeat.
    case noHealthyNode
    /// Some are, but every one of them is full.
    case insufficientCapacity
}

/// Chooses a node for a new key by a pool's policy and reserves one unit of its capacity.
/// Runs under a shard lock, only for keys without a placement.
extension PoolEntry {
    /// The chosen node, its capacity already reserved. Choosing and reserving are separate steps
    /// so that a node filled by another worker in between is seen as full on the next try.
    /// `excluding`: a node that may not be chosen (the one a drain empties).
    func chooseAndReserve(keyState: UInt64, now: Int64, excluding: UInt16? = nil) -> Result<RegistryNode, ChoiceFailure> {
        // Each failed reservation means one more node just became full, so this ends.
        for _ in 0...nodes.count {
            switch choose(keyState: keyState, now: now, advancing: true, excluding: excluding) {
            case .success(let node):
                if node.reserve() { return .success(node) }
            case .failure(let failure):
                return .failure(failure)
            }
        }
        return .failure(.insufficientCapacity)
    }

    /// The node the policy picks now, without reserving anything. `advancing` moves the round
    /// robin cursor past the choice; `explain` passes false so that looking changes nothing.
    func choose(keyState: UInt64, now: Int64, advancing: Bool, excluding: UInt16? = nil) -> Result<RegistryNode, ChoiceFailure> {
        if case .roundRobin = settings.policy { return nextInTurn(now: now, advancing: advancing, excluding: excluding) }
        var anyHealthy = false
        var best: Ranked?
        for node in nodes {
            guard node.id != excluding, node.enabled, node.isFresh(now: now, thresholdMs: settings.heartbeatThresholdMs),
                  !settings.requireAPIBaseURL || !node.apiBaseURL.isEmpty else { continue }
            anyHealthy = true
            let used = node.placementCount
            guard node.capacity == 0 || used < node.capacity else { continue }
            let candidate = Ranked(node: node, used: used, keyState: keyState, policy: settings.policy)
            // Nodes are sorted by name, so on an exact tie the first name wins.
            if best.map({ candidate.beats($0, policy: settings.policy) }) ?? true { best = candidate }
        }
        if let best { return .success(best.node) }
        return .failure(anyHealthy ? .insufficientCapacity : .noHealthyNode)
    }

    /// Round robin: the first node with room at or after the cursor, in name order; the cursor
    /// then moves past it. A plain load and store rather than a compare-exchange: two workers
    /// racing may pick the same node once, which round robin can afford.
    private func nextInTurn(now: Int64, advancing: Bool, excluding: UInt16?) -> Result<RegistryNode, ChoiceFailure> {
        guard !nodes.isEmpty else { return .failure(.noHealthyNode) }
        var anyHealthy = false
        let start = cursor.next.load(ordering: .relaxed)
        for step in 0..<nodes.count {
            let i = (start &+ step) % nodes.count
            let node = nodes[i]
            guard node.id != excluding, node.enabled, node.isFresh(now: now, thresholdMs: settings.heartbeatThresholdMs),
                  !settings.requireAPIBaseURL || !node.apiBaseURL.isEmpty else { continue }
            anyHealthy = true
            guard node.hasRoom() else { continue }
            if advancing { cursor.next.store((i + 1) % nodes.count, ordering: .relaxed) }
            return .success(node)
        }
        return .failure(anyHealthy ? .insufficientCapacity : .noHealthyNode)
    }
}

/// A selectable node with what its policy compares: the rendezvous score always (it decides or
/// breaks ties), utilisation for spread and best fit, label match for affinity.
struct Ranked {
    let node: RegistryNode
    let used: Int
    let score: Double
    let matchesLabels: Bool

    init(node: RegistryNode, used: Int, keyState: UInt64, policy: PlacementPolicy) {
        self.node = node
        self.used = used
        let hash = node.nameBytes.withUnsafeBytes { StableHash.rendezvous(keyState: keyState, nodeName: $0) }
        score = Rendezvous.score(weight: node.weight, hash: hash)
        if case .affinity(let wanted) = policy {
            matchesLabels = wanted.allSatisfy { node.labels[$0.key] == $0.value }
        } else {
            matchesLabels = false
        }
    }

    func beats(_ other: Ranked, policy: PlacementPolicy) -> Bool {
        switch policy {
        case .spread:
            let order = compareUtilisation(other)
            if order != 0 { return order < 0 }
        case .bestFit:
            // Unlimited nodes are the overflow: any node with a limit goes first, even an empty one.
            if (node.capacity == 0) != (other.node.capacity == 0) { return node.capacity != 0 }
            let order = compareUtilisation(other)
            if order != 0 { return order > 0 }
        case .affinity:
            if matchesLabels != other.matchesLabels { return matchesLabels }
        case .rendezvous, .roundRobin:
            break
        }
        return score > other.score
    }

    /// Sign of utilisation(self) - utilisation(other), exactly: used/capacity compared by
    /// cross-multiplying in 128 bits. Unlimited capacity is utilisation 0.
    func compareUtilisation(_ other: Ranked) -> Int {
        let (a, b) = (utilisation, other.utilisation)
        let left = a.used.multipliedFullWidth(by: b.capacity)
        let right = b.used.multipliedFullWidth(by: a.capacity)
        if left.high != right.high { return left.high < right.high ? -1 : 1 }
        if left.low != right.low { return left.low < right.low ? -1 : 1 }
        return 0
    }

    private var utilisation: (used: Int, capacity: Int) {
        node.capacity == 0 ? (0, 1) : (used, node.capacity)
    }
}

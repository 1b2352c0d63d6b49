/// How a pool chooses the node for a key it has not seen before. Every policy chooses only among
/// selectable nodes (enabled, fresh heartbeat, spare capacity) and breaks ties by rendezvous
/// score, so its choice is deterministic wherever the policy itself does not depend on history.
public enum PlacementPolicy: Sendable, Equatable {
    /// Weighted rendezvous hashing: the same key picks the same node on every gateway instance
    /// and after every restart while the node set is unchanged. The default.
    case rendezvous
    /// Lowest utilisation (placements / capacity). A node with unlimited capacity counts as
    /// utilisation 0, so among such nodes this is plain rendezvous (itself a weighted spread).
    case spread
    /// The next selectable node after the previous choice, in node-name order. Depends on
    /// history, so two gateway instances may choose differently for the same key.
    case roundRobin
    /// Highest utilisation that still has room: fills nodes one after another. Nodes with
    /// unlimited capacity are used only once every node with a limit is full.
    case bestFit
    /// Prefers nodes whose labels contain every pair of `labels`, by rendezvous among them. The
    /// preference is soft: when no matching node is selectable (none match, or all that match are
    /// down or full), the key goes by rendezvous to any selectable node, because refusing a user
    /// while other nodes have room would turn a scheduling hint into an outage.
    case affinity(labels: [String: String])

    /// Parses a configuration name: `rendezvous`, `spread`, `round_robin`, `best_fit` or
    /// `affinity` (which uses `labels`); nil for anything else.
    public init?(name: String, labels: [String: String] = [:]) {
        switch name {
        case "rendezvous": self = .rendezvous
        case "spread": self = .spread
        case "round_robin": self = .roundRobin
        case "best_fit": self = .bestFit
        case "affinity": self = .affinity(labels: labels)
        default: return nil
        }
    }
}

/// What happens to a key whose placed node has stopped sending heartbeats.
public enum OnNodeDown: Sendable, Equatable {
    /// Answer 503 with `Retry-After`: the user's workspace is still on that node, and moving it
    /// would start them on an empty one. The default.
    case fail(retryAfterSeconds: Int)
    /// Choose a node anew (by the pool's policy) and overwrite the placement.
    case replace
}

/// Per-pool placement settings.
public struct PoolSettings: Sendable, Equatable {
    public var policy: PlacementPolicy
    /// A node whose last heartbeat is older than this is not selectable (static nodes excepted).
    public var heartbeatThresholdMs: Int64
    /// A heartbeat is written to the store only when the stored one (written by any instance)
    /// is at least this old; the others change memory only. Freshness is shared, so nodes
    /// heartbeating to several gateways do not multiply the writes. Default: a quarter of the
    /// threshold.
    public var heartbeatWriteIntervalMs: Int64
    public var onNodeDown: OnNodeDown
    /// New keys go only to nodes with an `api_base_url` too (the seed's runtime pool: a node is
    /// selectable with both its URLs set). Existing placements stay where they are.
    public var requireAPIBaseURL = false

    public init(policy: PlacementPolicy = .rendezvous, heartbeatThresholdMs: Int64 = 60_000,
                heartbeatWriteIntervalMs: Int64? = nil, onNodeDown: OnNodeDown = .fail(retryAfterSeconds: 30)) {
        self.policy = policy
        self.heartbeatThresholdMs = heartbeatThresholdMs
        self.heartbeatWriteIntervalMs = heartbeatWriteIntervalMs ?? Self.defaultHeartbeatWriteInterval(threshold: heartbeatThresholdMs)
        self.onNodeDown = onNodeDown
    }

    /// A quarter of the threshold: a live node's stored heartbeat never ages past it.
    public static func defaultHeartbeatWriteInterval(threshold: Int64) -> Int64 { threshold / 4 }
}

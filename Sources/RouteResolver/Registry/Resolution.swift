/// Where a (pool, key) goes, as `Registry.resolve` answers it for the engine.
public enum Resolution: Sendable {
    /// Forward to `node` (its `previewBaseURL`, or `address` with `hostPort`). `hostPort` is 0
    /// until the container's port is known. `created` is true when this call placed the key
    /// (a new key, or a key moved off a stale node under `onNodeDown: .replace`).
    case routed(node: RegistryNode, hostPort: UInt16, created: Bool)
    /// The key's node has no fresh heartbeat and the pool says `fail`: 503 with Retry-After.
    case nodeDown(node: RegistryNode, retryAfterSeconds: Int)
    /// 503 `no_healthy_node`: no node of the pool is enabled with a fresh heartbeat.
    case noHealthyNode
    /// 503 `insufficient_capacity`: healthy nodes exist but all are full.
    case insufficientCapacity
    /// The key is not `[A-Za-z0-9_-]{1,64}` (the extractor should have answered 400 already).
    case invalidKey

    /// The node the key was routed to, if it was.
    public var routedNode: RegistryNode? {
        if case .routed(let node, _, _) = self { return node }
        return nil
    }
}

/// What `Registry.explain` finds for a (pool, key), without changing anything.
public struct PlacementExplanation: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Placed already, on `node`, whose heartbeat is fresh.
        case existing(node: String, hostPort: UInt16)
        /// New (or on a stale node under `replace`): this node would be chosen now.
        case wouldPlace(node: String)
        /// Placed on a stale node and the pool says `fail`.
        case nodeDown(node: String, retryAfterSeconds: Int)
        case noHealthyNode
        case insufficientCapacity
        case invalidKey
        case unknownPool
    }

    /// One node of the pool as the chooser sees it now.
    public struct Candidate: Sendable, Equatable {
        public let name: String
        public let enabled: Bool
        public let fresh: Bool
        public let placements: Int
        /// 0 = unlimited.
        public let capacity: Int
        public let weight: Int
        /// Rendezvous score of this key on this node (higher wins).
        public let score: Double
        /// Enabled, fresh and with room.
        public var selectable: Bool { enabled && fresh && (capacity == 0 || placements < capacity) }
    }

    public let outcome: Outcome
    public let policy: PlacementPolicy?
    /// Every node of the pool, in name order.
    public let candidates: [Candidate]
}

/// Fields to change on a node; nil leaves a field as it is.
public struct NodePatch: Sendable {
    public var pool: String?
    public var address: String?
    public var previewBaseURL: String?
    public var apiBaseURL: String?
    public var enabled: Bool?
    public var weight: Int?
    public var capacity: Int?
    public var labels: [String: String]?
    public var isStatic: Bool?
    /// A heartbeat at this time (Unix ms); an older one than the node's is ignored.
    public var heartbeat: Int64?
    public init() {}
}

/// Why a registry change was refused; nothing was changed.
public enum RegistryError: Error, Sendable, Equatable {
    case invalidNode(String)
    case unknownNode(String)
    case unknownPlacement(pool: String, key: String)
    case invalidKey(String)
    /// A move to a node of another pool.
    case wrongPool(node: String, pool: String)
    /// A move to a node that is disabled or has no fresh heartbeat: its users would get 503.
    case unusableTarget(String)
    /// A move to the node the placement is already on (or a drain into itself).
    case sameNode(String)
    /// The target (or every candidate) has no room.
    case noCapacity(String)
    /// A node may not move to another pool (its placements belong to the old one).
    case poolChange(node: String, pool: String)
    /// Creating a node needs this field.
    case missingField(String)
    /// The store refused the change; memory was not changed either.
    case storeFailed(String)
    /// No pod with this id.
    case unknownPod(String)
    /// A pod with this id exists with other fields (creating it again needs `replace`).
    case podExists(String)
    /// A pod record the registry refuses, with the reason.
    case invalidPod(String)
    /// An edge record the registry refuses, with the reason.
    case invalidEdge(String)
    /// No edge with this id.
    case unknownEdge(String)
    /// A hostname another edge already serves.
    case hostnameTaken(hostname: String, edge: String)
    /// The key is placed already, on `node` (pinning does not move it: reassign does).
    case alreadyPlaced(pool: String, key: String, node: String)
}

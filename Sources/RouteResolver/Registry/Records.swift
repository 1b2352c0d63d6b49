/// A node that can hold placements: a workspace node, a runtime node, ... (its `pool`).
/// Times are Unix milliseconds; 0 means "never".
public struct NodeRecord: Sendable, Equatable {
    /// Unique name, `[A-Za-z0-9._-]{1,64}`.
    public var name: String
    /// Which pool it serves ("workspace", "runtime", ...).
    public var pool: String
    /// "host:port" the gateway connects to for `placement_port` targets (the host part is used
    /// with the placement's host port).
    public var address: String
    /// The node's own web entry ("http://10.0.0.5:80"), the `node` target.
    public var previewBaseURL: String
    /// The node API ("http://10.0.0.5:7001"), asked for container ports.
    public var apiBaseURL: String
    public var enabled: Bool
    /// Relative share of new placements (1...10_000).
    public var weight: Int
    /// Most placements this node takes; 0 = unlimited.
    public var capacity: Int
    public var labels: [String: String]
    public var lastHeartbeat: Int64
    /// Declared in configuration and exempt from heartbeats.
    public var isStatic: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(name: String, pool: String, address: String, previewBaseURL: String = "", apiBaseURL: String = "",
                enabled: Bool = true, weight: Int = 100, capacity: Int = 0, labels: [String: String] = [:],
                lastHeartbeat: Int64 = 0, isStatic: Bool = false, createdAt: Int64 = 0, updatedAt: Int64 = 0) {
        self.name = name
        self.pool = pool
        self.address = address
        self.previewBaseURL = previewBaseURL
        self.apiBaseURL = apiBaseURL
        self.enabled = enabled
        self.weight = weight
        self.capacity = capacity
        self.labels = labels
        self.lastHeartbeat = lastHeartbeat
        self.isStatic = isStatic
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A sticky choice: (pool, key) lives on `node`. Never moved implicitly.
public struct PlacementRecord: Sendable, Equatable {
    public var pool: String
    /// `[A-Za-z0-9_-]{1,64}` (a user id, an app id).
    public var key: String
    public var node: String
    /// The container's port on the node, once known; 0 = not known yet.
    public var hostPort: UInt16
    public var lastActive: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(pool: String, key: String, node: String, hostPort: UInt16 = 0,
                lastActive: Int64 = 0, createdAt: Int64 = 0, updatedAt: Int64 = 0) {
        self.pool = pool
        self.key = key
        self.node = node
        self.hostPort = hostPort
        self.lastActive = lastActive
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One change for the persistent store. Applied in order; a batch is one transaction.
///
/// Changes that several writers (gateways sharing the file, later a database) may race on are
/// written so that a stale view cannot undo another writer's change: a key's first placement
/// only if no one placed it first, a container port only while the placement is still where the
/// writer saw it, a heartbeat only as a later time. The change feed then hands every instance the
/// rows as they ended up.
public enum StoreChange: Sendable, Equatable {
    case upsertNode(NodeRecord)
    case deleteNode(name: String)
    case upsertPlacement(PlacementRecord)
    case deletePlacement(pool: String, key: String)
    /// A new key's placement, written only if the key has none yet (insert-if-absent).
    case insertPlacement(PlacementRecord)
    /// The container port (and activity) of a placement, written only while the placement is
    /// on `record.node`.
    case setHostPort(PlacementRecord)
    /// A node's heartbeat: its stored time raised to `at`, nothing else.
    case heartbeat(name: String, at: Int64)
    /// A drain's move of a placement to `record.node`, written only while it is still on
    /// `from`: two instances draining one node at once move each user once (the later drain
    /// finds the placement gone from `from` and leaves it).
    case movePlacement(PlacementRecord, from: String)
    /// A data pod's row, written whole (the registry's record is authoritative, like a node's).
    case upsertPod(PodRecord)
    case deletePod(id: String)
    /// An edge node's row, written whole (mode, token hash, the center holding its tunnel).
    case upsertEdge(EdgeRecord)
    case deleteEdge(id: String)
}

/// What a store's change feed reports.
public enum StoreFeedEvent: Sendable, Equatable {
    /// Changes other writers committed, in commit order, as the rows were in one read of the
    /// store that saw its log up to `through` (pass it on to `Registry.applyExternal`).
    case changes([StoreChange], through: Int64)
    /// The follower fell behind what the store keeps of its history: some changes were missed,
    /// so here is everything the store held when its log stood at `through`
    /// (`Registry.resync` makes memory match it).
    case resync(StoreContents, through: Int64)
    /// Reading the feed failed (the database is busy or unreachable); it retries by itself.
    case failed(String)
}

/// Everything a store holds, as one read saw it (a feed's full reload).
public struct StoreContents: Sendable, Equatable {
    public var nodes: [NodeRecord]
    public var placements: [PlacementRecord]
    public var pods: [PodRecord]
    public var edges: [EdgeRecord]

    /// No defaults: a reload that forgot a kind would make `Registry.resync` drop all of it.
    public init(nodes: [NodeRecord], placements: [PlacementRecord], pods: [PodRecord], edges: [EdgeRecord]) {
        self.nodes = nodes
        self.placements = placements
        self.pods = pods
        self.edges = edges
    }
}

/// Where the registry is persisted. `enqueue` never blocks the caller (the event loops call it);
/// a writer thread applies changes in batched transactions.
public protocol RegistryStore: AnyObject, Sendable {
    /// Everything stored, for start-up.
    func loadAll() throws -> (nodes: [NodeRecord], placements: [PlacementRecord])
    /// Every pod, for start-up. Call it after `loadAll`: the feed starts from `loadAll`'s read,
    /// so a pod changed in between comes again through the feed (harmless), while one read
    /// before `loadAll` could miss a change.
    func loadPods() throws -> [PodRecord]
    /// Every edge node, for start-up (after `loadAll`, as `loadPods`).
    func loadEdges() throws -> [EdgeRecord]
    /// Queues a change; returns at once. False when the queue refused it (full, or the store
    /// closed): the change is in memory only.
    @discardableResult
    func enqueue(_ change: StoreChange) -> Bool
    /// Applies several changes atomically (all or none), synchronously. For admin operations
    /// that must report failure (drain, reassign) rather than fire and forget. Returns, per
    /// change, whether it was written: false only for a `movePlacement` whose placement had
    /// already left its `from` node.
    @discardableResult
    func applyNow(_ changes: [StoreChange]) throws -> [Bool]
    /// Blocks until every change queued so far is committed.
    func flush()
    /// Flushes and stops the writer (and the feed).
    func close()
    /// Starts the change feed: from the state `loadAll` returned, `handler` hears of every change
    /// another writer (another process, another gateway) commits — never of this store's own.
    /// It runs on a thread of the store's; the registry applies the changes with
    /// `Registry.applyExternal`, the same way it applies its own.
    func follow(_ handler: @escaping @Sendable (StoreFeedEvent) -> Void) throws
    /// Whether this store wrote `row` (a node, or a pool and key) later than a feed read that
    /// saw the log up to `position`: a change queued and not committed yet, or one committed
    /// after that position. Memory is ahead of the store for this instance's own writes, so such
    /// a row, read back in an older snapshot, must not be applied over it.
    func hasNewerWrites(for row: StoreRow, than position: Int64) -> Bool
    /// How the store is doing now, for `/readyz` and `/metrics`. Cheap (one lock, no I/O).
    var health: StoreHealth { get }
}

/// A store's state as operators see it.
public struct StoreHealth: Sendable, Equatable {
    /// "sqlite" or "postgresql".
    public var engine: String
    /// The writer's last attempt succeeded and, when following, the feed's last read did.
    public var connected: Bool
    /// Whether a change feed runs (another instance's commits are followed).
    public var following: Bool
    /// How long the newest change of another instance took to be read here, at the last read
    /// that saw one (ms).
    public var lastChangeLagMs: Int64?
    /// Since the feed last read the log successfully (ms); grows while it cannot.
    public var feedAgeMs: Int64?
    /// Changes queued and not yet committed (they wait out an outage, bounded).
    public var pendingChanges: Int
    /// Changes refused because the queue was full: in memory only.
    public var droppedChanges: UInt64

    public init(engine: String, connected: Bool, following: Bool, lastChangeLagMs: Int64?, feedAgeMs: Int64?,
                pendingChanges: Int, droppedChanges: UInt64) {
        self.engine = engine
        self.connected = connected
        self.following = following
        self.lastChangeLagMs = lastChangeLagMs
        self.feedAgeMs = feedAgeMs
        self.pendingChanges = pendingChanges
        self.droppedChanges = droppedChanges
    }
}

/// Which stored row a change is about: a node by name, a placement by pool and key, or a pod
/// by id. `kind`'s raw values are the change log's `kind` column.
public struct StoreRow: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case node, placement, pod, edge
    }

    public let kind: Kind
    /// The placement's pool; "" for nodes and pods.
    public let pool: String
    /// The node's name, the placement's key or the pod's id.
    public let name: String

    public init(_ change: StoreChange) {
        switch change {
        case .upsertNode(let n): self.init(node: n.name)
        case .deleteNode(let name), .heartbeat(let name, _): self.init(node: name)
        case .upsertPlacement(let p), .insertPlacement(let p), .setHostPort(let p), .movePlacement(let p, _):
            self.init(pool: p.pool, key: p.key)
        case .deletePlacement(let pool, let key): self.init(pool: pool, key: key)
        case .upsertPod(let p): self.init(pod: p.id)
        case .deletePod(let id): self.init(pod: id)
        case .upsertEdge(let e): self.init(edge: e.id)
        case .deleteEdge(let id): self.init(edge: id)
        }
    }

    public init(kind: Kind, pool: String, name: String) {
        self.kind = kind
        self.pool = kind == .placement ? pool : ""
        self.name = name
    }

    public init(node name: String) { self.init(kind: .node, pool: "", name: name) }

    public init(pool: String, key: String) { self.init(kind: .placement, pool: pool, name: key) }

    public init(pod id: String) { self.init(kind: .pod, pool: "", name: id) }

    public init(edge id: String) { self.init(kind: .edge, pool: "", name: id) }
}

/// What the admin plane reads of the running engine: traffic counters and open tunnels. The
/// engine does not know the admin plane; the executable adapts one to the other, so AdminPlane
/// depends on no engine module.
public protocol EngineView: Sendable {
    /// The configured routes' names, then "-" for requests that matched none.
    var routeNames: [String] { get }
    /// Counters summed over every worker at the time of the call.
    func traffic() -> TrafficSnapshot
    /// Tunnels (upgraded connections) open now.
    func tunnelCounts() -> TunnelCounts
    /// Edge passthrough: ClientHello refusals, carried connections, attached tunnels.
    func edgeCounters() -> EdgeCounters
}

/// The edge side's counters at one moment (docs/edge-tunnel.md).
public struct EdgeCounters: Sendable {
    public var helloMalformed = 0, helloTooLarge = 0, notTLS = 0
    /// Connections for an edge with no tunnel here (refused with unrecognized_name, or 503).
    public var noTunnel = 0
    /// Client connections carried into a tunnel, since start; open now.
    public var carried = 0, open = 0
    /// Client connections relayed to the center holding their edge's tunnel.
    public var relayed = 0
    public var attachRefused = 0
    /// Edge id → tunnels attached here now.
    public var tunnels: [String: Int] = [:]

    public init() {}
}

/// The engine's counters at one moment.
public struct TrafficSnapshot: Sendable {
    /// [route][status class]: class 0 is "no status" (the client or upstream went away).
    public var requests: [[UInt64]]
    /// Cumulative counts per bucket bound (seconds), the last one +Inf.
    public var latencyBuckets: [(le: Double, count: UInt64)]
    public var latencySumSeconds: Double
    public var latencyCount: UInt64
    public var upstreamErrors: [(kind: String, count: UInt64)]
    public var openConnections: UInt64

    public init(requests: [[UInt64]], latencyBuckets: [(le: Double, count: UInt64)], latencySumSeconds: Double,
                latencyCount: UInt64, upstreamErrors: [(kind: String, count: UInt64)], openConnections: UInt64) {
        self.requests = requests
        self.latencyBuckets = latencyBuckets
        self.latencySumSeconds = latencySumSeconds
        self.latencyCount = latencyCount
        self.upstreamErrors = upstreamErrors
        self.openConnections = openConnections
    }
}

/// Open tunnels, in all, by route and by node.
public struct TunnelCounts: Sendable {
    public var total: Int
    public var byRoute: [String: Int]
    public var byNode: [String: Int]

    public init(total: Int, byRoute: [String: Int], byNode: [String: Int]) {
        self.total = total
        self.byRoute = byRoute
        self.byNode = byNode
    }
}

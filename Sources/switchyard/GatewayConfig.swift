import AdminPlane
import ProxyEngine

/// Everything `serve` reads from the configuration file: the engine's part and the admin
/// plane's, which the engine never sees. Engine keys read through as if they were this type's
/// own (`config.listeners`), so code about the whole file reads naturally.
@dynamicMemberLookup
struct GatewayConfig: Sendable {
    var engine: EngineConfig
    var admin = AdminConfig()
    /// This gateway as a center node (nil: not part of a cluster).
    var cluster: ClusterSettings?

    subscript<T>(dynamicMember path: WritableKeyPath<EngineConfig, T>) -> T {
        get { engine[keyPath: path] }
        set { engine[keyPath: path] = newValue }
    }
}

/// The admin plane's view of the running engine (its counters, its tunnels).
struct EngineAdapter: EngineView {
    let stats: EngineStats
    let tunnels: TunnelDirectory
    let edges: EdgeTunnelDirectory

    init(_ engine: Engine) {
        stats = engine.stats
        tunnels = engine.tunnels
        edges = engine.edges
    }

    var routeNames: [String] { stats.routeNames }

    func traffic() -> TrafficSnapshot {
        let s = stats.snapshot()
        return TrafficSnapshot(requests: s.requests, latencyBuckets: s.latencyBuckets, latencySumSeconds: s.latencySumSeconds,
                               latencyCount: s.latencyCount, upstreamErrors: s.upstreamErrors, openConnections: s.openConnections)
    }

    func tunnelCounts() -> TunnelCounts {
        let t = tunnels.snapshot()
        return TunnelCounts(total: t.total, byRoute: t.byRoute, byNode: t.byNode)
    }

    func edgeCounters() -> EdgeCounters {
        var c = EdgeCounters()
        c.helloMalformed = edges.helloMalformed.load(ordering: .relaxed)
        c.helloTooLarge = edges.helloTooLarge.load(ordering: .relaxed)
        c.notTLS = edges.notTLS.load(ordering: .relaxed)
        c.noTunnel = edges.noTunnel.load(ordering: .relaxed)
        c.carried = edges.passthrough.load(ordering: .relaxed)
        c.open = edges.openStreams.load(ordering: .relaxed)
        c.relayed = edges.relayed.load(ordering: .relaxed)
        c.attachRefused = edges.attachRefused.load(ordering: .relaxed)
        c.tunnels = edges.tunnelCounts()
        return c
    }
}

import IOCore
import RouteResolver
import Synchronization

/// A client connection one worker accepted for an edge whose tunnel another worker holds: the
/// socket and what was read from it, posted to that worker (a connection's bytes then move in
/// one loop, the tunnel's).
struct EdgeHandoff: Sendable {
    let fd: Int32
    let first: [UInt8]
    let edgeID: String
    let kind: EdgeLink.Kind
    let authority: String
    let client: String
}

/// What the workers share about edge tunnels: which worker holds tunnels of which edge (to hand
/// a connection over), the registry's view (the first tunnel of an edge in this process marks
/// it attached here, the last one's end detaches it), and the counters the metrics show.
///
/// Tunnels attach and detach rarely; one lock is enough. Nothing per byte touches this.
public final class EdgeTunnelDirectory: Sendable {
    /// Edge id → the worker of each of its tunnels here (one entry per tunnel).
    private let holders = Mutex<[String: [Int]]>([:])
    private let controls = Mutex<[WorkerControl]>([])
    let registry: Registry?
    /// The name this process holds tunnels under in the registry (its center node id).
    public let center: String

    /// ClientHellos refused: malformed, too large, not TLS at all; connections for an edge with
    /// no tunnel (closed with `unrecognized_name`); passthrough connections carried.
    public let helloMalformed = Atomic<Int>(0)
    public let helloTooLarge = Atomic<Int>(0)
    public let notTLS = Atomic<Int>(0)
    public let noTunnel = Atomic<Int>(0)
    public let passthrough = Atomic<Int>(0)
    public let attachRefused = Atomic<Int>(0)
    /// Client connections relayed to the center that holds their edge's tunnel.
    public let relayed = Atomic<Int>(0)
    /// Tunnel streams (client connections) open now, over every worker.
    public let openStreams = Atomic<Int>(0)

    public init(registry: Registry?, center: String) {
        self.registry = registry
        self.center = center
    }

    enum HelloRefusal { case malformed, tooLarge, notTLS }

    func refused(_ why: HelloRefusal) {
        switch why {
        case .malformed: helloMalformed.add(1, ordering: .relaxed)
        case .tooLarge: helloTooLarge.add(1, ordering: .relaxed)
        case .notTLS: notTLS.add(1, ordering: .relaxed)
        }
    }

    func register(_ control: WorkerControl) {
        controls.withLock { $0.append(control) }
    }

    /// Open tunnels per edge id.
    public func tunnelCounts() -> [String: Int] {
        holders.withLock { $0.mapValues(\.count) }
    }

    /// When this process last told the registry it still holds each edge's tunnel.
    private let refreshed = Mutex<[String: Int64]>([:])

    /// A tunnel of `edge` is still here: every `EdgeRecord.tunnelRefreshMs` the registry hears
    /// it again (`tunnel_seen_at`), so other centers can tell a live claim from one a killed
    /// center left behind. Cheap when not due (one lock, one compare).
    func stillAttached(edge: String, now: Int64) {
        let due = refreshed.withLock { r -> Bool in
            if let t = r[edge], now - t < EdgeRecord.tunnelRefreshMs { return false }
            r[edge] = now
            return true
        }
        if due { registry?.edgeTunnel(id: edge, center: center, attached: true, now: now) }
    }

    /// A tunnel of `edge` attached on `worker`; the first one in this process tells the registry.
    func attached(edge: String, worker: Int, now: Int64) {
        let first = holders.withLock { h -> Bool in
            h[edge, default: []].append(worker)
            return h[edge]!.count == 1
        }
        if first { registry?.edgeTunnel(id: edge, center: center, attached: true, now: now) }
    }

    /// A tunnel of `edge` on `worker` ended; the last one in this process tells the registry.
    func detached(edge: String, worker: Int, now: Int64) {
        let last = holders.withLock { h -> Bool in
            guard var list = h[edge], let i = list.firstIndex(of: worker) else { return false }
            list.remove(at: i)
            h[edge] = list.isEmpty ? nil : list
            return list.isEmpty
        }
        if last { registry?.edgeTunnel(id: edge, center: center, attached: false, now: now) }
    }

    /// A worker other than `except` holding a tunnel of `edge`.
    func worker(holding edge: String, except: Int) -> Int? {
        holders.withLock { $0[edge]?.first { $0 != except } }
    }

    /// Posts a connection to `worker`; false when there is no such worker.
    func handOff(_ h: EdgeHandoff, to worker: Int) -> Bool {
        guard let c = controls.withLock({ worker < $0.count ? $0[worker] : nil }) else { return false }
        c.postHandoff(h)
        return true
    }
}

/// A worker's edge parts: the nghttp2 setup of its tunnels (made on first use), the tunnels it
/// holds per edge, the end-of-turn flush list and object caches.
struct EdgeResources {
    private var _setup: EdgeSetup?
    var setup: EdgeSetup {
        mutating get {
            if let s = _setup { return s }
            let s = EdgeSetup()
            _setup = s
            return s
        }
    }
    var local: [String: [EdgeTunnelConnection]] = [:]
    var dirty: [EdgeTunnelConnection] = []
    var streamCache: [EdgeStream] = []
    var linkCache: [EdgeLink] = []
    var tunnelCache: [EdgeTunnelConnection] = []

    /// The ready tunnel of `edge` carrying the fewest streams.
    func tunnel(for edge: String) -> EdgeTunnelConnection? {
        var best: EdgeTunnelConnection?
        for t in local[edge] ?? [] where t.ready && !t.goingAway && !t.closed && t.edge?.id == edge && t.hasStreamRoom {
            if best == nil || t.streams.count < best!.streams.count { best = t }
        }
        return best
    }

    mutating func removeAll() {
        local.removeAll()
        dirty.removeAll()
        streamCache.removeAll()
        linkCache.removeAll()
        tunnelCache.removeAll()
    }
}

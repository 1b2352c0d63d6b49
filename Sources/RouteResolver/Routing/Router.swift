import HTTP1Codec

/// Turns a parsed request head into its `RouteDecision`: the listener's redirect, the first
/// matching route, the key of a sticky route, and its placement in the registry. Pure logic over
/// the head's offsets: no sockets, no allocation on the request path, one lock (the key's shard).
///
/// Immutable; a routing change builds a new router.
public final class Router: Sendable {
    public let table: RouteTable
    public let registry: Registry?
    /// Per route: its sticky target, or nil for a static route. Read by index so the request
    /// path copies no target (whose arrays would be retained and released each time).
    public let keyedTargets: [KeyedTarget?]
    /// Per route: its pod target, or nil.
    public let podTargets: [PodTarget?]
    /// Who this center is (pod routes need it; nil without a `cluster` section).
    public let cluster: ClusterIdentity?
    /// Per route: 0 static, 1 keyed, 2 pods.
    @usableFromInline let routeKinds: [UInt8]
    /// Per listener: the HTTPS port every request is redirected to, or 0.
    @usableFromInline let redirectPorts: [UInt16]

    /// How `decide` treats a new key.
    public enum Mode: Sendable {
        /// Place it (the request path).
        case route
        /// Say where it would go and change nothing (route explain).
        case explain
    }

    public init(table: RouteTable, registry: Registry?, redirectPorts: [UInt16] = [], cluster: ClusterIdentity? = nil) {
        self.table = table
        self.registry = registry
        self.redirectPorts = redirectPorts
        self.cluster = cluster
        keyedTargets = table.routes.map { r in
            if case .keyed(let t) = r.target { return t }
            return nil
        }
        podTargets = table.routes.map { r in
            if case .pods(let t) = r.target { return t }
            return nil
        }
        routeKinds = table.routes.map { r in
            switch r.target {
            case .upstreams: return 0
            case .keyed: return 1
            case .pods: return 2
            case .edges: return 3
            }
        }
    }

    /// The decision for a request whose head `head` was parsed from `base` (with `headers`),
    /// accepted on listener `listener`, at `now` (Unix ms).
    @inlinable @inline(__always)
    public func decide(_ head: borrowing RequestHead, headers: HeaderTable, base: UnsafePointer<UInt8>,
                       listener: Int, now: Int64, mode: Mode = .route) -> RouteDecision {
        if listener >= 0, listener < redirectPorts.count, redirectPorts[listener] != 0 {
            return .redirect(Redirect(status: 308, port: redirectPorts[listener]))
        }
        let host = UnsafeRawBufferPointer(start: head.hostStart >= 0 ? base + head.hostStart : base,
                                          count: head.hostStart >= 0 ? head.hostNameLength : 0)
        let path = UnsafeRawBufferPointer(start: base + head.pathStart, count: head.pathLength)
        guard let route = table.match(host: host, path: path) else {
            return .reject(Rejection(status: 404, code: "no route", route: -1))
        }
        switch routeKinds[route] {
        case 0: return .forward(Forward(route: route, destination: .routeUpstreams, keyStart: 0, keyCount: 0, placed: false))
        case 2: return decidePod(route, head, headers: headers, base: base, listener: listener, now: now, mode: mode)
        case 3: return decideEdge(route, host: host)
        default: break
        }
        return decideKeyed(route, head, headers: headers, base: base, now: now, mode: mode)
    }

    @usableFromInline func decideKeyed(_ route: Int, _ head: borrowing RequestHead, headers: HeaderTable, base: UnsafePointer<UInt8>,
                             now: Int64, mode: Mode) -> RouteDecision {
        let target = keyedTargets[route]!
        let lookup = Self.findKey(target.source, head, headers: headers, base: base)
        guard case .found(let start, let count) = lookup else {
            return reject(400, lookup == .missing ? "no routing key in request" : "malformed routing key", route)
        }
        guard let registry else { return reject(503, "no_healthy_node", route, key: start, count) }
        let key = UnsafeRawBufferPointer(start: base + start, count: count)
        let resolution = mode == .route ? registry.resolve(pool: target.pool, key: key, now: now)
                                        : registry.dryResolve(pool: target.pool, key: key, now: now)
        switch resolution {
        case .routed(let node, let hostPort, let created):
            let destination: Forward.Destination
            switch target.kind {
            case .node: destination = .node(node)
            case .api: destination = .nodeAPI(node)
            case .placementPort: destination = hostPort == 0 ? .portLookup(node) : .container(node, hostPort: hostPort)
            }
            return .forward(Forward(route: route, destination: destination, keyStart: start, keyCount: count, placed: created))
        case .nodeDown(_, let retryAfter):
            return .reject(Rejection(status: 503, code: "node_down", route: route, retryAfterSeconds: retryAfter,
                                     keyStart: start, keyCount: count))
        case .noHealthyNode:
            return reject(503, "no_healthy_node", route, key: start, count)
        case .insufficientCapacity:
            return reject(503, "insufficient_capacity", route, key: start, count)
        case .invalidKey:
            return reject(400, "malformed routing key", route)
        }
    }

    private func reject(_ status: Int, _ code: StaticString, _ route: Int, key start: Int = 0, _ count: Int = 0) -> RouteDecision {
        .reject(Rejection(status: status, code: code, route: route, keyStart: start, keyCount: count))
    }
}

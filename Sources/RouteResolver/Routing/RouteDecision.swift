/// What the gateway does with one request: the single answer routing gives. The engine acts on
/// it and re-derives none of it; route explain shows the same value, so the two cannot disagree.
public enum RouteDecision: Sendable {
    /// Proxy the request.
    case forward(Forward)
    /// Send the client elsewhere: the HTTPS-only listener's 308 today; direct-mode edge nodes'
    /// 307 (issue 15) join it.
    case redirect(Redirect)
    /// The gateway answers itself with a JSON error: no route, a missing or malformed key, no
    /// node that can take the key. The request was well framed, so the connection may go on.
    case reject(Rejection)
}

/// Where a forwarded request goes, and what chose it.
public struct Forward: Sendable {
    public enum Destination: Sendable {
        /// A static route: one of the route's upstreams. The engine picks which (round robin per
        /// worker, because its connection pools are per worker).
        case routeUpstreams
        /// The node's own web entry (`preview_base_url`).
        case node(RegistryNode)
        /// The node's API (`api_base_url`): an `api` target.
        case nodeAPI(RegistryNode)
        /// The node's host at the container's host port (a `placement_port` target whose port
        /// is known).
        case container(RegistryNode, hostPort: UInt16)
        /// A `placement_port` target whose port is not known yet: ask the node API first, then
        /// go to the container.
        case portLookup(RegistryNode)
        /// A pod route's local pod server (the route's upstreams, round robin): a pod this center
        /// owns (`owner`, when registered), or a request that names no pod (a reserved path, the
        /// bare base domain).
        case podLocal(owner: RegistryNode?)
        /// The owning center's internal address: the request goes on with the hop header and the
        /// cluster secret.
        case podCenter(RegistryNode)
        /// A proxy-mode edge node's host: the connection goes through the node's tunnel to its
        /// HTTP entrypoint, unchanged.
        case edgeTunnel(EdgeRoute)
    }

    /// The index of the matched route.
    public let route: Int
    public let destination: Destination
    /// The routing key as offsets into the request's head buffer (`keyCount` 0: a static
    /// route). The engine copies it before the buffer is reused.
    public let keyStart: Int
    public let keyCount: Int
    /// This request placed the key (a new user, or one moved off a stale node); in explain
    /// mode: it would.
    public let placed: Bool
    /// A pod request's `X-Switchyard-Hop` came from a proven center (cluster listener, right
    /// secret): the engine extends that chain; otherwise it starts a new one.
    public let trustedHops: Bool

    @inlinable
    public init(route: Int, destination: Destination, keyStart: Int, keyCount: Int, placed: Bool, trustedHops: Bool = false) {
        self.route = route
        self.destination = destination
        self.keyStart = keyStart
        self.keyCount = keyCount
        self.placed = placed
        self.trustedHops = trustedHops
    }

    /// The node a keyed destination names (for pods: the owning center).
    public var node: RegistryNode? {
        switch destination {
        case .routeUpstreams, .edgeTunnel: return nil
        case .node(let n), .nodeAPI(let n), .container(let n, _), .portLookup(let n), .podCenter(let n): return n
        case .podLocal(let owner): return owner
        }
    }
}

/// A redirect the gateway answers with; the engine writes `Location` from the request's host
/// and target.
public struct Redirect: Sendable, Equatable {
    public let status: Int
    /// The HTTPS port the client is sent to.
    public let port: UInt16
    /// A direct-mode edge node's public address (`https://host[:port]`): `Location` is this plus
    /// the request's path and query, instead of the request's host and `port`.
    public let base: [UInt8]?

    @inlinable
    public init(status: Int, port: UInt16, base: [UInt8]? = nil) {
        self.status = status
        self.port = port
        self.base = base
    }
}

/// The gateway's own error answer.
public struct Rejection: Sendable, Equatable {
    public let status: Int
    /// The JSON body's `error` (and the error log's code).
    public let code: StaticString
    /// The route it matched, or -1 for none.
    public let route: Int
    /// `Retry-After` seconds for a 503; 0: none.
    public let retryAfterSeconds: Int
    /// The key, when one was found (a 503 for a known key), as offsets into the head buffer.
    public let keyStart: Int
    public let keyCount: Int
    /// The center that owns the pod (a pod's 503 and 508), for the JSON body's `owner`.
    public let owner: String?

    @inlinable
    public init(status: Int, code: StaticString, route: Int, retryAfterSeconds: Int = 0, keyStart: Int = 0, keyCount: Int = 0,
                owner: String? = nil) {
        self.status = status
        self.code = code
        self.route = route
        self.retryAfterSeconds = retryAfterSeconds
        self.keyStart = keyStart
        self.keyCount = keyCount
        self.owner = owner
    }

    public static func == (a: Rejection, b: Rejection) -> Bool {
        a.status == b.status && a.route == b.route && a.retryAfterSeconds == b.retryAfterSeconds
            && a.keyStart == b.keyStart && a.keyCount == b.keyCount && a.code.description == b.code.description
            && a.owner == b.owner
    }
}

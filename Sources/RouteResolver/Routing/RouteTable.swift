/// Which hosts a route answers for.
public enum HostPattern: Sendable, Equatable {
    /// Exact name, lowercase ("example.com").
    case exact([UInt8])
    /// "*.example.com": any name ending in ".example.com" (stored lowercase, with the dot).
    case suffix([UInt8])

    /// Parses "example.com" or "*.example.com"; nil for an empty or malformed pattern.
    public init?(_ text: String) {
        let lower = Array(text.lowercased().utf8)
        guard !lower.isEmpty, lower.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x2F }) else { return nil }
        if lower.starts(with: [0x2A, 0x2E]) {  // "*."
            guard lower.count > 2, !lower.dropFirst().contains(0x2A) else { return nil }
            self = .suffix(Array(lower.dropFirst()))
        } else {
            guard !lower.contains(0x2A) else { return nil }
            self = .exact(lower)
        }
    }

    func matches(_ host: UnsafeRawBufferPointer) -> Bool {
        switch self {
        case .exact(let name):
            return host.count == name.count && equalsLowercased(host, 0, name)
        case .suffix(let tail):
            return host.count > tail.count && equalsLowercased(host, host.count - tail.count, tail)
        }
    }
}

/// Where a matched request goes.
public enum RouteTarget: Sendable, Equatable {
    /// A static list of upstream addresses ("host:port"), used round robin.
    case upstreams([String])
    /// Sticky: the request's key (a user id) picks a node of a pool through its placement.
    case keyed(KeyedTarget)
    /// Data pods: the request's pod id names the center that owns it; this center's pods (and
    /// the reserved paths) go to the route's upstreams, the others to their owner.
    case pods(PodTarget)
    /// Edge nodes by the request's host (docs/edge-tunnel.md): a direct-mode node's host gets a
    /// 307 to its public address, a proxy-mode node's goes through its tunnel.
    case edges
}

/// A pod route: where the pod id comes from, which paths are never pods, and the local pod
/// server(s). A class, so the request path holds it by one reference.
public final class PodTarget: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// `{pod}.{base domain}`: the host's first label, when the rest is the base domain
        /// (stored lowercase, without a leading dot).
        case host(baseDomain: [UInt8])
        /// `/{pod}/...`: the first path segment.
        case path
    }

    /// The seed's paths that belong to the server itself, never to a pod: `/.account/`,
    /// `/.internal/`, `/idp/`, `/.well-known/`, `/.cluster/`, `/api/`.
    public static let defaultReserved = [".account", ".internal", "idp", ".well-known", ".cluster", "api"]

    public let source: Source
    /// First path segments that are never a pod id (with either source: `/.well-known/` on
    /// `alice.pods.example` is the server's too).
    public let reserved: [[UInt8]]
    /// The local pod server(s), "host:port", used round robin.
    public let upstreams: [String]

    public init(source: Source, reserved: [String] = PodTarget.defaultReserved, upstreams: [String]) {
        self.source = source
        self.reserved = reserved.map { Array($0.utf8) }
        self.upstreams = upstreams
    }

    public static func == (a: PodTarget, b: PodTarget) -> Bool {
        a.source == b.source && a.reserved == b.reserved && a.upstreams == b.upstreams
    }

    /// The base domain as text (host source), for explain and the docs.
    public var baseDomain: String? {
        if case .host(let d) = source { return String(decoding: d, as: UTF8.self) }
        return nil
    }
}

/// A sticky route: where the key comes from, which pool places it, and what to set on responses.
public struct KeyedTarget: Sendable, Equatable {
    /// Where a placed request goes on its node.
    public enum Kind: Sendable, Equatable {
        /// The node's own web entry (`preview_base_url`), as the entry nginx does today.
        case node
        /// Straight to the user's container: the node's host and the placement's host port
        /// (asked from the node API when not known yet).
        case placementPort
        /// The node's API (`api_base_url`, :7001), as the API server proxies the workspace API
        /// today; each request signed with the route's secret when it has one.
        case api
    }

    public let source: KeySource
    /// The pool whose nodes hold the keys ("workspace").
    public let pool: String
    public let kind: Kind
    /// When set, responses carry `Set-Cookie: <name>=<key>; Path=/; HttpOnly; SameSite=Lax`, so
    /// root-path requests (Vite's /@vite/client, /src/...) can find their user by cookie.
    public let setCookie: [UInt8]?
    /// An `api` target's signing secret (docs/node-api-signature.md); empty: requests go unsigned.
    public let signingSecret: [UInt8]

    public init(source: KeySource, pool: String, kind: Kind = .node, setCookie: String? = nil, signingSecret: [UInt8] = []) {
        self.source = source
        self.pool = pool
        self.kind = kind
        self.setCookie = setCookie.map { Array($0.utf8) }
        self.signingSecret = signingSecret
    }
}

/// One routing rule: a host pattern (optional), a path prefix and a target.
public struct Route: Sendable, Equatable {
    public let name: String
    public let host: HostPattern?
    /// Matches the path itself and anything below it: "/api" matches "/api", "/api/x" and
    /// "/api?q", not "/apix". A prefix ending in "/" matches plainly.
    public let pathPrefix: [UInt8]
    public let target: RouteTarget

    public init(name: String, host: HostPattern?, pathPrefix: String, target: RouteTarget) {
        self.name = name
        self.host = host
        self.pathPrefix = Array(pathPrefix.utf8)
        self.target = target
    }

    func matches(host h: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer) -> Bool {
        if let host, !host.matches(h) { return false }
        let n = pathPrefix.count
        if n == 0 || (n == 1 && pathPrefix[0] == 0x2F) { return true }
        guard path.count >= n else { return false }
        for i in 0..<n where path[i] != pathPrefix[i] { return false }
        if path.count == n || pathPrefix[n - 1] == 0x2F { return true }
        let next = path[n]
        return next == 0x2F || next == 0x3F
    }
}

/// The ordered rule list; the first matching rule wins. Immutable: a routing change builds a new
/// table and publishes it, so lookups never lock.
public final class RouteTable: Sendable {
    public let routes: [Route]

    public init(routes: [Route]) {
        self.routes = routes
    }

    /// Index of the first route matching `host` (without port, any case) and `path` (origin-form
    /// path and query), or nil when none does.
    public func match(host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer) -> Int? {
        for i in routes.indices where routes[i].matches(host: host, path: path) { return i }
        return nil
    }
}

@inline(__always)
func equalsLowercased(_ a: UnsafeRawBufferPointer, _ offset: Int, _ lower: [UInt8]) -> Bool {
    for i in 0..<lower.count {
        var c = a[offset + i]
        if c >= 0x41 && c <= 0x5A { c |= 0x20 }
        if c != lower[i] { return false }
    }
    return true
}

import Foundation
import IOCore
import ProxyEngine
import RouteResolver
import Yams

/// The `cluster` section as written: who this center is and how it trusts the others. The node
/// id `auto` and the default internal address are resolved at start-up (`CenterNode`), not at
/// load, so `check` changes nothing on disk.
struct ClusterSettings: Sendable, Equatable {
    /// A node name, or "auto": generated once and kept in `nodeIDFile`.
    var nodeID = "auto"
    var nodeIDFile = "var/node-id"
    /// The pool centers register in; its `pools.<name>` settings (heartbeat_threshold) apply.
    var pool = "center"
    /// host:port other centers forward to; nil: the first non-loopback interface address with
    /// the cluster listener's port.
    var internalAddress: String?
    /// Where clients reach this center ("https://pods.example.com"), shown in /.cluster/nodes.
    var publicAddress: String?
    /// The shared secret that proves a forwarded request came from a center.
    var secretFile: String?
    var maxHops = 1
    /// How often this center heartbeats (ms); 0: a third of the pool's threshold.
    var heartbeatInterval: UInt64 = 0
}

extension ConfigLoader {
    static func parseCluster(_ node: Node?, into config: inout GatewayConfig) throws(ConfigError) {
        let podRoutes = config.routes.routes.indices.filter { if case .pods = config.routes.routes[$0].target { true } else { false } }
        guard let node else {
            if let i = podRoutes.first {
                throw ConfigError(key: "routes[\(i)].pods", reason: "pod routes need a cluster section (node_id, secret_file)")
            }
            return
        }
        let c = try Mapping(node, path: "cluster", allowed: ["node_id", "node_id_file", "pool", "internal_address", "public_address",
                                                            "secret_file", "max_hops", "heartbeat_interval"])
        var s = ClusterSettings()
        if let id = try c.string("node_id") {
            guard id == "auto" || isName(id) else {
                throw ConfigError(key: "cluster.node_id", reason: "must be \"auto\" or a name of [A-Za-z0-9._-]{1,64}")
            }
            s.nodeID = id
        }
        if let f = try c.string("node_id_file") {
            guard !f.isEmpty else { throw ConfigError(key: "cluster.node_id_file", reason: "must be a file path") }
            s.nodeIDFile = f
        }
        if let pool = try c.string("pool") {
            guard isName(pool) else { throw ConfigError(key: "cluster.pool", reason: "pool names are [A-Za-z0-9._-]{1,64}") }
            s.pool = pool
        }
        if let a = try c.string("internal_address") {
            guard SocketAddress(a) != nil else {
                throw ConfigError(key: "cluster.internal_address", reason: "\"\(a)\" is not a numeric host:port (e.g. 10.0.0.5:8081)")
            }
            s.internalAddress = a
        }
        if let a = try c.string("public_address") {
            guard a.hasPrefix("http://") || a.hasPrefix("https://"), !a.contains(where: { $0.isWhitespace }) else {
                throw ConfigError(key: "cluster.public_address", reason: "must be an http:// or https:// URL")
            }
            s.publicAddress = a
        }
        if let f = try c.string("secret_file") {
            guard !f.isEmpty else { throw ConfigError(key: "cluster.secret_file", reason: "must be a file path") }
            s.secretFile = f
        }
        s.maxHops = try c.int("max_hops", range: 0...8) ?? s.maxHops
        s.heartbeatInterval = try c.duration("heartbeat_interval") ?? 0
        if let i = podRoutes.first, s.secretFile == nil {
            throw ConfigError(key: "cluster.secret_file", reason: "is required with pod routes (routes[\(i)]): it proves a forwarded request came from a center")
        }
        if !podRoutes.isEmpty, !config.listeners.contains(where: \.cluster) {
            throw ConfigError(key: "listeners", reason: "pod routes need a listener with cluster: true (where other centers forward to)")
        }
        if s.internalAddress == nil, !config.listeners.contains(where: \.cluster) {
            throw ConfigError(key: "cluster.internal_address", reason: "is required without a listener with cluster: true")
        }
        if config.admin.nodeTokens[s.pool] != nil {
            // Centers register themselves; a token would let its holder register a "center" and
            // be sent pod requests with the cluster secret.
            throw ConfigError(key: "pools.\(s.pool).node_token", reason: "the centers' pool takes no node token (centers register themselves)")
        }
        if config.sticky.nodes.contains(where: { $0.pool == s.pool }) {
            throw ConfigError(key: "nodes", reason: "centers are not declared as nodes: each registers itself (pool \(s.pool))")
        }
        let threshold = config.sticky.pools[s.pool]?.heartbeatThresholdMs ?? PoolSettings().heartbeatThresholdMs
        if s.heartbeatInterval > 0, Int64(s.heartbeatInterval) > threshold / 2 {
            throw ConfigError(key: "cluster.heartbeat_interval", reason: "must be at most half of pools.\(s.pool).heartbeat_threshold")
        }
        config.cluster = s
    }

    /// A route's `pods` mapping: `key: path` (the first path segment) or `key: host` with a
    /// `base_domain`; `reserved` replaces the seed's reserved first segments.
    static func parsePodTarget(_ node: Node, path: String, upstreams: [String]) throws(ConfigError) -> PodTarget {
        let p = try Mapping(node, path: path, allowed: ["key", "base_domain", "reserved"])
        let source: PodTarget.Source
        switch try p.string("key") ?? "path" {
        case "path":
            if p.value("base_domain") != nil {
                throw ConfigError(key: "\(path).base_domain", reason: "only applies to key: host")
            }
            source = .path
        case "host":
            guard let domain = try p.string("base_domain")?.lowercased(), !domain.isEmpty, !domain.hasPrefix("."),
                  domain.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D }) else {
                throw ConfigError(key: "\(path).base_domain", reason: "key: host needs a base domain like pods.example.com")
            }
            source = .host(baseDomain: Array(domain.utf8))
        case let other:
            throw ConfigError(key: "\(path).key", reason: "must be path or host, not \"\(other)\"")
        }
        var reserved = PodTarget.defaultReserved
        if let list = p.value("reserved") {
            guard let seq = list.sequence else { throw ConfigError(key: "\(path).reserved", reason: "must be a list of first path segments") }
            reserved = []
            for (i, item) in seq.enumerated() {
                guard let text = item.scalar?.string, !text.isEmpty, !text.contains("/"),
                      text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                    throw ConfigError(key: "\(path).reserved[\(i)]", reason: "must be one path segment without slashes, like .well-known")
                }
                reserved.append(text)
            }
        }
        return PodTarget(source: source, reserved: reserved, upstreams: upstreams)
    }
}

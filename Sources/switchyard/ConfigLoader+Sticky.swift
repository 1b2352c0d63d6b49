import Foundation
import IOCore
import ProxyEngine
import RegistryStore
import RouteResolver
import Yams

/// The sticky-routing part of the configuration: the registry database, pool settings, static
/// nodes, and the keyed fields of a route.
extension ConfigLoader {
    static func parseRegistry(_ node: Node?, into config: inout EngineConfig) throws(ConfigError) {
        guard let node else { return }
        let r = try Mapping(node, path: "registry", allowed: ["database", "password_file"])
        if let path = try r.string("database") {
            guard !path.isEmpty else { throw ConfigError(key: "registry.database", reason: "must be a file path or a postgres:// URL") }
            if path.hasPrefix("postgres:") || path.hasPrefix("postgresql:") {
                guard PostgresURL.matches(path), !path.contains(where: { $0.isNewline || $0 == " " }) else {
                    throw ConfigError(key: "registry.database", reason: "a PostgreSQL URL is postgres://user@host:port/database[?sslmode=...]")
                }
            }
            config.sticky.database = path
        }
        if let file = try r.string("password_file") {
            guard !file.isEmpty else { throw ConfigError(key: "registry.password_file", reason: "must be a file path") }
            config.sticky.databasePasswordFile = file
        }
    }

    static func parsePools(_ node: Node?, into config: inout GatewayConfig) throws(ConfigError) {
        guard let node else { return }
        guard let m = node.mapping else { throw ConfigError(key: "pools", reason: "must be a mapping of pool name to settings") }
        for (k, v) in m {
            guard let name = k.scalar?.string, isName(name) else {
                throw ConfigError(key: "pools", reason: "pool names are [A-Za-z0-9._-]{1,64}")
            }
            let path = "pools.\(name)"
            let p = try Mapping(v, path: path, allowed: ["policy", "labels", "heartbeat_threshold", "heartbeat_write_interval", "on_node_down", "retry_after", "port_lookup",
                                                        "node_token", "require_api_base_url"])
            let labels = try stringMap(p.value("labels"), key: "\(path).labels")
            var settings = PoolSettings()
            if let policyName = try p.string("policy") {
                guard let policy = PlacementPolicy(name: policyName, labels: labels) else {
                    throw ConfigError(key: "\(path).policy", reason: "\"\(policyName)\" is not rendezvous, spread, round_robin, best_fit or affinity")
                }
                settings.policy = policy
            }
            if !labels.isEmpty, case .affinity = settings.policy {} else if !labels.isEmpty {
                throw ConfigError(key: "\(path).labels", reason: "labels only apply to policy: affinity")
            }
            if let ms = try p.duration("heartbeat_threshold") { settings.heartbeatThresholdMs = Int64(ms) }
            settings.heartbeatWriteIntervalMs = PoolSettings.defaultHeartbeatWriteInterval(threshold: settings.heartbeatThresholdMs)
            if let ms = try p.duration("heartbeat_write_interval", allowZero: true) {
                // Above half the threshold, the stored heartbeat another instance reads could
                // age past the threshold between two writes while the node is alive.
                guard Int64(ms) <= settings.heartbeatThresholdMs / 2 else {
                    throw ConfigError(key: "\(path).heartbeat_write_interval", reason: "must be at most half of heartbeat_threshold")
                }
                settings.heartbeatWriteIntervalMs = Int64(ms)
            }
            let retryAfter = try p.duration("retry_after").map { max(1, Int($0 / 1000)) } ?? 30
            switch try p.string("on_node_down") ?? "fail" {
            case "fail": settings.onNodeDown = .fail(retryAfterSeconds: retryAfter)
            case "replace": settings.onNodeDown = .replace
            case let other: throw ConfigError(key: "\(path).on_node_down", reason: "\"\(other)\" is not fail or replace")
            }
            settings.requireAPIBaseURL = try p.bool("require_api_base_url") ?? false
            config.sticky.pools[name] = settings
            if let token = try p.string("node_token") {
                guard token.utf8.count >= 16, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                    throw ConfigError(key: "\(path).node_token", reason: "must be at least 16 visible ASCII characters")
                }
                config.admin.nodeTokens[name] = token
            }
            if let node = p.value("port_lookup") {
                let l = try Mapping(node, path: "\(path).port_lookup", allowed: ["path", "key_parameter", "token"])
                var lookup = EngineConfig.PortLookup()
                if let v = try l.string("path") {
                    guard v.hasPrefix("/"), !v.contains("?"), v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                        throw ConfigError(key: "\(path).port_lookup.path", reason: "must be an absolute path without a query")
                    }
                    lookup.path = v
                }
                if let v = try l.string("key_parameter") {
                    guard !v.isEmpty, v.utf8.allSatisfy({ isTokenByte($0) && $0 != 0x26 && $0 != 0x3D }) else {
                        throw ConfigError(key: "\(path).port_lookup.key_parameter", reason: "is not a query parameter name")
                    }
                    lookup.keyParameter = v
                }
                if let v = try l.string("token") {
                    guard v.utf8.allSatisfy({ $0 >= 0x21 && $0 < 0x7F }) else {
                        throw ConfigError(key: "\(path).port_lookup.token", reason: "must be visible ASCII without spaces")
                    }
                    lookup.token = v
                }
                config.sticky.portLookups[name] = lookup
            }
        }
    }

    static func parseNodes(_ node: Node?, into config: inout EngineConfig) throws(ConfigError) {
        guard let node else { return }
        guard let seq = node.sequence else { throw ConfigError(key: "nodes", reason: "must be a list") }
        var seen = Set<String>()
        for (i, item) in seq.enumerated() {
            let path = "nodes[\(i)]"
            let n = try Mapping(item, path: path, allowed: ["name", "pool", "address", "preview_base_url", "api_base_url",
                                                           "weight", "capacity", "labels", "heartbeats", "enabled"])
            guard let name = try n.string("name"), isName(name) else {
                throw ConfigError(key: "\(path).name", reason: "is required, [A-Za-z0-9._-]{1,64}")
            }
            guard seen.insert(name).inserted else { throw ConfigError(key: "\(path).name", reason: "\"\(name)\" is declared twice") }
            guard let pool = try n.string("pool"), isName(pool) else {
                throw ConfigError(key: "\(path).pool", reason: "is required, [A-Za-z0-9._-]{1,64}")
            }
            guard let address = try n.string("address"), SocketAddress(address) != nil else {
                throw ConfigError(key: "\(path).address", reason: "is required, a numeric host:port")
            }
            let preview = try n.string("preview_base_url") ?? "http://\(address)"
            guard UpstreamURL(preview) != nil else {
                throw ConfigError(key: "\(path).preview_base_url", reason: "\"\(preview)\" is not http://<numeric host>[:port] (no path)")
            }
            let api = try n.string("api_base_url") ?? ""
            if !api.isEmpty && UpstreamURL(api) == nil {
                throw ConfigError(key: "\(path).api_base_url", reason: "\"\(api)\" is not http://<numeric host>[:port] (no path)")
            }
            let heartbeats = try n.bool("heartbeats") ?? true
            config.sticky.nodes.append(NodeRecord(
                name: name, pool: pool, address: address, previewBaseURL: preview, apiBaseURL: api,
                enabled: try n.bool("enabled") ?? true,
                weight: try n.int("weight", range: 1...10_000) ?? 100,
                capacity: try n.int("capacity", range: 0...100_000_000) ?? 0,
                labels: try stringMap(n.value("labels"), key: "\(path).labels"),
                isStatic: !heartbeats))
        }
    }

    /// The keyed fields of a route: `key` (one of path_segment, cookie, query, header), `pool`,
    /// `set_cookie`. Nil when the route has no `key` (a static route).
    static func parseKeyedTarget(_ r: Mapping, path: String) throws(ConfigError) -> KeyedTarget? {
        guard let keyNode = r.value("key") else {
            if r.value("pool") != nil || r.value("set_cookie") != nil || r.value("target") != nil {
                throw ConfigError(key: "\(path).key", reason: "pool, target and set_cookie need a key source")
            }
            return nil
        }
        let k = try Mapping(keyNode, path: "\(path).key", allowed: ["path_segment", "cookie", "query", "header"])
        guard k.node.count == 1, let entry = k.node.first, let name = entry.key.scalar?.string,
              let text = entry.value.scalar?.string, !text.isEmpty else {
            throw ConfigError(key: "\(path).key", reason: "must name exactly one of path_segment, cookie, query, header")
        }
        let source: KeySource
        switch name {
        case "path_segment":
            guard text.hasPrefix("/"), text.hasSuffix("/"), text.count > 2 else {
                throw ConfigError(key: "\(path).key.path_segment", reason: "must look like /ws/ (the key is the segment after it)")
            }
            source = .pathSegment(prefix: Array(text.utf8))
        case "cookie":
            guard text.utf8.allSatisfy(isTokenByte) else { throw ConfigError(key: "\(path).key.cookie", reason: "is not a cookie name") }
            source = .cookie(name: Array(text.utf8))
        case "query":
            guard text.utf8.allSatisfy({ isTokenByte($0) && $0 != 0x26 && $0 != 0x3D }) else {
                throw ConfigError(key: "\(path).key.query", reason: "is not a query parameter name")
            }
            source = .query(name: Array(text.utf8))
        default:
            guard text.utf8.allSatisfy(isTokenByte) else { throw ConfigError(key: "\(path).key.header", reason: "is not a header name") }
            source = .header(name: Array(text.lowercased().utf8))
        }
        guard let pool = try r.string("pool"), isName(pool) else {
            throw ConfigError(key: "\(path).pool", reason: "a keyed route needs the pool its keys are placed in")
        }
        if r.value("upstreams") != nil {
            throw ConfigError(key: "\(path).upstreams", reason: "a keyed route takes its upstream from the placement; remove upstreams")
        }
        let kind: KeyedTarget.Kind
        switch try r.string("target") ?? "node" {
        case "node": kind = .node
        case "placement_port": kind = .placementPort
        case "api": kind = .api
        case let other: throw ConfigError(key: "\(path).target", reason: "\"\(other)\" is not node, placement_port or api")
        }
        var secret: [UInt8] = []
        if let file = try r.string("api_secret_file") {
            guard kind == .api else { throw ConfigError(key: "\(path).api_secret_file", reason: "signs requests to a node API: only with target: api") }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError(key: "\(path).api_secret_file", reason: "cannot read \(file)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.utf8.count >= 16 else { throw ConfigError(key: "\(path).api_secret_file", reason: "\(file): a secret has at least 16 bytes") }
            secret = Array(text.utf8)
        }
        let cookie = try r.string("set_cookie")
        if let cookie, cookie.isEmpty || cookie.utf8.count > 64 || !cookie.utf8.allSatisfy(isTokenByte) {
            throw ConfigError(key: "\(path).set_cookie", reason: "is not a cookie name (a token of at most 64 bytes)")
        }
        return KeyedTarget(source: source, pool: pool, kind: kind, setCookie: cookie, signingSecret: secret)
    }

    private static func stringMap(_ node: Node?, key: String) throws(ConfigError) -> [String: String] {
        guard let node else { return [:] }
        guard let m = node.mapping else { throw ConfigError(key: key, reason: "must be a mapping of strings") }
        var out: [String: String] = [:]
        for (k, v) in m {
            guard let ks = k.scalar?.string, let vs = v.scalar?.string else { throw ConfigError(key: key, reason: "must be a mapping of strings") }
            out[ks] = vs
        }
        return out
    }

    static func isName(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }
}

/// RFC 9110 tchar.
func isTokenByte(_ b: UInt8) -> Bool {
    if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) { return true }
    return "!#$%&'*+-.^_`|~".utf8.contains(b)
}

import AdminPlane
import IOCore
import ProxyEngine
import Yams

extension ConfigLoader {
    /// `admin:` — the admin listener (registry API, heartbeats, metrics).
    static func parseAdmin(_ node: Node?, into admin: inout AdminConfig, listeners: [EngineConfig.Listener]) throws(ConfigError) {
        guard let node else { return }
        let a = try Mapping(node, path: "admin", allowed: ["address", "token", "token_file", "allow",
                                                           "compat_node_endpoint", "compat_pool", "runtime_pool"])
        if let text = try a.string("address") {
            if text == "off" {
                admin.address = nil
            } else {
                guard let address = SocketAddress(text) else {
                    throw ConfigError(key: "admin.address", reason: "\"\(text)\" is not a numeric host:port, or off")
                }
                if listeners.contains(where: { $0.address == address }) {
                    throw ConfigError(key: "admin.address", reason: "\(text) is a public listener's address")
                }
                admin.address = address
            }
        }
        if let token = try a.string("token") {
            guard token.utf8.count >= 16, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigError(key: "admin.token", reason: "must be at least 16 visible ASCII characters")
            }
            admin.token = token
        }
        if let file = try a.string("token_file") {
            guard !file.isEmpty else { throw ConfigError(key: "admin.token_file", reason: "must be a file path") }
            admin.tokenFile = file
        }
        if let list = a.value("allow") {
            guard let seq = list.sequence else { throw ConfigError(key: "admin.allow", reason: "must be a list of addresses or CIDRs") }
            for (i, item) in seq.enumerated() {
                guard let text = item.scalar?.string, CIDR(text) != nil else {
                    throw ConfigError(key: "admin.allow[\(i)]", reason: "must be an IPv4/IPv6 address or CIDR like 10.0.0.0/8")
                }
                admin.allow.append(text)
            }
        }
        admin.compatNodeEndpoint = try a.bool("compat_node_endpoint") ?? admin.compatNodeEndpoint
        if let pool = try a.string("runtime_pool") {
            guard isName(pool) else { throw ConfigError(key: "admin.runtime_pool", reason: "pool names are [A-Za-z0-9._-]{1,64}") }
            admin.runtimePool = pool
        }
        if let pool = try a.string("compat_pool") {
            guard isName(pool) else { throw ConfigError(key: "admin.compat_pool", reason: "pool names are [A-Za-z0-9._-]{1,64}") }
            admin.compatPool = pool
        }
    }
}

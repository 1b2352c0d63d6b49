import Foundation
import IOCore
import ProxyEngine
import RouteResolver
import Yams

/// A configuration problem, named by the key path it concerns ("routes[1].upstreams[0]").
struct ConfigError: Error, CustomStringConvertible, Equatable {
    let key: String
    let reason: String
    var description: String { key.isEmpty ? reason : "\(key): \(reason)" }
}

/// Reads the YAML configuration into an `EngineConfig`. Unknown keys are errors (a typo must not
/// silently fall back to a default), and every error names its key.
enum ConfigLoader {
    static func load(path: String) throws(ConfigError) -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(key: "", reason: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text)
    }

    static func parse(_ text: String) throws(ConfigError) -> GatewayConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(key: "", reason: "not valid YAML: \(error)")
        }
        guard let root, root.mapping != nil else { throw ConfigError(key: "", reason: "the file must be a YAML mapping") }
        let m = try Mapping(root, path: "", allowed: ["workers", "listeners", "limits", "timeouts", "upstream_pool", "logging", "routes",
                                                                "registry", "pools", "nodes", "tunnels", "admin", "http2", "cluster", "edges"])

        let workers = try parseWorkers(m.value("workers"))
        let listeners = try parseListeners(m.value("listeners"))
        var addresses: [SocketAddress] = []
        var routeUpstreams: [[Int]] = []
        var tunnelIdle: [UInt64] = []
        let routes = try parseRoutes(m.value("routes"), addresses: &addresses, routeUpstreams: &routeUpstreams,
                                     tunnelIdle: &tunnelIdle)
        var config = GatewayConfig(engine: EngineConfig(workers: workers, listeners: listeners, routes: RouteTable(routes: routes),
                                                        upstreamAddresses: addresses, routeUpstreams: routeUpstreams))
        config.routeTunnelIdle = tunnelIdle

        try parseRegistry(m.value("registry"), into: &config.engine)
        try parsePools(m.value("pools"), into: &config)
        try parseNodes(m.value("nodes"), into: &config.engine)
        try parseAdmin(m.value("admin"), into: &config.admin, listeners: config.listeners)
        try parseHTTP2(m.value("http2"), into: &config.engine)
        try parseCluster(m.value("cluster"), into: &config)
        try parseEdges(m.value("edges"), into: &config.engine)
        for (i, r) in config.routes.routes.enumerated() {
            if case .keyed(let t) = r.target, !config.sticky.nodes.contains(where: { $0.pool == t.pool }),
               config.sticky.pools[t.pool] == nil {
                throw ConfigError(key: "routes[\(i)].pool", reason: "\"\(t.pool)\" is neither under pools nor the pool of any node")
            }
        }

        if let node = m.value("limits") {
            let l = try Mapping(node, path: "limits", allowed: ["max_request_line", "max_header_bytes", "max_headers"])
            config.limits.maxRequestLine = try l.int("max_request_line", range: 256...65536) ?? config.limits.maxRequestLine
            config.limits.maxHeaderBytes = try l.int("max_header_bytes", range: 1024...(48 * 1024)) ?? config.limits.maxHeaderBytes
            config.limits.maxHeaders = try l.int("max_headers", range: 8...1000) ?? config.limits.maxHeaders
            if config.limits.maxRequestLine + config.limits.maxHeaderBytes > 60 * 1024 {
                throw ConfigError(key: "limits", reason: "max_request_line + max_header_bytes must not exceed 61440")
            }
        }
        if let node = m.value("timeouts") {
            let t = try Mapping(node, path: "timeouts", allowed: ["client_header", "client_body", "client_idle",
                "upstream_connect", "upstream_first_byte", "upstream_read", "send", "drain"])
            config.timeouts.clientHeader = try t.duration("client_header") ?? config.timeouts.clientHeader
            config.timeouts.clientBody = try t.duration("client_body") ?? config.timeouts.clientBody
            config.timeouts.clientIdle = try t.duration("client_idle") ?? config.timeouts.clientIdle
            config.timeouts.upstreamConnect = try t.duration("upstream_connect") ?? config.timeouts.upstreamConnect
            config.timeouts.upstreamFirstByte = try t.duration("upstream_first_byte") ?? config.timeouts.upstreamFirstByte
            config.timeouts.upstreamRead = try t.duration("upstream_read") ?? config.timeouts.upstreamRead
            config.timeouts.send = try t.duration("send") ?? config.timeouts.send
            config.timeouts.drain = try t.duration("drain", allowZero: true) ?? config.timeouts.drain
        }
        if let node = m.value("upstream_pool") {
            let p = try Mapping(node, path: "upstream_pool", allowed: ["idle_per_address", "idle_timeout"])
            config.upstreamPool.idlePerAddress = try p.int("idle_per_address", range: 0...10_000) ?? config.upstreamPool.idlePerAddress
            config.upstreamPool.idleTimeout = try p.duration("idle_timeout") ?? config.upstreamPool.idleTimeout
        }
        if let node = m.value("tunnels") {
            let t = try Mapping(node, path: "tunnels", allowed: ["splice", "keepalive_idle", "keepalive_interval", "keepalive_count"])
            config.tunnels.splice = try t.bool("splice") ?? config.tunnels.splice
            // TCP_KEEPIDLE/TCP_KEEPINTVL take whole seconds, at most 32767 (tcp(7)).
            if let ms = try t.optionalDuration("keepalive_idle") {
                guard ms == 0 || (ms >= 1000 && ms <= 32_767_000) else {
                    throw ConfigError(key: "tunnels.keepalive_idle", reason: "must be off or between 1s and 32767s")
                }
                config.tunnels.keepaliveIdle = Int32(ms / 1000)
            }
            if let ms = try t.duration("keepalive_interval") {
                guard ms >= 1000 && ms <= 32_767_000 else {
                    throw ConfigError(key: "tunnels.keepalive_interval", reason: "must be between 1s and 32767s")
                }
                config.tunnels.keepaliveInterval = Int32(ms / 1000)
            }
            config.tunnels.keepaliveCount = Int32(try t.int("keepalive_count", range: 1...127) ?? Int(config.tunnels.keepaliveCount))
        }
        if let node = m.value("logging") {
            let l = try Mapping(node, path: "logging", allowed: ["access", "error"])
            config.accessLog = try l.logTarget("access") ?? config.accessLog
            config.errorLog = try l.logTarget("error") ?? config.errorLog
        }
        return config
    }

    private static func parseWorkers(_ node: Node?) throws(ConfigError) -> Int {
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard let node else { return cores }
        guard let s = node.scalar?.string else { throw ConfigError(key: "workers", reason: "must be \"auto\" or a number") }
        if s == "auto" { return cores }
        guard let n = Int(s), (1...256).contains(n) else {
            throw ConfigError(key: "workers", reason: "must be \"auto\" or a number from 1 to 256, not \"\(s)\"")
        }
        return n
    }

    private static func parseListeners(_ node: Node?) throws(ConfigError) -> [EngineConfig.Listener] {
        guard let node else { throw ConfigError(key: "listeners", reason: "at least one listener is required") }
        guard let seq = node.sequence, !seq.isEmpty else { throw ConfigError(key: "listeners", reason: "must be a non-empty list") }
        var result: [EngineConfig.Listener] = []
        for (i, item) in seq.enumerated() {
            let path = "listeners[\(i)]"
            let l = try Mapping(item, path: path, allowed: ["name", "address", "backlog", "tls", "redirect_https", "http2", "cluster", "edge_tunnel"])
            guard let text = try l.string("address") else { throw ConfigError(key: "\(path).address", reason: "is required") }
            guard let address = SocketAddress(text) else {
                throw ConfigError(key: "\(path).address", reason: "\"\(text)\" is not a numeric host:port (e.g. 127.0.0.1:8080 or [::1]:8080)")
            }
            if result.contains(where: { $0.address == address }) {
                throw ConfigError(key: "\(path).address", reason: "\(text) is used by another listener")
            }
            let backlog = try l.int("backlog", range: 1...65535) ?? 4096
            var listener = EngineConfig.Listener(name: try l.string("name") ?? "listener\(i)", address: address, backlog: Int32(backlog))
            listener.tls = try parseTLS(l.value("tls"), path: "\(path).tls")
            listener.http2 = try l.bool("http2") ?? true
            listener.cluster = try l.bool("cluster") ?? false
            listener.edgeTunnel = try l.bool("edge_tunnel") ?? false
            if listener.edgeTunnel && listener.tls == nil {
                throw ConfigError(key: "\(path).edge_tunnel", reason: "edge agents attach over TLS: the listener needs tls")
            }
            if let port = try l.int("redirect_https", range: 1...65535) {
                guard listener.tls == nil else {
                    throw ConfigError(key: "\(path).redirect_https", reason: "a TLS listener cannot redirect to HTTPS")
                }
                listener.redirectHTTPSPort = UInt16(port)
            }
            result.append(listener)
        }
        return result
    }

    private static func parseRoutes(_ node: Node?, addresses: inout [SocketAddress], routeUpstreams: inout [[Int]],
                                    tunnelIdle: inout [UInt64]) throws(ConfigError) -> [Route] {
        guard let node else { return [] }
        guard let seq = node.sequence else { throw ConfigError(key: "routes", reason: "must be a list") }
        var routes: [Route] = []
        for (i, item) in seq.enumerated() {
            let path = "routes[\(i)]"
            let r = try Mapping(item, path: path, allowed: ["name", "host", "path_prefix", "upstreams", "key", "pool", "target", "set_cookie",
                                                             "tunnel_idle_timeout", "pods", "edges", "api_secret_file"])
            let name = try r.string("name") ?? "route\(i)"
            tunnelIdle.append(try r.optionalDuration("tunnel_idle_timeout") ?? 0)
            var host: HostPattern? = nil
            if let h = try r.string("host") {
                guard let p = HostPattern(h) else {
                    throw ConfigError(key: "\(path).host", reason: "\"\(h)\" is not a host name or *.suffix pattern")
                }
                host = p
            }
            let prefix = try r.string("path_prefix") ?? "/"
            guard prefix.hasPrefix("/"), prefix.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigError(key: "\(path).path_prefix", reason: "must start with \"/\" and contain no spaces or control characters")
            }
            if try r.bool("edges") == true {
                guard r.value("upstreams") == nil, r.value("pods") == nil, r.value("pool") == nil else {
                    throw ConfigError(key: "\(path).edges", reason: "an edges route takes no upstreams, pool or pods: the host names the edge")
                }
                routeUpstreams.append([])
                routes.append(Route(name: name, host: host, pathPrefix: prefix, target: .edges))
                continue
            }
            if let keyed = try parseKeyedTarget(r, path: path) {
                routeUpstreams.append([])
                routes.append(Route(name: name, host: host, pathPrefix: prefix, target: .keyed(keyed)))
                continue
            }
            let (indices, texts) = try parseUpstreams(r, path: path, addresses: &addresses)
            routeUpstreams.append(indices)
            if let pods = r.value("pods") {
                let target = try parsePodTarget(pods, path: "\(path).pods", upstreams: texts)
                routes.append(Route(name: name, host: host, pathPrefix: prefix, target: .pods(target)))
            } else {
                routes.append(Route(name: name, host: host, pathPrefix: prefix, target: .upstreams(texts)))
            }
        }
        return routes
    }

    /// A route's `upstreams`: indices into the shared address list (each address once), and the
    /// texts as written.
    private static func parseUpstreams(_ r: Mapping, path: String, addresses: inout [SocketAddress]) throws(ConfigError) -> ([Int], [String]) {
        guard let list = r.value("upstreams")?.sequence, !list.isEmpty else {
            throw ConfigError(key: "\(path).upstreams", reason: "must be a non-empty list of host:port")
        }
        var indices: [Int] = []
        var texts: [String] = []
        for (j, u) in list.enumerated() {
            let key = "\(path).upstreams[\(j)]"
            guard let text = u.scalar?.string else { throw ConfigError(key: key, reason: "must be a host:port string") }
            let address = try resolve(text, key: key)
            if let k = addresses.firstIndex(of: address) {
                indices.append(k)
            } else {
                addresses.append(address)
                indices.append(addresses.count - 1)
            }
            texts.append(text)
        }
        return (indices, texts)
    }

    /// A numeric address as is; a host name is resolved once, here, never on an event loop.
    static func resolve(_ text: String, key: String) throws(ConfigError) -> SocketAddress {
        if let a = SocketAddress(text) { return a }
        guard let colon = text.lastIndex(of: ":"), !text.hasPrefix("[") else {
            throw ConfigError(key: key, reason: "\"\(text)\" is not host:port")
        }
        let host = String(text[..<colon])
        let port = String(text[text.index(after: colon)...])
        guard !host.isEmpty, let p = UInt16(port), p > 0 else { throw ConfigError(key: key, reason: "\"\(text)\" is not host:port") }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else {
            throw ConfigError(key: key, reason: "cannot resolve host \"\(host)\"")
        }
        defer { freeaddrinfo(res) }
        var buf = [CChar](repeating: 0, count: 64)
        getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &buf, 64, nil, 0, NI_NUMERICHOST)
        let numeric = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let literal = first.pointee.ai_family == AF_INET6 ? "[\(numeric)]:\(p)" : "\(numeric):\(p)"
        guard let a = SocketAddress(literal) else { throw ConfigError(key: key, reason: "cannot use \"\(text)\"") }
        return a
    }
}

/// A YAML mapping with its key path, refusing keys it does not know.
struct Mapping {
    let node: Node.Mapping
    let path: String

    init(_ node: Node, path: String, allowed: Set<String>) throws(ConfigError) {
        guard let m = node.mapping else { throw ConfigError(key: path, reason: "must be a mapping") }
        for (k, _) in m {
            guard let key = k.scalar?.string else { throw ConfigError(key: path, reason: "keys must be strings") }
            if !allowed.contains(key) {
                let known = allowed.sorted().joined(separator: ", ")
                throw ConfigError(key: join(path, key), reason: "unknown key (known: \(known))")
            }
        }
        self.node = m
        self.path = path
    }

    func value(_ key: String) -> Node? { node[Node(key)] }

    func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.scalar?.string else { throw ConfigError(key: join(path, key), reason: "must be a string") }
        return s
    }

    func int(_ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let s = try string(key) else { return nil }
        guard let n = Int(s), range.contains(n) else {
            throw ConfigError(key: join(path, key), reason: "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \"\(s)\"")
        }
        return n
    }

    /// "250ms", "10s", "2m", "1h", or a bare number of milliseconds. Returns milliseconds.
    func duration(_ key: String, allowZero: Bool = false) throws(ConfigError) -> UInt64? {
        guard let s = try string(key) else { return nil }
        guard let ms = parseDuration(s), ms <= 7 * 24 * 3_600_000, allowZero || ms > 0 else {
            throw ConfigError(key: join(path, key), reason: "\"\(s)\" is not a duration like 500ms, 10s, 2m or 1h\(allowZero ? "" : " (above zero)")")
        }
        return ms
    }

    /// A duration, or "off" (and "0"): 0.
    func optionalDuration(_ key: String) throws(ConfigError) -> UInt64? {
        if try string(key) == "off" { return 0 }
        return try duration(key, allowZero: true)
    }

    func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let s = try string(key) else { return nil }
        switch s {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigError(key: join(path, key), reason: "must be true or false, not \"\(s)\"")
        }
    }

    func logTarget(_ key: String) throws(ConfigError) -> EngineConfig.LogTarget? {
        guard let s = try string(key) else { return nil }
        switch s {
        case "off": return .off
        case "stdout": return .stdout
        case "stderr": return .stderr
        case "": throw ConfigError(key: join(path, key), reason: "must be stdout, stderr, off or a file path")
        default: return .file(s)
        }
    }
}

func parseDuration(_ s: String) -> UInt64? {
    let units: [(String, UInt64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    for (suffix, factor) in units where s.hasSuffix(suffix) {
        let number = s.dropLast(suffix.count)
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt64(number) else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: factor)
        return overflow ? nil : v
    }
    guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return UInt64(s)
}

private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

// The gateway's keyed (sticky) configuration as the suites write it: listeners, the registry,
// pools, nodes and the workspace routes (`/ws/<id>/` by path segment, setting the ws_uid
// cookie; the fun-ai API by `?userId=`; everything else by the ws_uid cookie). One builder, so a
// change of the YAML's shape is made once for every suite.

import Foundation

/// A node of the YAML's `nodes:` list.
struct StickyNode {
    var name: String
    var address: String
    var pool = "workspace"
    /// Declared static (`heartbeats: false`): selectable without heartbeats.
    var heartbeats = false
    /// Further flow-mapping entries, e.g. "capacity: 1" or "weight: 300, enabled: false".
    var extra = ""

    init(_ name: String, _ address: String, _ extra: String = "", pool: String = "workspace", heartbeats: Bool = false) {
        self.name = name
        self.address = address
        self.extra = extra
        self.pool = pool
        self.heartbeats = heartbeats
    }

    var yaml: String {
        var fields = "name: \(name), pool: \(pool), address: \(address)"
        if !heartbeats { fields += ", heartbeats: false" }
        if !extra.isEmpty { fields += ", " + extra }
        return "{\(fields)}"
    }
}

/// A keyed route to the `workspace` pool.
struct KeyedRoute {
    var name: String
    var pathPrefix: String
    /// The `key:` value, e.g. "{cookie: ws_uid}".
    var key: String
    var setCookie: String? = nil
    /// `target:` (e.g. "placement_port"); the node's own address when nil.
    var target: String? = nil

    /// `/ws/<id>/...`, keyed by the path segment after /ws/; sets the ws_uid cookie.
    static let workspace = KeyedRoute(name: "workspace", pathPrefix: "/ws/", key: "{path_segment: /ws/}", setCookie: "ws_uid")
    /// The node API's calls, keyed by `?userId=`.
    static let workspaceAPI = KeyedRoute(name: "workspace-api", pathPrefix: "/api/fun-ai/workspace/", key: "{query: userId}")
    /// Everything else (root-path assets, HMR sockets), keyed by the ws_uid cookie.
    static let assets = KeyedRoute(name: "assets", pathPrefix: "/", key: "{cookie: ws_uid}")

    var yaml: String {
        var y = "  - name: \(name)\n    path_prefix: \(pathPrefix)\n    key: \(key)\n    pool: workspace\n"
        if let setCookie { y += "    set_cookie: \(setCookie)\n" }
        if let target { y += "    target: \(target)\n" }
        return y
    }
}

/// A gateway with a registry and keyed routes, rendered to the documented YAML.
struct StickyConfig {
    var port: Int
    /// The registry's SQLite file.
    var database: String
    var nodes: [StickyNode] = []
    var routes: [KeyedRoute] = [.workspace, .assets]
    /// `pools:` entries in order: name and settings (a flow mapping).
    var pools: [(name: String, settings: String)] = [("workspace", "{policy: rendezvous}")]
    var workers = 2
    var access = "stdout"
    /// The `admin:` value (a flow mapping).
    var admin = #"{address: "off"}"#
    /// Single timeouts, e.g. ["upstream_connect": "1s"]; the gateway's defaults otherwise.
    var timeouts: [String: String] = [:]
    /// The `tunnels:` value, e.g. "{splice: false}"; the defaults when nil.
    var tunnels: String? = nil

    func yaml() -> String {
        var y = """
        workers: \(workers)
        listeners:
          - address: 127.0.0.1:\(port)

        """
        if !timeouts.isEmpty {
            y += "timeouts: {\(timeouts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))}\n"
        }
        y += """
        logging: {access: "\(access)", error: stderr}
        admin: \(admin)
        registry: {database: "\(database)"}
        pools:

        """
        for pool in pools { y += "  \(pool.name): \(pool.settings)\n" }
        y += "nodes:\(nodes.isEmpty ? " []" : "")\n"
        for node in nodes { y += "  - \(node.yaml)\n" }
        if let tunnels { y += "tunnels: \(tunnels)\n" }
        y += "routes:\n"
        for route in routes { y += route.yaml }
        return y
    }
}

extension Scope {
    func startGateway(_ config: StickyConfig, name: String = "gateway") throws -> Gateway {
        try startGateway(yaml: config.yaml(), port: config.port, name: name)
    }
}

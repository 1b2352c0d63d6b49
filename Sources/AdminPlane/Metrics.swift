import Foundation
import RouteResolver

/// `/metrics` in the Prometheus text format (version 0.0.4). Built from the engine's per-worker
/// counters and the registry on each scrape; nothing on the request path waits for it.
extension AdminAPI {
    func metrics() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func line(_ name: String, _ labels: [(String, String)], _ value: String) {
            if labels.isEmpty {
                out += "\(name) \(value)\n"
            } else {
                out += "\(name){" + labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "} \(value)\n"
            }
        }
        let snap = engine.traffic()
        let classes = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"]
        family("switchyard_requests_total", "counter", "Requests finished (tunnels when they close), by route and status class.")
        for (r, name) in engine.routeNames.enumerated() {
            for (c, label) in classes.enumerated() where snap.requests[r][c] > 0 || (c == 2 && r < engine.routeNames.count - 1) {
                line("switchyard_requests_total", [("route", name), ("class", label)], "\(snap.requests[r][c])")
            }
        }
        family("switchyard_request_duration_seconds", "histogram", "Time from a request head to the end of its response.")
        for b in snap.latencyBuckets {
            line("switchyard_request_duration_seconds_bucket", [("le", b.le.isInfinite ? "+Inf" : format(b.le))], "\(b.count)")
        }
        line("switchyard_request_duration_seconds_sum", [], format(snap.latencySumSeconds))
        line("switchyard_request_duration_seconds_count", [], "\(snap.latencyCount)")
        family("switchyard_upstream_errors_total", "counter", "Failed exchanges with upstreams, by kind.")
        for e in snap.upstreamErrors { line("switchyard_upstream_errors_total", [("kind", e.kind)], "\(e.count)") }
        family("switchyard_open_connections", "gauge", "Client connections open now.")
        line("switchyard_open_connections", [], "\(snap.openConnections)")
        let tunnels = engine.tunnelCounts()
        family("switchyard_open_tunnels", "gauge", "Upgraded connections (WebSocket) open now, in all and by route.")
        line("switchyard_open_tunnels", [], "\(tunnels.total)")
        for (route, n) in tunnels.byRoute.sorted(by: { $0.key < $1.key }) { line("switchyard_open_tunnels", [("route", route)], "\(n)") }
        let edge = engine.edgeCounters()
        family("switchyard_edge_hello_refused_total", "counter", "TLS connections closed at the ClientHello peek, by reason.")
        for (reason, n) in [("malformed", edge.helloMalformed), ("too_large", edge.helloTooLarge), ("not_tls", edge.notTLS)] {
            line("switchyard_edge_hello_refused_total", [("reason", reason)], "\(n)")
        }
        family("switchyard_edge_no_tunnel_total", "counter", "Connections for an edge without a tunnel here, refused at once.")
        line("switchyard_edge_no_tunnel_total", [], "\(edge.noTunnel)")
        family("switchyard_edge_connections_total", "counter", "Client connections carried into an edge tunnel.")
        line("switchyard_edge_connections_total", [], "\(edge.carried)")
        family("switchyard_edge_relayed_total", "counter", "Client connections relayed to the center holding their edge's tunnel.")
        line("switchyard_edge_relayed_total", [], "\(edge.relayed)")
        family("switchyard_edge_open_connections", "gauge", "Client connections in an edge tunnel now.")
        line("switchyard_edge_open_connections", [], "\(edge.open)")
        family("switchyard_edge_attach_refused_total", "counter", "Edge agents' attach requests refused (token, claims, unknown edge).")
        line("switchyard_edge_attach_refused_total", [], "\(edge.attachRefused)")
        family("switchyard_edge_tunnels", "gauge", "Tunnels attached here now, per edge.")
        for (id, n) in edge.tunnels.sorted(by: { $0.key < $1.key }) { line("switchyard_edge_tunnels", [("edge", id)], "\(n)") }
        guard let registry else { return out }
        let edges = registry.edges()
        if !edges.isEmpty {
            family("switchyard_edges", "gauge", "Edge nodes in the registry, by mode.")
            for mode in ["direct", "proxy"] { line("switchyard_edges", [("mode", mode)], "\(edges.filter { $0.mode.rawValue == mode }.count)") }
            let flips = registry.edgeModeFlips
            family("switchyard_edge_mode_flips_total", "counter", "Edge mode changes by the signal rules, by the mode flipped to.")
            line("switchyard_edge_mode_flips_total", [("to", "direct")], "\(flips.toDirect)")
            line("switchyard_edge_mode_flips_total", [("to", "proxy")], "\(flips.toProxy)")
        }
        if let h = registry.storeHealth {
            family("switchyard_registry_connected", "gauge", "1 while the registry's database answers (writer and change feed), 0 during an outage.")
            line("switchyard_registry_connected", [("engine", h.engine)], h.connected ? "1" : "0")
            family("switchyard_registry_pending_changes", "gauge", "Registry changes queued here and not yet committed.")
            line("switchyard_registry_pending_changes", [], "\(h.pendingChanges)")
            family("switchyard_registry_dropped_changes_total", "counter", "Registry changes refused because the write queue was full (memory only).")
            line("switchyard_registry_dropped_changes_total", [], "\(h.droppedChanges)")
            if h.following {
                family("switchyard_registry_change_lag_seconds", "gauge", "How long the newest change of another instance took to be read here.")
                line("switchyard_registry_change_lag_seconds", [], format(Double(h.lastChangeLagMs ?? 0) / 1000))
                family("switchyard_registry_feed_age_seconds", "gauge", "Seconds since the change feed last read the log; grows during an outage.")
                line("switchyard_registry_feed_age_seconds", [], format(Double(h.feedAgeMs ?? 0) / 1000))
            }
        }
        let nodes = registry.nodes
        let now = Self.nowMs()
        family("switchyard_placements", "gauge", "Sticky placements held by the registry.")
        line("switchyard_placements", [], "\(registry.placementCount)")
        family("switchyard_node_placements", "gauge", "Placements per node.")
        for n in nodes { line("switchyard_node_placements", [("pool", n.pool), ("node", n.name)], "\(n.placementCount)") }
        if router.cluster != nil {
            family("switchyard_pods", "gauge", "Data pods in the registry, per owning center.")
            for (owner, count) in registry.podCounts().sorted(by: { $0.key < $1.key }) { line("switchyard_pods", [("node", owner)], "\(count)") }
        }
        family("switchyard_node_healthy", "gauge", "1 when the node is enabled with a fresh heartbeat (or static).")
        for n in nodes {
            let threshold = (pools[n.pool] ?? PoolSettings()).heartbeatThresholdMs
            let healthy = n.enabled && (n.isStatic || now - n.lastHeartbeat <= threshold)
            line("switchyard_node_healthy", [("pool", n.pool), ("node", n.name)], healthy ? "1" : "0")
        }
        family("switchyard_node_heartbeat_age_seconds", "gauge", "Seconds since the node's last heartbeat (nodes that have sent one).")
        for n in nodes where n.lastHeartbeat > 0 {
            line("switchyard_node_heartbeat_age_seconds", [("pool", n.pool), ("node", n.name)], format(Double(max(0, now - n.lastHeartbeat)) / 1000))
        }
        family("switchyard_node_open_tunnels", "gauge", "Tunnels open now per node.")
        for n in nodes { line("switchyard_node_open_tunnels", [("pool", n.pool), ("node", n.name)], "\(tunnels.byNode[n.name] ?? 0)") }
        family("switchyard_node_requests_total", "counter", "Requests finished per node.")
        for n in nodes { line("switchyard_node_requests_total", [("pool", n.pool), ("node", n.name)], "\(n.traffic.requests)") }
        return out
    }

    private func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

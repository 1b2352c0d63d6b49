import Foundation
import IOCore
import RouteResolver

/// `/admin/nodes`: list, get (with stats), upsert, delete, enable/disable, drain.
extension AdminAPI {
    static let nodeFields: Set<String> = ["pool", "address", "preview_base_url", "api_base_url", "enabled", "weight",
                                          "capacity", "labels", "static"]

    func nodes(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        if s.isEmpty {
            guard r.method == "GET" else { throw BadInput("use GET", status: 405) }
            let pool = r.query["pool"]
            return .json(200, ["nodes": registry.nodes.filter { pool == nil || $0.pool == pool }.map(describe)])
        }
        let name = s[0]
        guard isName(name) else { throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "name") }
        switch (r.method, s.count > 1 ? s[1] : "") {
        case ("GET", ""), ("GET", "stats"):
            guard let node = registry.node(named: name) else { throw BadInput("no node named \(name)", status: 404) }
            return .json(200, describe(node))
        case ("PUT", ""):
            return try upsertNode(r, registry, name)
        case ("DELETE", ""):
            let before = registry.node(named: name).map(describe)
            let dropped: Int
            do { dropped = try registry.removeNode(name: name) } catch { throw refusal(error) }
            audit.record(who: who(r), client: r.peer, action: "node.delete", target: name, before: before, after: nil)
            return .json(200, ["removed": name, "placements_dropped": dropped])
        case ("POST", "enable"), ("POST", "disable"):
            let enable = s[1] == "enable"
            let before = registry.node(named: name).map(describe)
            do { try registry.setEnabled(name: name, enable, now: Self.nowMs()) } catch { throw refusal(error) }
            let after = registry.node(named: name).map(describe)
            audit.record(who: who(r), client: r.peer, action: "node.\(s[1])", target: name, before: before, after: after)
            return .json(200, after ?? [:])
        case ("POST", "drain"):
            return try drain(r, registry, name)
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    private func upsertNode(_ r: AdminRequest, _ registry: Registry, _ name: String) throws(BadInput) -> AdminResponse {
        let body = try JSONBody(r.body, allowed: Self.nodeFields.union(["name"]))
        if let n = try body.string("name"), n != name { throw BadInput("must match the name in the path", field: "name") }
        let patch = try nodePatch(body)
        let change: (before: NodeRecord?, after: NodeRecord)
        do { change = try registry.patchNode(name: name, patch, now: Self.nowMs()) } catch { throw refusal(error) }
        let after = registry.node(named: name).map(describe)
        audit.record(who: who(r), client: r.peer, action: change.before == nil ? "node.create" : "node.update", target: name,
                     before: change.before.map(describe), after: after)
        return .json(change.before == nil ? 201 : 200, after ?? [:])
    }

    /// The node fields of `body`, each checked; what is absent stays as it is.
    func nodePatch(_ body: JSONBody) throws(BadInput) -> NodePatch {
        var patch = NodePatch()
        if let pool = try body.string("pool") {
            guard isName(pool) else { throw BadInput("pool names are [A-Za-z0-9._-]{1,64}", field: "pool") }
            patch.pool = pool
        }
        if let address = try body.string("address") {
            guard let a = SocketAddress(address), a.port != 0 else {
                throw BadInput("must be a numeric host:port with a port in 1-65535", field: "address")
            }
            patch.address = address
        }
        if let url = try body.string("preview_base_url") {
            guard let u = UpstreamURL(url), u.address.port != 0 else {
                throw BadInput("must be an http://host:port URL with a port in 1-65535", field: "preview_base_url")
            }
            patch.previewBaseURL = url
        }
        if let url = try body.string("api_base_url") {
            if !url.isEmpty {
                guard let u = UpstreamURL(url), u.address.port != 0 else {
                    throw BadInput("must be an http://host:port URL with a port in 1-65535", field: "api_base_url")
                }
            }
            patch.apiBaseURL = url
        }
        patch.enabled = try body.bool("enabled")
        patch.weight = try body.int("weight", range: 1...10_000)
        patch.capacity = try body.int("capacity", range: 0...10_000_000)
        patch.labels = try body.stringMap("labels")
        patch.isStatic = try body.bool("static")
        return patch
    }

    private func drain(_ r: AdminRequest, _ registry: Registry, _ name: String) throws(BadInput) -> AdminResponse {
        let body = try JSONBody(r.body, allowed: ["target", "limit", "list_limit"])
        let target = try body.string("target")
        if let target, !isName(target) { throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "target") }
        let limit = try body.int("limit", range: 1...10_000_000)
        let listLimit = try body.int("list_limit", range: 0...1_000_000) ?? 1000
        let started = DispatchTime.now()
        let result: Registry.DrainResult
        do { result = try registry.drain(node: name, to: target, limit: limit, now: Self.nowMs()) } catch {
            throw refusal(error, targetField: "target")
        }
        let tookMs = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
        var perTarget: [String: Int] = [:]
        for m in result.moved { perTarget[m.to, default: 0] += 1 }
        audit.record(who: who(r), client: r.peer, action: "node.drain", target: name,
                     before: ["node": name, "placements": result.moved.count + (registry.node(named: name)?.placementCount ?? 0)], after: ["moved": result.moved.count, "unmoved": result.unmoved, "to": perTarget])
        let listed = result.moved.prefix(listLimit).map { ["pool": $0.pool, "key": $0.key, "from": $0.from, "to": $0.to] }
        return .json(200, ["node": name, "moved": result.moved.count, "unmoved": result.unmoved,
                           "moved_elsewhere": result.movedElsewhere, "by_target": perTarget,
                           "placements": listed, "truncated": result.moved.count > listLimit, "took_ms": tookMs])
    }

    /// A stored node record as JSON (the state an audit line shows).
    func describe(_ r: NodeRecord) -> [String: Any] {
        ["name": r.name, "pool": r.pool, "address": r.address, "preview_base_url": r.previewBaseURL,
         "api_base_url": r.apiBaseURL, "enabled": r.enabled, "weight": r.weight, "capacity": r.capacity,
         "labels": r.labels, "static": r.isStatic]
    }

    /// A node as JSON, with its live numbers.
    func describe(_ node: RegistryNode) -> [String: Any] {
        let now = Self.nowMs()
        let settings = pools[node.pool] ?? PoolSettings()
        let heartbeat = node.lastHeartbeat
        let traffic = node.traffic
        let tunnels = engine.tunnelCounts().byNode[node.name] ?? 0
        var o: [String: Any] = [
            "name": node.name, "pool": node.pool, "address": node.address, "preview_base_url": node.previewBaseURL,
            "api_base_url": node.apiBaseURL, "enabled": node.enabled, "weight": node.weight, "capacity": node.capacity,
            "labels": node.labels, "static": node.isStatic, "placements": node.placementCount,
            "open_tunnels": tunnels, "requests": traffic.requests, "bytes_in": traffic.bytesIn, "bytes_out": traffic.bytesOut,
            "created_at": node.createdAt, "updated_at": node.updatedAt,
        ]
        o["healthy"] = node.enabled && (node.isStatic || now - heartbeat <= settings.heartbeatThresholdMs)
        o["last_heartbeat_age_ms"] = heartbeat > 0 ? max(0, now - heartbeat) : NSNull()
        return o
    }
}

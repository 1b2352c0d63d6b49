import Foundation
import RouteResolver

/// What nodes call: heartbeats (`POST /internal/nodes/heartbeat`) and one container port
/// (`PUT /internal/placements/{pool}/{key}`), both with the pool's `X-Node-Token`; and the old
/// API server question, `GET /api/fun-ai/workspace/internal/gateway/node?userId=`.
extension AdminAPI {
    static let heartbeatFields: Set<String> = ["name", "pool", "address", "preview_base_url", "api_base_url", "weight",
                                               "capacity", "labels", "workspaces"]

    func internalAPI(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        switch (r.method, s.count, s.first ?? "") {
        case ("POST", 2, "nodes") where s[1] == "heartbeat":
            return try heartbeat(r, registry)
        case ("POST", 2, "runtime-nodes") where s[1] == "heartbeat":
            return try runtimeHeartbeat(r)
        case ("PUT", 3, "placements"):
            return try reportPort(r, registry, pool: s[1], key: s[2])
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    /// 401 without `X-Node-Token`, 403 when it is not the pool's (or the pool has none).
    private func authorizeNode(_ r: AdminRequest, pool: String) throws(BadInput) {
        guard let given = r.header("x-node-token") else { throw BadInput("X-Node-Token required", status: 401) }
        guard let expected = config.nodeTokens[pool], constantTimeEquals(given, expected) else {
            throw BadInput("wrong node token for pool \(pool)", status: 403)
        }
    }

    /// Upserts the node by name (keeping what only operators set: enabled), refreshes its
    /// heartbeat, and records the host ports of the workspaces it reports that are placed on it.
    private func heartbeat(_ r: AdminRequest, _ registry: Registry) throws(BadInput) -> AdminResponse {
        let body = try JSONBody(r.body, allowed: Self.heartbeatFields)
        // Nodes that send heartbeats are never static (that is for operators and config).
        guard let pool = try body.string("pool", required: true), isName(pool) else {
            throw BadInput("pool names are [A-Za-z0-9._-]{1,64}", field: "pool")
        }
        try authorizeNode(r, pool: pool)
        guard let name = try body.string("name", required: true), isName(name) else {
            throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "name")
        }
        // Check every port report before changing anything.
        let workspaces = try body.objects("workspaces", max: 100_000, allowed: ["key", "host_port"]) ?? []
        var ports: [(String, UInt16)] = []
        for (i, w) in workspaces.enumerated() {
            guard let key = try w.string("key", required: true, maxLength: 64),
                  key.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F })
            else { throw BadInput("keys are [A-Za-z0-9_-]{1,64}", field: "workspaces[\(i)].key") }
            let port = try w.int("host_port", range: 1...65535, required: true)!
            ports.append((key, UInt16(port)))
        }
        if let existing = registry.node(named: name), existing.isStatic {
            throw BadInput("node \(name) is declared in configuration", field: "name", status: 409)
        }
        var patch = try nodePatch(body)
        patch.pool = pool
        patch.enabled = nil  // the operator's, never the node's
        patch.isStatic = nil
        let now = Self.nowMs()
        patch.heartbeat = now
        let change: (before: NodeRecord?, after: NodeRecord)
        do { change = try registry.patchNode(name: name, patch, now: now) } catch { throw refusal(error) }
        var recorded = 0, ignored = 0
        for (key, port) in ports {
            if registry.placement(pool: pool, key: key)?.node == name,
               (try? registry.setHostPort(pool: pool, key: key, port: port, now: now)) != nil {
                recorded += 1
            } else {
                ignored += 1
            }
        }
        if change.before == nil || changed(change.before!, change.after) {
            audit.record(who: "node:\(name)", client: r.peer, action: change.before == nil ? "node.register" : "node.update",
                         target: name, before: change.before.map(describe), after: registry.node(named: name).map(describe))
        }
        return .json(200, ["node": name, "ports_recorded": recorded, "ports_ignored": ignored])
    }

    /// Whether a heartbeat changed anything but the heartbeat time (those are audited).
    private func changed(_ a: NodeRecord, _ b: NodeRecord) -> Bool {
        var x = a, y = b
        x.lastHeartbeat = 0; y.lastHeartbeat = 0
        x.updatedAt = 0; y.updatedAt = 0
        return x != y
    }

    private func reportPort(_ r: AdminRequest, _ registry: Registry, pool: String, key: String) throws(BadInput) -> AdminResponse {
        guard isName(pool) else { throw BadInput("pool names are [A-Za-z0-9._-]{1,64}", field: "pool") }
        try authorizeNode(r, pool: pool)
        let body = try JSONBody(r.body, allowed: ["host_port", "node"])
        let port = try body.int("host_port", range: 0...65535, required: true)!
        guard let placement = registry.placement(pool: pool, key: key) else {
            throw BadInput("no placement for \(key) in \(pool)", status: 404)
        }
        if let node = try body.string("node"), node != placement.node {
            throw BadInput("the placement is on \(placement.node)", field: "node", status: 409)
        }
        do { try registry.setHostPort(pool: pool, key: key, port: UInt16(port), now: Self.nowMs()) } catch { throw refusal(error) }
        audit.record(who: "node:\(placement.node)", client: r.peer, action: "placement.port", target: "\(pool)/\(key)",
                     before: ["host_port": Int(placement.hostPort)], after: ["host_port": port])
        return .json(200, ["pool": pool, "key": key, "node": placement.node, "host_port": port])
    }

    /// The answer the entry nginx got from the API server: the user's node (placed now if new)
    /// in `X-WS-Node`.
    func compatNode(_ r: AdminRequest) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        guard let key = r.query["userId"], !key.isEmpty else { throw BadInput("is required", field: "userId") }
        var bytes = Array(key.utf8)
        let resolution = bytes.withUnsafeMutableBytes { registry.resolve(pool: config.compatPool, key: UnsafeRawBufferPointer($0), now: Self.nowMs()) }
        switch resolution {
        case .routed(let node, _, _):
            var response = AdminResponse.json(200, ["node": node.name, "preview_base_url": node.previewBaseURL])
            response.headers.append(("X-WS-Node", node.previewBaseURL))
            return response
        case .invalidKey:
            throw BadInput("keys are [A-Za-z0-9_-]{1,64}", field: "userId")
        case .nodeDown:
            throw BadInput("node_down", status: 503)
        case .noHealthyNode:
            throw BadInput("no_healthy_node", status: 503)
        case .insufficientCapacity:
            throw BadInput("insufficient_capacity", status: 503)
        }
    }
}

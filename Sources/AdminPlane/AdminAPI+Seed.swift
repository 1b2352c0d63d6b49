import Foundation
import IOCore
import RouteResolver

/// The seeds' own interfaces, as deployed (issue 16, docs/cutover.md), mapped onto the registry so
/// node agents keep working unchanged through the cut-over.
extension AdminAPI {
    /// `POST /internal/runtime-nodes/heartbeat` with `X-RT-Node-Token` and
    /// `{"nodeName", "agentBaseUrl", "gatewayBaseUrl"}` (the deploy side's runtime agents): the
    /// node upserted by name in the runtime pool (`gatewayBaseUrl` its web entry and address,
    /// `agentBaseUrl` its API) and its heartbeat refreshed. The token is the runtime pool's
    /// `node_token`.
    func runtimeHeartbeat(_ r: AdminRequest) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        let pool = config.runtimePool
        guard let given = r.header("x-rt-node-token") else { throw BadInput("X-RT-Node-Token required", status: 401) }
        guard let expected = config.nodeTokens[pool], constantTimeEquals(given, expected) else {
            throw BadInput("wrong runtime node token", status: 403)
        }
        let body = try JSONBody(r.body, allowed: ["nodeName", "agentBaseUrl", "gatewayBaseUrl"])
        guard let name = try body.string("nodeName", required: true), isName(name) else {
            throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "nodeName")
        }
        var patch = NodePatch()
        for (field, isGateway) in [("gatewayBaseUrl", true), ("agentBaseUrl", false)] {
            guard let text = try body.string(field) else { continue }
            guard let u = UpstreamURL(text), u.address.port != 0 else {
                throw BadInput("must be an http://host:port URL", field: field)
            }
            if isGateway {
                patch.previewBaseURL = text
                patch.address = u.address.text
            } else {
                patch.apiBaseURL = text
            }
        }
        if let existing = registry.node(named: name) {
            if existing.isStatic { throw BadInput("node \(name) is declared in configuration", field: "nodeName", status: 409) }
            if existing.pool != pool { throw BadInput("node \(name) is in pool \(existing.pool)", field: "nodeName", status: 409) }
        } else if patch.previewBaseURL == nil {
            throw BadInput("is required for a new node", field: "gatewayBaseUrl")
        }
        patch.pool = pool
        let now = Self.nowMs()
        patch.heartbeat = now
        let change: (before: NodeRecord?, after: NodeRecord)
        do { change = try registry.patchNode(name: name, patch, now: now) } catch { throw refusal(error) }
        if change.before == nil {
            audit.record(who: "node:\(name)", client: r.peer, action: "node.register", target: name, before: nil,
                         after: registry.node(named: name).map(describe))
        }
        // The seed answers its own shape; callers read only the status.
        return .json(200, ["nodeName": name, "lastHeartbeatAt": now])
    }

    /// `/admin/runtime-nodes/...` (with `X-Admin-Token`), the deploy side's operator interface as
    /// deployed, over the runtime pool. A node is named by its name, or by the seed's numeric
    /// id kept as the `seed_id` label by `registry import` (`nodeId`, `targetNodeId`,
    /// `sourceNodeId` take either).
    func runtimeNodes(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        let pool = config.runtimePool
        switch (r.method, s.first ?? "") {
        case ("GET", "list") where s.count == 1:
            let nodes = registry.nodes.filter { $0.pool == pool }.sorted { $0.name < $1.name }
            return .json(200, nodes.map(seedNode))
        case ("POST", "upsert") where s.count == 1:
            let body = try JSONBody(r.body, allowed: ["id", "name", "agentBaseUrl", "gatewayBaseUrl", "enabled", "weight"])
            guard let name = try body.string("name", required: true), isName(name) else {
                throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "name")
            }
            var patch = NodePatch()
            patch.pool = pool
            if let text = try body.string("gatewayBaseUrl") {
                guard let u = UpstreamURL(text), u.address.port != 0 else { throw BadInput("must be an http://host:port URL", field: "gatewayBaseUrl") }
                patch.previewBaseURL = text
                patch.address = u.address.text
            }
            if let text = try body.string("agentBaseUrl") {
                guard UpstreamURL(text) != nil else { throw BadInput("must be an http://host:port URL", field: "agentBaseUrl") }
                patch.apiBaseURL = text
            }
            patch.enabled = try body.bool("enabled")
            patch.weight = try body.int("weight", range: 1...10_000)
            let change: (before: NodeRecord?, after: NodeRecord)
            do { change = try registry.patchNode(name: name, patch, now: Self.nowMs()) } catch { throw refusal(error, targetField: "name") }
            audit.record(who: who(r), client: r.peer, action: change.before == nil ? "node.create" : "node.update", target: name,
                         before: change.before.map(describe), after: describe(change.after))
            return .json(200, registry.node(named: name).map(seedNode) ?? [:])
        case ("POST", "set-enabled") where s.count == 1:
            guard let name = r.query["name"], isName(name) else { throw BadInput("is required", field: "name") }
            guard let text = r.query["enabled"], let enabled = ["true": true, "1": true, "false": false, "0": false][text] else {
                throw BadInput("must be true or false", field: "enabled")
            }
            let node = try runtimeNode(registry, name, field: "name")
            var patch = NodePatch()
            patch.enabled = enabled
            let change: (before: NodeRecord?, after: NodeRecord)
            do { change = try registry.patchNode(name: node.name, patch, now: Self.nowMs()) } catch { throw refusal(error, targetField: "name") }
            audit.record(who: who(r), client: r.peer, action: enabled ? "node.enable" : "node.disable", target: node.name,
                         before: change.before.map(describe), after: describe(change.after))
            return .json(200, registry.node(named: node.name).map(seedNode) ?? [:])
        case ("GET", "placements") where s.count == 1:
            let node = try runtimeNode(registry, r.query["nodeId"] ?? "", field: "nodeId")
            let offset = try queryInt(r, "offset", 0, range: 0...100_000_000)
            let limit = try queryInt(r, "limit", 100, range: 1...10_000)
            let (total, items) = registry.placements(pool: pool, node: node.name, offset: offset, limit: limit)
            return .json(200, ["total": total, "offset": offset, "limit": limit,
                               "items": items.map { ["appId": $0.key, "nodeId": seedID(node), "nodeName": node.name, "lastActiveAt": $0.lastActive] }])
        case ("POST", "reassign") where s.count == 1:
            let body = try JSONBody(r.body, allowed: ["appId", "targetNodeId"])
            guard let app = try body.string("appId", required: true) else { throw BadInput("is required", field: "appId") }
            let target = try runtimeNode(registry, try body.scalarText("targetNodeId") ?? "", field: "targetNodeId")
            let moved: MovedPlacement
            do { moved = try registry.reassign(pool: pool, key: app, to: target.name, now: Self.nowMs()) } catch {
                throw refusal(error, targetField: "targetNodeId")
            }
            audit.record(who: who(r), client: r.peer, action: "placement.reassign", target: "\(pool)/\(app)",
                         before: ["node": moved.from], after: ["node": moved.to])
            return .json(200, ["appId": app, "fromNode": moved.from, "toNode": moved.to])
        case ("POST", "drain") where s.count == 1:
            let body = try JSONBody(r.body, allowed: ["sourceNodeId", "targetNodeId", "limit"])
            let source = try runtimeNode(registry, try body.scalarText("sourceNodeId") ?? "", field: "sourceNodeId")
            var target: String?
            if let t = try body.scalarText("targetNodeId") { target = try runtimeNode(registry, t, field: "targetNodeId").name }
            let limit = try body.int("limit", range: 1...10_000_000)
            let result: Registry.DrainResult
            do { result = try registry.drain(node: source.name, to: target, limit: limit, now: Self.nowMs()) } catch {
                throw refusal(error, targetField: "targetNodeId")
            }
            audit.record(who: who(r), client: r.peer, action: "node.drain", target: source.name, before: nil,
                         after: ["moved": result.moved.count, "unmoved": result.unmoved])
            return .json(200, ["sourceNodeId": seedID(source), "moved": result.moved.count, "unmoved": result.unmoved])
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    /// A runtime-pool node by name or seed id; 404 when none, 409 when of another pool.
    private func runtimeNode(_ registry: Registry, _ ref: String, field: String) throws(BadInput) -> RegistryNode {
        guard !ref.isEmpty else { throw BadInput("is required", field: field) }
        let pool = config.runtimePool
        if let n = registry.node(named: ref) {
            guard n.pool == pool else { throw BadInput("node \(ref) is not a runtime node", field: field, status: 409) }
            return n
        }
        if let n = registry.nodes.first(where: { $0.pool == pool && $0.labels["seed_id"] == ref }) { return n }
        throw BadInput("no runtime node \(ref)", field: field, status: 404)
    }

    private func seedID(_ n: RegistryNode) -> Any {
        n.labels["seed_id"].flatMap { Int64($0) } ?? n.name as Any
    }

    /// A node in the seed's field names (camelCase).
    private func seedNode(_ n: RegistryNode) -> [String: Any] {
        let now = Self.nowMs()
        let threshold = (pools[n.pool] ?? PoolSettings()).heartbeatThresholdMs
        return ["id": seedID(n), "name": n.name, "agentBaseUrl": n.apiBaseURL, "gatewayBaseUrl": n.previewBaseURL,
                "enabled": n.enabled, "weight": n.weight, "lastHeartbeatAt": n.lastHeartbeat,
                "healthy": n.enabled && (n.isStatic || now - n.lastHeartbeat <= threshold), "placements": n.placementCount]
    }
}

import Foundation
import RouteResolver

/// `/.cluster/...` (the seed's paths, with `X-Admin-Token`): pods (list, get, create in bulk,
/// delete, the instant migration) and the cluster's nodes.
extension AdminAPI {
    static let podFields: Set<String> = ["pod_id", "base_url", "account_id", "node_id", "migration_status",
                                         "migration_target_node", "migration_progress"]
    /// Most pods one request creates (a 1 MiB body holds a few thousand).
    static let maxPodsPerRequest = 10_000

    func cluster(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        guard let identity = router.cluster else {
            // A gateway that is not a center still lists the edges it routes.
            if r.method == "GET" && s == ["nodes"] { return .json(200, ["nodes": edgeRows(registry), "unregistered_owners": [], "self": NSNull()]) }
            throw BadInput("this gateway is not a center: the configuration has no cluster section", status: 409)
        }
        switch (r.method, s.count, s.first ?? "") {
        case ("GET", 1, "nodes"):
            return clusterNodes(registry, identity)
        case ("GET", 1, "pods"):
            let limit = try queryInt(r, "limit", range: 1...1000) ?? 100
            let after = r.query["after"]
            let page = registry.pods(after: after, limit: limit)
            var body: [String: Any] = ["pods": page.map(describe), "total": registry.podCount]
            body["next"] = page.count == limit ? page.last!.id : NSNull()
            return .json(200, body)
        case ("POST", 1, "pods"):
            return try createPods(r, registry)
        case (_, 2, "pods"), (_, 3, "pods"):
            let id = s[1]
            guard Self.isPodID(id) else { throw BadInput("pod ids are [A-Za-z0-9_-]{1,64}", field: "pod_id") }
            switch (r.method, s.count > 2 ? s[2] : "") {
            case ("GET", ""):
                guard let pod = registry.pod(id: id) else { throw BadInput("no pod \(id)", status: 404) }
                var body = describe(pod)
                body["owner"] = ownerState(registry, identity, pod.nodeID)
                return .json(200, body)
            case ("DELETE", ""):
                let before = registry.pod(id: id).map(describe)
                do { try registry.deletePod(id: id) } catch { throw refusal(error) }
                audit.record(who: who(r), client: r.peer, action: "pod.delete", target: id, before: before, after: nil)
                return .json(200, ["removed": id])
            case ("POST", "migrate"):
                return try migrate(r, registry, identity, id)
            default:
                throw BadInput("no such endpoint", status: 404)
            }
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    private func queryInt(_ r: AdminRequest, _ name: String, range: ClosedRange<Int>) throws(BadInput) -> Int? {
        guard let text = r.query[name] else { return nil }
        guard let n = Int(text), range.contains(n) else {
            throw BadInput("must be a whole number from \(range.lowerBound) to \(range.upperBound)", field: name)
        }
        return n
    }

    /// One pod object, or `{"pods": [...]}`; `?replace=true` overwrites pods that differ.
    private func createPods(_ r: AdminRequest, _ registry: Registry) throws(BadInput) -> AdminResponse {
        let top = try JSONBody(r.body, allowed: Self.podFields.union(["pods"]))
        var items: [JSONBody] = []
        if let list = try top.objects("pods", max: Self.maxPodsPerRequest, allowed: Self.podFields) {
            guard top.object.count == 1 else { throw BadInput("either one pod or {\"pods\": [...]}, not both", field: "pods") }
            items = list
        } else {
            items = [top]
        }
        guard !items.isEmpty else { throw BadInput("no pods given", field: "pods") }
        let now = Self.nowMs()
        var records: [PodRecord] = []
        var seen = Set<String>()
        for (i, item) in items.enumerated() {
            let record = try podRecord(item, now: now)
            guard seen.insert(record.id).inserted else {
                throw BadInput("pod \(record.id) is given twice", field: items.count > 1 ? "pods[\(i)].pod_id" : "pod_id")
            }
            records.append(record)
        }
        let replace = r.query["replace"] == "true"
        let result: (created: Int, replaced: Int, unchanged: Int)
        do { result = try registry.createPods(records, replace: replace, now: now) } catch { throw refusal(error) }
        if result.created + result.replaced > 0 {
            audit.record(who: who(r), client: r.peer, action: "pod.create", target: records.count == 1 ? records[0].id : "\(records.count) pods",
                         before: nil, after: ["created": result.created, "replaced": result.replaced, "unchanged": result.unchanged])
        }
        let body: [String: Any] = ["created": result.created, "replaced": result.replaced, "unchanged": result.unchanged]
        return .json(result.created + result.replaced > 0 ? 201 : 200, body)
    }

    private func podRecord(_ b: JSONBody, now: Int64) throws(BadInput) -> PodRecord {
        let prefix = b.path
        guard let id = try b.string("pod_id", required: true, maxLength: 64), Self.isPodID(id) else {
            throw BadInput("pod ids are [A-Za-z0-9_-]{1,64}", field: prefix + "pod_id")
        }
        guard let node = try b.string("node_id", required: true, maxLength: 64), isName(node) else {
            throw BadInput("node ids are [A-Za-z0-9._-]{1,64}", field: prefix + "node_id")
        }
        let baseURL = try b.string("base_url", maxLength: 2048) ?? ""
        if !baseURL.isEmpty, !(baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://")) || baseURL.contains(where: { $0.isWhitespace }) {
            throw BadInput("must be an http:// or https:// URL", field: prefix + "base_url")
        }
        var status: PodMigrationStatus?
        if let text = try b.string("migration_status", maxLength: 16) {
            guard let s = PodMigrationStatus(rawValue: text) else { throw BadInput("must be syncing, done or null", field: prefix + "migration_status") }
            status = s
        }
        let target = try b.string("migration_target_node", maxLength: 64)
        if let target, !isName(target) { throw BadInput("node ids are [A-Za-z0-9._-]{1,64}", field: prefix + "migration_target_node") }
        return PodRecord(id: id, baseURL: baseURL, accountID: try b.string("account_id", maxLength: 256) ?? "", nodeID: node,
                         migrationStatus: status, migrationTargetNode: target,
                         migrationProgress: try b.int("migration_progress", range: 0...100) ?? 0, createdAt: now, updatedAt: now)
    }

    /// The instant migration: the pod's row names the target from now on; every center routes
    /// its next request there (this one at once, the others through the change feed); the
    /// pod's open WebSockets are closed with 1012 so their clients reconnect to the new owner.
    private func migrate(_ r: AdminRequest, _ registry: Registry, _ identity: ClusterIdentity, _ id: String) throws(BadInput) -> AdminResponse {
        let body = try JSONBody(r.body, allowed: ["target_node", "targetNode", "node_id"])
        var given = try body.string("target_node", maxLength: 64)
        if given == nil { given = try body.string("targetNode", maxLength: 64) }
        if given == nil { given = try body.string("node_id", maxLength: 64) }
        guard let target = given, isName(target) else { throw BadInput("the target center's node id is required", field: "target_node") }
        let change: (before: PodRecord, after: PodRecord)
        do { change = try registry.migratePod(id: id, to: target, centerPool: identity.centerPool, now: Self.nowMs()) } catch {
            throw refusal(error, targetField: "target_node")
        }
        audit.record(who: who(r), client: r.peer, action: "pod.migrate", target: id, before: describe(change.before), after: describe(change.after))
        return .json(200, ["pod": describe(change.after), "from": change.before.nodeID, "to": change.after.nodeID])
    }

    /// The centers (and, once they exist, edges) with their addresses, state and pod counts.
    private func clusterNodes(_ registry: Registry, _ identity: ClusterIdentity) -> AdminResponse {
        let counts = registry.podCounts()
        let now = Self.nowMs()
        let threshold = pools[identity.centerPool]?.heartbeatThresholdMs ?? PoolSettings().heartbeatThresholdMs
        let nodes: [[String: Any]] = registry.nodes.filter { $0.pool == identity.centerPool || $0.labels["type"] == "edge" }.map { n in
            let fresh = n.isStatic || now - n.lastHeartbeat <= threshold
            return ["node_id": n.name, "type": n.pool == identity.centerPool ? "center" : (n.labels["type"] ?? n.pool),
                    "internal_address": n.address, "public_address": n.previewBaseURL,
                    "status": !n.enabled ? "disabled" : (fresh ? "online" : "offline"),
                    "last_heartbeat": n.lastHeartbeat, "pods": counts[n.name] ?? 0, "self": n.name == identity.nodeID]
        }
        // Pods may name centers that never registered (imported before they start).
        let registered = Set(nodes.compactMap { $0["node_id"] as? String })
        let unregistered = counts.filter { !registered.contains($0.key) }.map { ["node_id": $0.key, "pods": $0.value] }
        return .json(200, ["nodes": nodes + edgeRows(registry), "unregistered_owners": unregistered, "self": identity.nodeID])
    }

    /// Edges as `/.cluster/nodes` rows: mode with its reason, and whether a tunnel is attached.
    private func edgeRows(_ registry: Registry) -> [[String: Any]] {
        let now = Self.nowMs()
        return registry.edges().map { e in
            ["node_id": e.id, "type": "edge", "mode": e.mode.rawValue, "mode_reason": e.modeReason, "mode_changed_at": e.modeChangedAt,
             "public_address": e.publicAddress, "hostnames": e.hostnames, "tunnel_seen_at": e.tunnelSeenAt,
             "status": !e.enabled ? "disabled" : (e.tunnelIsFresh(now: now) ? "online" : (e.tunnelCenter.isEmpty ? (e.mode == .direct ? "direct" : "offline") : "stale")),
             "tunnel_center": e.tunnelCenter.isEmpty ? NSNull() : e.tunnelCenter, "self": false]
        }
    }

    private func ownerState(_ registry: Registry, _ identity: ClusterIdentity, _ name: String) -> [String: Any] {
        guard let n = registry.node(named: name) else { return ["node_id": name, "status": "unregistered"] }
        let threshold = pools[n.pool]?.heartbeatThresholdMs ?? PoolSettings().heartbeatThresholdMs
        let fresh = n.isStatic || Self.nowMs() - n.lastHeartbeat <= threshold
        return ["node_id": name, "internal_address": n.address, "self": name == identity.nodeID,
                "status": n.pool != identity.centerPool ? "not a center" : (!n.enabled ? "disabled" : (fresh ? "online" : "offline"))]
    }

    func describe(_ p: PodRecord) -> [String: Any] {
        ["pod_id": p.id, "base_url": p.baseURL, "account_id": p.accountID, "node_id": p.nodeID,
         "migration_status": p.migrationStatus?.rawValue ?? NSNull(), "migration_target_node": p.migrationTargetNode ?? NSNull(),
         "migration_progress": p.migrationProgress, "created_at": p.createdAt, "updated_at": p.updatedAt]
    }

    /// Pod ids follow the placement key rules (the router's `KeyExtractor.isValidKey`).
    static func isPodID(_ s: String) -> Bool {
        var copy = s
        return copy.withUTF8 { KeyExtractor.isValidKey(UnsafeRawBufferPointer($0)) }
    }
}

import Foundation
import RouteResolver
import Synchronization

/// The admin plane's endpoints. Every change goes to the registry, which applies it at once
/// (no reload) and persists it; every change is audited.
///
/// | path | auth |
/// |---|---|
/// | `/healthz`, `/readyz`, `/metrics` | none (allowlist only) |
/// | `/admin/...` | `X-Admin-Token` |
/// | `/.cluster/...` (pods, centers) | `X-Admin-Token` |
/// | `/internal/...` | `X-Node-Token` of the pool |
/// | `/api/signal` | `Authorization: Bearer` with the edge's own token |
/// | `/api/fun-ai/workspace/internal/gateway/node` | none (what the API server answered before) |
final class AdminAPI: Sendable {
    let config: AdminConfig
    /// The engine's router: route explain asks the same instance that routes requests.
    let router: Router
    let registry: Registry?
    /// Pool settings from the configuration (heartbeat thresholds for health answers).
    let pools: [String: PoolSettings]
    let engine: any EngineView
    let token: String
    let audit: AuditLog
    let ready = Atomic<Bool>(false)

    init(config: AdminConfig, router: Router, pools: [String: PoolSettings],
         engine: any EngineView, token: String, audit: AuditLog) {
        self.config = config
        self.router = router
        registry = router.registry
        self.pools = pools
        self.engine = engine
        self.token = token
        self.audit = audit
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func handle(_ r: AdminRequest) -> AdminResponse {
        do {
            return try route(r)
        } catch {
            return error.response
        }
    }

    private func route(_ r: AdminRequest) throws(BadInput) -> AdminResponse {
        let s = r.segments
        switch (r.method, s.first ?? "") {
        case ("GET", "healthz") where s.count == 1:
            return .json(200, ["status": "ok"])
        case ("GET", "readyz") where s.count == 1:
            return readiness()
        case ("GET", "metrics") where s.count == 1:
            return AdminResponse(status: 200, body: Array(metrics().utf8), contentType: "text/plain; version=0.0.4")
        case (_, "admin"):
            try authorizeAdmin(r)
            return try admin(r, Array(s.dropFirst()))
        case (_, "internal"):
            return try internalAPI(r, Array(s.dropFirst()))
        case (_, ".cluster"):
            try authorizeAdmin(r)
            return try cluster(r, Array(s.dropFirst()))
        case ("POST", "api") where s == ["api", "signal"]:
            return try signal(r)
        case ("GET", "api") where config.compatNodeEndpoint
            && s == ["api", "fun-ai", "workspace", "internal", "gateway", "node"]:
            return try compatNode(r)
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    /// 200 from start-up until the drain starts. The registry's state is in the body but does
    /// not make the answer 503: every instance shares the one database, and a load balancer
    /// that took them all out for its outage would stop the users that memory still routes.
    private func readiness() -> AdminResponse {
        var body: [String: Any] = ["status": ready.load(ordering: .acquiring) ? "ready" : "not ready"]
        if let h = registry?.storeHealth {
            var r: [String: Any] = ["engine": h.engine, "connected": h.connected, "following": h.following,
                                    "pending_changes": h.pendingChanges]
            if let lag = h.lastChangeLagMs { r["last_change_lag_ms"] = lag }
            if let age = h.feedAgeMs { r["feed_age_ms"] = age }
            body["registry"] = r
        }
        return .json(ready.load(ordering: .acquiring) ? 200 : 503, body)
    }

    private func authorizeAdmin(_ r: AdminRequest) throws(BadInput) {
        guard let given = r.header("x-admin-token") else { throw BadInput("X-Admin-Token required", status: 401) }
        guard constantTimeEquals(given, token) else { throw BadInput("wrong admin token", status: 403) }
    }

    private func admin(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        switch (r.method, s.count, s.first ?? "") {
        case ("GET", 1, "tunnels"):
            let t = engine.tunnelCounts()
            return .json(200, ["total": t.total, "by_route": t.byRoute, "by_node": t.byNode])
        case (_, _, "nodes"):
            return try nodes(r, Array(s.dropFirst()))
        case (_, _, "placements"):
            return try placements(r, Array(s.dropFirst()))
        case (_, _, "edges"):
            return try edges(r, Array(s.dropFirst()))
        case (_, _, "runtime-nodes"):
            return try runtimeNodes(r, Array(s.dropFirst()))
        case ("GET", 2, "routes") where s[1] == "explain":
            return try explain(r)
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    func requireRegistry() throws(BadInput) -> Registry {
        guard let registry else {
            throw BadInput("no registry: the configuration has no keyed routes or nodes", status: 409)
        }
        return registry
    }

    /// A registry refusal as an HTTP answer.
    func refusal(_ e: RegistryError, targetField: String = "node") -> BadInput {
        switch e {
        case .poolChange(let node, let pool):
            return BadInput("node \(node) is in pool \(pool): a node cannot change pools (delete it first)", field: "pool", status: 409)
        case .missingField(let field): return BadInput("is required to create a node", field: field)
        case .invalidNode(let why): return BadInput(why)
        case .unknownNode(let name): return BadInput("no node named \(name)", status: 404)
        case .unknownPlacement(let pool, let key): return BadInput("no placement for \(key) in \(pool)", status: 404)
        case .alreadyPlaced(let pool, let key, let node):
            return BadInput("\(key) in \(pool) is placed on \(node): reassign moves it", field: "node", status: 409)
        case .invalidKey: return BadInput("keys are [A-Za-z0-9_-]{1,64}", field: "key")
        case .wrongPool(let node, let pool): return BadInput("node \(node) is not in pool \(pool)", field: targetField, status: 409)
        case .unusableTarget(let node): return BadInput("node \(node) is disabled or has no fresh heartbeat", field: targetField, status: 409)
        case .sameNode(let node): return BadInput("node \(node) already holds it", field: targetField, status: 409)
        case .noCapacity(let node): return BadInput("no room on \(node)", status: 409)
        case .storeFailed(let why): return BadInput("registry unavailable, nothing changed: \(why)", status: 503)
        case .unknownPod(let id): return BadInput("no pod \(id)", status: 404)
        case .podExists(let id): return BadInput("pod \(id) exists with other fields (add ?replace=true to overwrite)", field: "pod_id", status: 409)
        case .invalidPod(let why): return BadInput(why)
        case .invalidEdge(let why): return BadInput(why)
        case .unknownEdge(let id): return BadInput("no edge \(id)", status: 404)
        case .hostnameTaken(let host, let edge): return BadInput("hostname \(host) is served by edge \(edge)", field: "hostnames", status: 409)
        }
    }

    func who(_ r: AdminRequest) -> String { "admin" }
}

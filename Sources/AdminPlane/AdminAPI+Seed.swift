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
}

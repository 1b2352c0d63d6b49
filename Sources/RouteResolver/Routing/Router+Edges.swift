/// Plain HTTP for edge hosts (an `edges` route): the host names the edge; its mode decides.
extension Router {
    /// - unknown host, or a disabled edge: 404 `unknown edge`;
    /// - direct mode with a public address: 307 there, path and query kept (the node serves it
    ///   itself; DNS that still points here is stale or the client is old);
    /// - otherwise (proxy mode, or direct without an address): through the node's tunnel. Whether
    ///   one is attached is the engine's to find out (503 `edge tunnel not ready` if not).
    @usableFromInline func decideEdge(_ route: Int, host: UnsafeRawBufferPointer) -> RouteDecision {
        guard let registry, host.count > 0, host.count <= 253 else {
            return .reject(Rejection(status: 404, code: "unknown edge", route: route))
        }
        var name = String(decoding: host, as: UTF8.self).lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard let edge = registry.edge(forHost: name), edge.record.enabled else {
            return .reject(Rejection(status: 404, code: "unknown edge", route: route))
        }
        if edge.mode == .direct && !edge.redirectBase.isEmpty {
            return .redirect(Redirect(status: 307, port: 0, base: edge.redirectBase))
        }
        return .forward(Forward(route: route, destination: .edgeTunnel(edge), keyStart: 0, keyCount: 0, placed: false))
    }
}

import IOCore
import RouteResolver

/// Acting on a forward decision: the upstream address of this exchange and, for a sticky route,
/// the key, its node and what the response carries for it (`X-WS-Upstream`, and the key cookie
/// when the route sets one). Finding the key and its node is RouteResolver's (`Router.decide`).
extension Session {
    enum ForwardStep {
        /// `addressIndex` is chosen.
        case ready
        /// The container's port must be asked from this node's API first.
        case lookup(RegistryNode)
        /// The request was answered instead (a node address the gateway cannot use: 502).
        case answered
        /// A proxy-mode edge's host: the connection goes to its tunnel as it is.
        case edge(EdgeRoute)
    }

    @inline(__always)
    func take(_ f: Forward, _ base: UnsafePointer<UInt8>) -> ForwardStep {
        switch f.destination {
        case .routeUpstreams:
            leg.addressIndex = worker.upstreams.pick(route: f.route)
            return .ready
        case .node(let node):
            adoptKey(f, node: node, base)
            guard let index = worker.upstreams.index(for: node) else {
                log.error("bad_node_address", "node \(node.name): preview_base_url \(node.previewBaseURL)")
                respondError(502, "node address unusable", reusable: true)
                return .answered
            }
            leg.addressIndex = index
            return .ready
        case .nodeAPI(let node):
            adoptKey(f, node: node, base)
            guard let index = worker.upstreams.apiIndex(for: node) else {
                log.error("bad_node_address", "node \(node.name): api_base_url \(node.apiBaseURL)")
                respondError(502, "node api address unusable", reusable: true)
                return .answered
            }
            leg.addressIndex = index
            if router.keyedTargets[f.route]?.signingSecret.isEmpty == false { signRoute = f.route }
            return .ready
        case .container(let node, let hostPort):
            adoptKey(f, node: node, base)
            guard let index = worker.upstreams.containerIndex(node: node, port: hostPort) else {
                log.error("bad_node_address", "node \(node.name): address \(node.address)")
                respondError(502, "node address unusable", reusable: true)
                return .answered
            }
            leg.addressIndex = index
            sticky.containerPort = hostPort
            return .ready
        case .portLookup(let node):
            adoptKey(f, node: node, base)
            return .lookup(node)
        case .podLocal(let owner):
            leg.addressIndex = worker.upstreams.pick(route: f.route)
            adoptPod(f, owner: owner, base)
            sticky.pod = .local(trusted: f.trustedHops)
            return .ready
        case .podCenter(let center):
            guard let index = worker.upstreams.centerIndex(for: center) else {
                log.error("bad_node_address", "center \(center.name): address \(center.address)")
                respondError(502, "center address unusable", reusable: true)
                return .answered
            }
            leg.addressIndex = index
            adoptPod(f, owner: center, base)
            sticky.pod = .center(trusted: f.trustedHops)
            return .ready
        case .edgeTunnel(let edge):
            return .edge(edge)
        }
    }

    /// A pod's id and owner, so a migration can find the pod's tunnels (closed with 1012) and
    /// the owner's traffic is counted.
    private func adoptPod(_ f: Forward, owner: RegistryNode?, _ base: UnsafePointer<UInt8>) {
        guard f.keyCount > 0 else { return }
        sticky.adopt(key: base + f.keyStart, count: f.keyCount, pool: Registry.podTunnelPool, node: owner)
    }

    /// Copies the key (the head's bytes may be reused while a port lookup runs), records its pool
    /// and node, and writes the response's sticky header lines.
    private func adoptKey(_ f: Forward, node: RegistryNode, _ base: UnsafePointer<UInt8>) {
        let target = router.keyedTargets[f.route]!
        sticky.adopt(key: base + f.keyStart, count: f.keyCount, pool: target.pool, node: node)
        writeStickyHeaders(node: node, key: UnsafeRawBufferPointer(start: base + f.keyStart, count: f.keyCount),
                           cookie: target.setCookie)
    }

    /// `X-WS-Upstream: <node>` and, when the route sets it, the key cookie (RFC 6265 §4.1;
    /// `Secure` comes with TLS listeners).
    private func writeStickyHeaders(node: RegistryNode, key: UnsafeRawBufferPointer, cookie: [UInt8]?) {
        var b = IOBuffer(base: responseExtra, capacity: Session.responseExtraCapacity)
        b.append("X-WS-Upstream: ")
        var name = node.name
        name.withUTF8 { b.append($0.baseAddress!, min($0.count, 64)) }
        b.append("\r\n")
        if let cookie {
            b.append("Set-Cookie: ")
            b.append(cookie)
            b.append(byte: 0x3D)
            b.append(key.baseAddress!, key.count)
            b.append("; Path=/; HttpOnly; SameSite=Lax")
            // RFC 6265 §4.1.2.5: a cookie set over HTTPS is sent back over HTTPS only.
            if secure { b.append("; Secure") }
            b.append("\r\n")
        }
        responseExtraLength = b.count
    }
}

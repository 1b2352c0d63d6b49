import CLinux
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver

/// `placement_port` targets: a placed key whose container port is not known yet is looked up
/// from the node's API (`PortLookup`, Upstream/PortLookup.swift) on this event loop, then cached
/// in the registry. A port that refuses connections is forgotten, so the next request asks again.
extension Session {
    /// Starts the lookup for the exchange's key. False when it could not start (the request has
    /// been answered).
    func startPortLookup(node: RegistryNode, settings: EngineConfig.PortLookup) -> Bool {
        guard let url = UpstreamURL(node.apiBaseURL) else {
            log.error("port_lookup", "node \(node.name) has no usable api_base_url")
            worker.stats.upstreamError(.portLookup)
            respondError(502, "port lookup failed", reusable: true)
            return false
        }
        let index = worker.upstreams.index(for: url.address)
        let u = worker.makeUpstream()
        do {
            try u.connect(to: index)
        } catch {
            worker.recycleUnused(u)
            log.error("port_lookup", "node \(node.name): \(error)")
            worker.stats.upstreamError(.portLookup)
            respondError(502, "port lookup failed", reusable: true)
            return false
        }
        u.session = self
        leg.connectStartMs = worker.now
        var b = buffers.take()
        PortLookup.writeRequest(into: &b, settings, key: sticky.key, host: url.address.text)
        portLookup.start(u, request: b)
        return true
    }

    /// Drives the lookup; on an answer, continues the exchange with the container.
    func stepPortLookup() -> Bool {
        switch portLookup.step(buffers: buffers, scanner: &respScanner, headers: headers) {
        case .waiting(let progress):
            return progress
        case .failed(let why):
            failLookup(why, status: 502, "port lookup failed")
            return true
        case .answered(let port):
            dropLookup()
            try? worker.registry?.setHostPort(pool: sticky.pool, key: sticky.keyString, port: port, now: worker.wallMs)
            continueToContainer(port: port)
            return true
        }
    }

    /// Connects to the user's container: the node's host with `port`.
    func continueToContainer(port: UInt16) {
        guard let node = sticky.node, let index = worker.upstreams.containerIndex(node: node, port: port) else {
            respondError(502, "node address unusable", reusable: true)
            return
        }
        leg.addressIndex = index
        sticky.containerPort = port
        acquireUpstream(fresh: false)
    }

    /// Logs why, closes the lookup and answers the request.
    func failLookup(_ why: String, status: Int, _ code: StaticString) {
        log.error("port_lookup", "node \(sticky.node?.name ?? "-") key \(sticky.keyString): \(why)")
        dropLookup()
        worker.stats.upstreamError(.portLookup)
        respondError(status, code, reusable: true)
    }

    func dropLookup() {
        portLookup.drop(buffers: buffers)
    }

    /// A refused connect to a cached container port: forget the port so the next request asks
    /// the node again (the container may have moved to another port).
    func forgetContainerPortIfRefused(_ err: Int32) {
        guard sticky.containerPort != 0, err == ECONNREFUSED else { return }
        try? worker.registry?.setHostPort(pool: sticky.pool, key: sticky.keyString, port: 0, now: worker.wallMs)
        sticky.containerPort = 0
    }
}

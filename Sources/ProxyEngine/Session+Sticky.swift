import HTTP1Codec
import IOCore
import RouteResolver

/// Sticky routes: find the request's key, ask the registry for its node, and prepare what the
/// response carries for it (`X-WS-Upstream`, and the key cookie when the route sets one).
extension Session {
    /// Chooses `addressIndex` for a keyed route. False when the request was answered instead
    /// (400 for a missing or malformed key, 503 when no node can take it, 502 for a node whose
    /// address the gateway cannot use).
    func resolveKeyed(_ target: KeyedTarget, _ base: UnsafePointer<UInt8>) -> Bool {
        let lookup = findKey(target.source, base)
        guard case .found(let start, let count) = lookup else {
            respondError(400, lookup == .missing ? "no routing key in request" : "malformed routing key", reusable: true)
            return false
        }
        guard let registry = worker.registry else {
            respondError(503, "no_healthy_node", reusable: true)
            return false
        }
        let key = UnsafeRawBufferPointer(start: base + start, count: count)
        switch registry.resolve(pool: target.pool, key: key, now: worker.wallMs) {
        case .routed(let node, let hostPort, _):
            stickyKey.update(from: key.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count)
            stickyKeyLength = count
            stickyPool = target.pool
            stickyNode = node
            writeStickyHeaders(node: node, key: key, cookie: target.setCookie)
            if target.kind == .placementPort {
                // Known port: straight to the container; unknown: beginExchange starts a lookup.
                guard hostPort != 0 else { return true }
                guard let index = worker.containerPoolIndex(node: node, port: hostPort) else {
                    log.error("bad_node_address", "node \(node.name): address \(node.address)")
                    respondError(502, "node address unusable", reusable: true)
                    return false
                }
                addressIndex = index
                containerPort = hostPort
                upstreamChosen = true
                return true
            }
            guard let index = worker.poolIndex(for: node) else {
                log.error("bad_node_address", "node \(node.name): preview_base_url \(node.previewBaseURL)")
                respondError(502, "node address unusable", reusable: true)
                return false
            }
            addressIndex = index
            upstreamChosen = true
            return true
        case .nodeDown(_, let retryAfter):
            retryAfterSeconds = retryAfter
            respondError(503, "node_down", reusable: true)
        case .noHealthyNode:
            respondError(503, "no_healthy_node", reusable: true)
        case .insufficientCapacity:
            respondError(503, "insufficient_capacity", reusable: true)
        case .invalidKey:
            respondError(400, "malformed routing key", reusable: true)
        }
        return false
    }

    /// Finds the key in the parsed request; offsets returned are absolute in `base`.
    private func findKey(_ source: KeySource, _ base: UnsafePointer<UInt8>) -> KeyLookup {
        switch source {
        case .pathSegment(let prefix):
            let target = UnsafeRawBufferPointer(start: base + req.pathStart, count: req.pathLength)
            return offset(KeyExtractor.fromPath(target, prefix: prefix), by: req.pathStart)
        case .query(let name):
            let target = UnsafeRawBufferPointer(start: base + req.pathStart, count: req.pathLength)
            return offset(KeyExtractor.fromQuery(target, name: name), by: req.pathStart)
        case .cookie(let name):
            guard headers.has(.cookie) else { return .missing }
            // Several Cookie fields (HTTP/2 splits them; some clients repeat): the first that
            // carries the name decides.
            for i in 0..<headers.count where headers[i].kind == .cookie {
                let f = headers[i]
                let value = UnsafeRawBufferPointer(start: base + Int(f.valueStart), count: Int(f.valueLength))
                let r = KeyExtractor.fromCookie(value, name: name)
                if r != .missing { return offset(r, by: Int(f.valueStart)) }
            }
            return .missing
        case .header(let name):
            for i in 0..<headers.count {
                let f = headers[i]
                guard Int(f.nameLength) == name.count,
                      name.withUnsafeBufferPointer({ equalsIgnoringCase(base + Int(f.nameStart), $0.baseAddress!, name.count) })
                else { continue }
                let value = UnsafeRawBufferPointer(start: base + Int(f.valueStart), count: Int(f.valueLength))
                return offset(KeyExtractor.fromHeaderValue(value), by: Int(f.valueStart))
            }
            return .missing
        }
    }

    private func offset(_ r: KeyLookup, by delta: Int) -> KeyLookup {
        if case .found(let s, let n) = r { return .found(start: s + delta, count: n) }
        return r
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
            b.append("; Path=/; HttpOnly; SameSite=Lax\r\n")
        }
        responseExtraLength = b.count
    }
}

import EdgeTunnel
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver
import TLSTerminator

/// Edge nodes on a session (docs/edge-tunnel.md): the ClientHello peek of every TLS connection
/// (SNI of an edge → its tunnel, unread; anything else → OpenSSL, which gets the same bytes), an
/// agent's attach on a tunnel listener, and the plain-HTTP request for a proxy-mode host.
extension Session {
    // MARK: the ClientHello peek

    /// Reads until the ClientHello is complete (or refused), then decides: passthrough or local
    /// termination. The header timeout covers a client that sends nothing.
    func stepPeek() -> Bool {
        guard io.readable else { return false }
        if inBuf == nil { inBuf = buffers.take() }
        if inBuf!.writableCount == 0 && !buffers.makeRoom(&inBuf!) {
            refuseHello(.tooLarge)
            return false
        }
        let before = inBuf!.end
        let want = inBuf!.writableCount
        let r: IOResult
        do { r = try Sys.read(fd, inBuf!.writePointer, want) } catch { close(); return false }
        switch r {
        case .bytes(let n):
            inBuf!.end += n
            if n < want && !io.hangup { io.readable = false }
            let step = helloParser.feed(UnsafeRawBufferPointer(start: inBuf!.base + before, count: n))
            switch step {
            case .needMore: return true
            case .hello(let info): return decideHello(info)
            case .notTLS: refuseHello(.notTLS)
            case .malformed: refuseHello(.malformed)
            case .tooLarge: refuseHello(.tooLarge)
            }
            return false
        case .wouldBlock:
            io.readable = false
            return false
        case .eof:
            close()
            return false
        }
    }

    /// A connection on a center's cluster listener that starts with a TLS record: another center
    /// relays an edge's connection here (docs/edge-tunnel.md, "Several centers"). Peeked like
    /// any ClientHello; only an edge with a tunnel here is served, nothing is terminated.
    func beginRelayedPeek() -> Bool {
        guard let b = inBuf else { return false }
        helloParser = ClientHelloParser()
        phase = .peek
        switch helloParser.feed(UnsafeRawBufferPointer(start: b.readPointer, count: b.count)) {
        case .needMore: return true
        case .hello(let info): return decideHello(info)
        case .notTLS: refuseHello(.notTLS)
        case .malformed: refuseHello(.malformed)
        case .tooLarge: refuseHello(.tooLarge)
        }
        return false
    }

    /// This listener is a center's cluster listener (relayed connections arrive here).
    var onClusterListener: Bool {
        guard let c = router.cluster, listenerIndex >= 0, listenerIndex < c.clusterListeners.count else { return false }
        return c.clusterListeners[listenerIndex]
    }

    /// No tunnel of `edge` in this process, but the registry says another center holds one:
    /// the client's bytes (what it sent so far first, in `inBuf`) go unread to that center's
    /// cluster listener, which carries them into its tunnel; the session becomes a byte tunnel.
    /// One hop only: a connection that arrived on a cluster listener is never relayed on.
    func relayToTunnelCenter(_ edge: EdgeRoute) -> Bool {
        guard stream == nil, !onClusterListener, let registry = worker.registry else { return false }
        let center = edge.record.tunnelCenter
        guard edge.record.tunnelIsFresh(now: worker.wallMs), center != worker.edgeDirectory.center, let node = registry.node(named: center),
              let index = worker.upstreams.centerIndex(for: node) else { return false }
        let u = worker.makeUpstream()
        do { try u.connect(to: index) } catch {
            worker.recycleUnused(u)
            log.error("edge_relay", "edge \(edge.id) to \(center): \(error.description)")
            return false
        }
        leg.addressIndex = index
        leg.connectStartMs = worker.now
        u.session = self
        upstream = u
        edgeRelay = true
        phase = .exchange
        worker.edgeDirectory.relayed.add(1, ordering: .relaxed)
        return true
    }

    /// The relay's connection to the holding center is up: bytes move both ways from here.
    func startEdgeRelay(_ u: UpstreamConnection) {
        record.status = 0
        enterTunnel(u)
    }

    /// The holding center could not be reached: the client's connection closes at once.
    func failEdgeRelay(_ why: String) {
        log.error("edge_relay", why)
        worker.edgeDirectory.noTunnel.add(1, ordering: .relaxed)
        dropUpstream()
        close()
    }

    private func refuseHello(_ why: EdgeTunnelDirectory.HelloRefusal) {
        worker.edgeDirectory.refused(why)
        close()
    }

    /// The hello is complete. An edge's name goes to its tunnel; everything else is terminated
    /// here, OpenSSL reading the peeked bytes first.
    private func decideHello(_ info: ClientHelloInfo) -> Bool {
        if let name = info.serverName, let registry = worker.registry, registry.edgeCount > 0,
           let edge = registry.edge(forHost: name), edge.record.enabled {
            let first = inBuf
            inBuf = nil
            if worker.carryToEdge(self, edge: edge, kind: .tls, authority: name, first: first) { return false }
            inBuf = first
            if relayToTunnelCenter(edge) { return true }
            // No tunnel of this edge here: refuse at once (RFC 6066 §3: unrecognized_name), so no
            // client waits for a timeout.
            worker.edgeDirectory.noTunnel.add(1, ordering: .relaxed)
            var alert: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (21, 3, 3, 0, 2, 2, 112)
            _ = withUnsafeBytes(of: &alert) { try? Sys.write(fd, $0.baseAddress!, 7) }
            close()
            return false
        }
        let b = inBuf!
        guard let t = worker.tls.contexts[listenerIndex]?.makeConnection(fd: fd, received: UnsafeRawBufferPointer(start: b.readPointer, count: b.count)) else {
            close()
            return false
        }
        buffers.give(b)
        inBuf = nil
        transport = .tls(fd, t)
        phase = .handshake
        return true
    }

    // MARK: attach

    /// `/.edge/attach` on a tunnel listener: checks the agent's credentials and claims and
    /// answers 101 (the connection becomes the edge's tunnel) or a JSON error.
    func answerAttach(_ base: UnsafePointer<UInt8>) {
        let dir = worker.edgeDirectory
        guard stream == nil, req.method == .get, req.upgrade, headerEquals(base, "upgrade", "switchyard-tunnel/1") else {
            dir.attachRefused.add(1, ordering: .relaxed)
            respondError(400, "edge attach needs Upgrade: switchyard-tunnel/1")
            return
        }
        guard let registry = worker.registry else {
            respondError(503, "no registry for edges")
            return
        }
        guard let auth = headerValue(base, "authorization"), auth.hasPrefix("Bearer "), auth.count > 7 else {
            dir.attachRefused.add(1, ordering: .relaxed)
            respondError(401, "edge token required")
            return
        }
        guard let node = headerValue(base, "x-switchyard-edge-node"), !node.isEmpty else {
            dir.attachRefused.add(1, ordering: .relaxed)
            respondError(400, "X-Switchyard-Edge-Node required")
            return
        }
        let claims = (headerValue(base, "x-switchyard-edge-hostnames") ?? "").split(separator: ",")
            .map { $0.trimmingSpaces.lowercased() }.filter { !$0.isEmpty }
        let index = Int(headerValue(base, "x-switchyard-edge-tunnel") ?? "0") ?? 0
        let token = auth.dropFirst(7)
        let who = "edge \(node) from \(String(decoding: UnsafeBufferPointer(start: record.clientIP, count: record.clientIPLength), as: UTF8.self))"
        switch registry.authenticateEdge(id: node, tokenHash: Digest.sha256Hex(token.utf8), claims: claims) {
        case .unknownEdge:
            dir.attachRefused.add(1, ordering: .relaxed)
            log.error("edge_attach_refused", "\(who): unknown edge")
            respondError(404, "unknown edge")
        case .forbidden(let why):
            dir.attachRefused.add(1, ordering: .relaxed)
            log.error("edge_attach_refused", "\(who): \(why)")
            respondError(403, "edge attach forbidden")
        case .accepted(let edge):
            record.status = 101
            recordExchange()
            let head = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: switchyard-tunnel/1\r\n\r\n"
            var written = 0
            var ok = true
            head.utf8.withContiguousStorageIfAvailable { p in
                while written < p.count {
                    guard case .bytes(let n)? = try? clientWrite(p.baseAddress! + written, p.count - written) else { ok = false; return }
                    written += n
                }
            }
            guard ok else { close(); return }
            worker.adoptEdgeTunnel(self, edge: edge, index: max(0, min(index, 64)))
        }
    }

    /// The request's target is `/.edge/attach` (a query allowed).
    func isEdgeAttachPath(_ base: UnsafePointer<UInt8>) -> Bool {
        let path: StaticString = "/.edge/attach"
        let n = path.utf8CodeUnitCount
        guard req.pathLength >= n, memcmp(base + req.pathStart, path.utf8Start, n) == 0 else { return false }
        return req.pathLength == n || base[req.pathStart + n] == UInt8(ascii: "?")
    }

    /// The request's host without port, lowercased (the CONNECT's `:authority`).
    func hostString(_ base: UnsafePointer<UInt8>) -> String {
        guard req.hostStart >= 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: base + req.hostStart, count: req.hostNameLength), as: UTF8.self).lowercased()
    }

    /// The value of the last field named `name` (lowercase), trimmed; nil when absent.
    func headerValue(_ base: UnsafePointer<UInt8>, _ name: StaticString) -> String? {
        var found: String?
        for i in 0..<headers.count {
            let f = headers[i]
            guard Int(f.nameLength) == name.utf8CodeUnitCount,
                  equalsIgnoringCase(base + Int(f.nameStart), name.utf8Start, name.utf8CodeUnitCount) else { continue }
            found = String(decoding: UnsafeBufferPointer(start: base + Int(f.valueStart), count: Int(f.valueLength)), as: UTF8.self)
        }
        return found
    }

    private func headerEquals(_ base: UnsafePointer<UInt8>, _ name: StaticString, _ value: String) -> Bool {
        headerValue(base, name)?.lowercased() == value
    }

    // MARK: plain HTTP for a proxy-mode host

    /// Hands the client connection, from this request's head on, to the edge's tunnel (kind
    /// `switchyard-http`): the agent connects it to the node's HTTP entrypoint; or, when another
    /// center holds the tunnel, relays it there. False when neither (the caller answers 503).
    func carryRequestToEdge(_ edge: EdgeRoute, headStart: Int, headEnd: Int, host: String) -> Bool {
        guard stream == nil, var b = inBuf else { return false }
        let saved = (b.start, b.end)
        // The head's bytes are still where they were (consuming only moved offsets, and rewound
        // them to 0 when it emptied the buffer): they go first, unchanged, then what followed.
        if b.isEmpty { b.end = headEnd }
        b.start = headStart
        inBuf = nil
        if worker.carryToEdge(self, edge: edge, kind: .http, authority: host, first: b) { return true }
        inBuf = b
        if relayToTunnelCenter(edge) { return true }
        (b.start, b.end) = saved
        inBuf = b
        return false
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

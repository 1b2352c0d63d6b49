import CLinux
import Glibc
import IOCore
import RouteResolver

/// Edge tunnels on a worker: agents' connections taken over after their 101, client connections
/// carried through them (here, or posted to the worker that holds the edge's tunnel), and the
/// end-of-turn flush of the tunnels' output.
extension Worker {
    /// An agent's attach was accepted and its 101 written: its connection (same socket, same
    /// slot) now belongs to an `EdgeTunnelConnection`, with this worker as the HTTP/2 client.
    func adoptEdgeTunnel(_ s: Session, edge: EdgeRoute, index: Int) {
        let c = edges.tunnelCache.popLast() ?? EdgeTunnelConnection(worker: self)
        var io = s.io
        io.readable = true  // OpenSSL may hold bytes that came behind the attach request
        let (slot, generation) = (s.slot, s.generation)
        let peer = String(decoding: UnsafeBufferPointer(start: s.record.clientIP, count: s.record.clientIPLength), as: UTF8.self)
        let leftover = s.inBuf
        s.inBuf = nil
        let (fd, transport) = s.handOverSocket()
        c.slot = slot
        c.generation = generation
        replaceOwner(slot: slot, with: .edgeTunnel(c))
        c.open(fd: fd, transport: transport, io: io, edge: edge, tunnelIndex: index, peer: peer)
        edges.local[edge.id, default: []].append(c)
        edgeDirectory.attached(edge: edge.id, worker: id, now: wallMs)
        log.info("edge_attach", "edge \(edge.id) tunnel \(index) from \(peer) worker \(id)")
        if let b = leftover {
            // An agent does not speak before the cluster's preface; bytes here break the protocol.
            if b.count > 0 { c.close(reason: "agent sent bytes before the preface") }
            buffers.give(b)
        }
        s.resetExchange()
        cacheSession(s)
        c.service()
    }

    /// A tunnel stops carrying new connections (closed, or going away): off the lists.
    func edgeTunnelDetached(_ c: EdgeTunnelConnection, reason: String) {
        guard let edge = c.edge, var list = edges.local[edge.id], let i = list.firstIndex(where: { $0 === c }) else { return }
        list.remove(at: i)
        edges.local[edge.id] = list.isEmpty ? nil : list
        edgeDirectory.detached(edge: edge.id, worker: id, now: wallMs)
        let seconds = (now - c.attachedAtMs) / 1000
        log.info("edge_detach", "edge \(edge.id) tunnel \(c.tunnelIndex) from \(c.peer): \(reason) after \(seconds) s, \(c.streamsOpened) streams")
    }

    func edgeTunnelClosed(_ c: EdgeTunnelConnection) {
        unregister(slot: c.slot)
        connectionClosed()
        if edges.tunnelCache.count < 64 { edges.tunnelCache.append(c) }
    }

    func edgeLinkClosed(_ l: EdgeLink) {
        unregister(slot: l.slot)
        connectionClosed()
        if edges.linkCache.count < 1024 { edges.linkCache.append(l) }
    }

    /// Carries session `s`'s client connection to `edge` through a tunnel: one of this worker's,
    /// or another worker's (the socket is posted there). `first` is what the client sent so far.
    /// False when no tunnel of the edge is attached to this process: the caller answers.
    func carryToEdge(_ s: Session, edge: EdgeRoute, kind: EdgeLink.Kind, authority: String, first: IOBuffer?) -> Bool {
        let client = String(decoding: UnsafeBufferPointer(start: s.record.clientIP, count: s.record.clientIPLength), as: UTF8.self)
        if let t = edges.tunnel(for: edge.id) {
            let l = edges.linkCache.popLast() ?? EdgeLink(worker: self)
            let (slot, generation) = (s.slot, s.generation)
            let io = s.io
            s.inBuf = nil
            let (fd, transport) = s.handOverSocket()
            l.slot = slot
            l.generation = generation
            replaceOwner(slot: slot, with: .edgeLink(l))
            retire(s)
            edgeDirectory.passthrough.add(1, ordering: .relaxed)
            if l.open(fd: fd, transport: transport, io: io, kind: kind, authority: authority, client: client, first: first, through: t) {
                l.pump()
            }
            return true
        }
        // Another worker's tunnel: only a plain socket can move (a TLS session is this loop's).
        guard s.transport.isPlainSocket, let other = edgeDirectory.worker(holding: edge.id, except: id) else { return false }
        let bytes = first.map { Array(UnsafeBufferPointer(start: $0.readPointer, count: $0.count)) } ?? []
        if let b = first { buffers.give(b) }
        s.inBuf = nil
        _ = cl_epoll_del(epfd, s.fd)
        let (fd, _) = s.handOverSocket()
        unregister(slot: s.slot)
        connectionClosed()
        retire(s)
        edgeDirectory.passthrough.add(1, ordering: .relaxed)
        if !edgeDirectory.handOff(EdgeHandoff(fd: fd, first: bytes, edgeID: edge.id, kind: kind, authority: authority, client: client), to: other) {
            Sys.close(fd)
        }
        return true
    }

    /// A session whose socket went to an edge link: back to the cache, and closed, so that the
    /// loop that called us (it may be in the middle of `drive`) stops stepping it and arms no
    /// timer for it.
    private func retire(_ s: Session) {
        s.resetExchange()
        s.phase = .closed
        s.deadline = 0
        cacheSession(s)
    }

    /// Connections other workers posted for tunnels held here.
    func takeEdgeHandoffs() {
        for h in control.takeHandoffs() {
            let l = edges.linkCache.popLast() ?? EdgeLink(worker: self)
            let (slot, generation) = register(.edgeLink(l), fd: h.fd, events: Self.connectionEvents)
            l.slot = slot
            l.generation = generation
            sessionCount += 1
            stats.setConnections(sessionCount)
            var first: IOBuffer?
            if !h.first.isEmpty {
                var b = h.first.count <= BufferPool.standardSize ? buffers.take() : buffers.takeLarge()
                h.first.withUnsafeBytes { b.append($0.baseAddress!, min($0.count, b.capacity)) }
                first = b
            }
            var io = Readiness()
            io.readable = true
            io.writable = true
            guard let t = edges.tunnel(for: h.edgeID) else {
                // The tunnel went away in between: the client sees its connection closed.
                l.adoptOnly(fd: h.fd)
                if let b = first { buffers.give(b) }
                l.close(abort: true, reason: "edge tunnel closed")
                continue
            }
            if l.open(fd: h.fd, transport: .socket(h.fd), io: io, kind: h.kind, authority: h.authority, client: h.client,
                      first: first, through: t) {
                l.pump()
            }
        }
    }

    /// Writes what edge tunnels gathered during this turn.
    func flushEdge() {
        var i = 0
        while i < edges.dirty.count {
            let c = edges.dirty[i]
            i += 1
            guard c.dirty else { continue }
            c.flush()
        }
        edges.dirty.removeAll(keepingCapacity: true)
    }
}

import CLinux
import CNghttp2
import Glibc
import H2Wire
import IOCore
import RouteResolver
import TLSTerminator

/// One attached edge agent on this worker (docs/edge-tunnel.md): the agent's TLS connection after
/// its `101`, on which the gateway is the **HTTP/2 client** and opens one extended-CONNECT stream
/// per client connection it carries to the node.
///
/// nghttp2 runs in memory mode, as for `H2Connection`: bytes read are fed to `mem_recv`, frames to
/// send are gathered into one buffer and written at the end of the loop turn. Callbacks only
/// record what happened; links run after nghttp2 returns (`runReady`).
///
/// Liveness: no frame from the agent for a second → PING; nothing for three → the tunnel is dead
/// and closes with every stream on it, so no client waits on a vanished agent.
final class EdgeTunnelConnection: Pollable {
    let worker: Worker
    let buffers: BufferPool
    var h2: OpaquePointer?
    var transport: Transport = .socket(-1)
    var io = Readiness()
    /// The edge this tunnel serves, and the agent's index for it (X-Switchyard-Edge-Tunnel).
    var edge: EdgeRoute?
    /// When this tunnel next offers the directory a `tunnel_seen_at` refresh (monotonic ms).
    var nextRefreshMs: UInt64 = 0
    var tunnelIndex = 0
    var peer = ""
    var streams: [EdgeStream] = []
    private var readyStreams: [EdgeStream] = []
    private var out: IOBuffer?
    /// Frames nghttp2 made that `out` had no room for yet.
    var output = H2Output()
    /// On the worker's end-of-turn flush list.
    var dirty = false
    var closed = true
    /// The agent's SETTINGS arrived (it enabled extended CONNECT): streams may open.
    var ready = false
    var goingAway = false
    var lastReceiveMs: UInt64 = 0
    var pingSent = false
    var attachedAtMs: UInt64 = 0
    /// Streams opened over the tunnel's life (the log's detach line says it).
    var streamsOpened = 0

    static let pingAfterMs: UInt64 = 1_000
    static let deadAfterMs: UInt64 = 3_000

    init(worker: Worker) {
        self.worker = worker
        buffers = worker.buffers
    }

    deinit {
        if let h2 { nghttp2_session_del(h2) }
    }

    /// Takes over the agent's connection (its 101 is written). The caller put us in its slot.
    func open(fd: Int32, transport: Transport, io: Readiness, edge: EdgeRoute, tunnelIndex: Int, peer: String) {
        adoptSocket(fd)
        self.transport = transport
        if case .tls(_, let t) = transport { t.enableBulk() }
        self.io = io
        self.edge = edge
        self.tunnelIndex = tunnelIndex
        self.peer = peer
        closed = false
        ready = false
        goingAway = false
        dirty = false
        pingSent = false
        streamsOpened = 0
        lastReceiveMs = worker.now
        attachedAtMs = worker.now
        deadline = 0
        queuedTick = 0
        let setup = worker.edges.setup
        var s: OpaquePointer?
        if nghttp2_session_client_new2(&s, setup.callbacks, Unmanaged.passUnretained(self).toOpaque(), setup.options) != 0 {
            fatalError("nghttp2_session_client_new2 failed")
        }
        h2 = s
        setup.settings.withUnsafeBufferPointer { e in
            _ = nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), e.baseAddress, e.count)
        }
        // The connection window is not what bounds a client: each stream's is.
        _ = nghttp2_session_set_local_window_size(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, EdgeSetup.connectionWindow)
        needsFlush()
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        service()
    }

    /// Reads (of at most one TLS record each) between two runs of the links: up to 64 KiB per
    /// client write.
    static let recordsPerRun = 4

    /// Reads what the agent sent, runs the links it concerns, writes.
    func service() {
        guard !closed else { return }
        let scratch = worker.h2.scratch
        let size = H2Resources.scratchSize
        var reads = 0
        // Read on even while our frames wait for a full socket (see the agent's `service`): two
        // ends that both stopped reading while blocked on writes would deadlock.
        while io.readable {
            let r: IOResult
            do { r = try transport.read(scratch, size) } catch { close(reason: "tunnel read failed"); return }
            switch r {
            case .bytes(let n):
                if n < size && !io.hangup && transport.isPlainSocket { io.readable = false }
                lastReceiveMs = worker.now
                if worker.now >= nextRefreshMs, let id = edge?.id {
                    nextRefreshMs = worker.now + 1_000
                    worker.edgeDirectory.stillAttached(edge: id, now: worker.wallMs)
                }
                pingSent = false
                let rv = nghttp2_session_mem_recv(h2, scratch.assumingMemoryBound(to: UInt8.self), n)
                if rv < 0 { close(reason: "tunnel protocol error"); return }
                reads += 1
                if reads % Self.recordsPerRun == 0 {
                    runReady()
                    if closed { return }
                }
            case .wouldBlock:
                io.readable = false
            case .eof:
                close(reason: "agent closed the tunnel")
                return
            }
        }
        runReady()
        flush()
    }

    // MARK: streams

    /// The agent's SETTINGS_MAX_CONCURRENT_STREAMS allows one more stream (beyond it nghttp2
    /// would hold the CONNECT back until the connect budget ran out; another tunnel may have room).
    var hasStreamRoom: Bool {
        guard let h2 else { return false }
        return UInt32(streams.count) < nghttp2_session_get_remote_settings(h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
    }

    /// Opens a stream for a client connection: `kind` is the CONNECT's `:protocol`. Nil when the
    /// tunnel cannot take one now (not ready yet, going away, nghttp2 refused).
    func openStream(for link: EdgeLink, kind: EdgeLink.Kind, authority: String, client: String) -> EdgeStream? {
        guard !closed, ready, !goingAway, let h2 else { return nil }
        let s = worker.edges.streamCache.popLast() ?? EdgeStream()
        s.reset()
        s.tunnel = self
        s.link = link
        let proto = kind == .tls ? "switchyard-tls" : "switchyard-http"
        let fields: [(String, String)] = [(":method", "CONNECT"), (":protocol", proto), (":scheme", "https"), (":path", "/"),
                                          (":authority", authority), ("x-switchyard-client", client)]
        let id = EdgeSetup.withFields(fields) { nva, n in
            csh2_submit_request(h2, nva, n, Unmanaged.passUnretained(s).toOpaque(), EdgeSetup.readOutbound,
                                Unmanaged.passUnretained(s).toOpaque())
        }
        guard id > 0 else {
            s.tunnel = nil
            s.link = nil
            worker.edges.streamCache.append(s)
            return nil
        }
        s.id = id
        s.index = streams.count
        streams.append(s)
        streamsOpened += 1
        worker.edgeDirectory.openStreams.add(1, ordering: .relaxed)
        needsFlush()
        return s
    }

    func markReady(_ s: EdgeStream) {
        guard !s.ready else { return }
        s.ready = true
        readyStreams.append(s)
    }

    /// Runs the links whose stream changed (bytes, an answer, an end), and forgets closed streams.
    func runReady() {
        var i = 0
        while i < readyStreams.count {
            let s = readyStreams[i]
            i += 1
            s.ready = false
            if let link = s.link { link.streamChanged() }
            if s.closed && s.link == nil { removeStream(s) }
        }
        readyStreams.removeAll(keepingCapacity: true)
    }

    /// Agent bytes for stream `s` (nghttp2's DATA callback): straight to the client's socket when
    /// it takes them, queued (within the stream's window) otherwise.
    func received(_ s: EdgeStream, _ p: UnsafePointer<UInt8>, _ n: Int) {
        guard s.link != nil else {
            // Nobody reads this stream any more: give the bytes back to the window at once.
            _ = nghttp2_session_consume(h2, s.id, n)
            return
        }
        // Queued, not written at once: the link writes what several records brought in one
        // write (`service` runs the links every `recordsPerRun` reads), which costs one copy and
        // saves the client's socket three of four wake-ups (bench/edge.sh).
        if s.inbound == nil { s.inbound = buffers.takeLarge() }
        // The stream window (EdgeSetup.streamWindow) bounds what can be waiting here.
        buffers.grow(&s.inbound!, room: n, capacity: min(Int(EdgeSetup.streamWindow), 2 * s.inbound!.capacity))
        let k = min(n, s.inbound!.writableCount)
        s.inbound!.append(UnsafeRawPointer(p), k)
        if k < n {
            // More than the window allows: the agent broke flow control; drop the stream, not bytes.
            _ = nghttp2_session_consume(h2, s.id, n - k)
            _ = nghttp2_submit_rst_stream(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, NGHTTP2_FLOW_CONTROL_ERROR.rawValue)
        }
        markReady(s)
    }

    /// The link wrote `n` queued bytes to its client: give them back to the stream's window.
    func consumed(_ s: EdgeStream, _ n: Int) {
        // Also once the stream closed: the connection-level window needs the credit back.
        guard n > 0, let h2, s.id > 0 else { return }
        _ = nghttp2_session_consume(h2, s.id, n)
        needsFlush()
    }

    /// Client bytes (or the FIN) are queued for `s`: let its data source run again.
    func resume(_ s: EdgeStream) {
        guard let h2, !s.closed else { return }
        if s.deferred && s.status == 200 {
            s.deferred = false
            _ = nghttp2_session_resume_data(h2, s.id)
        }
        needsFlush()
    }

    /// The link let go of its stream: reset it unless both sides ended in order.
    func linkDone(_ s: EdgeStream, abort: Bool) {
        s.link = nil
        if !s.closed, let h2 {
            if abort || !(s.inboundEnded && s.outboundEnded) {
                _ = nghttp2_submit_rst_stream(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, NGHTTP2_CANCEL.rawValue)
            }
            needsFlush()
            return  // removed when nghttp2 closes it
        }
        removeStream(s)
    }

    func removeStream(_ s: EdgeStream) {
        let i = s.index
        guard i >= 0, i < streams.count, streams[i] === s else { return }
        worker.edgeDirectory.openStreams.subtract(1, ordering: .relaxed)
        let last = streams.removeLast()
        if i < streams.count {
            streams[i] = last
            last.index = i
        }
        // Agent bytes no client will read: their credit goes back to the connection's window,
        // or aborted downloads would shrink it until no stream can move.
        if let b = s.inbound, b.count > 0, let h2, s.id > 0 { _ = nghttp2_session_consume(h2, s.id, b.count) }
        s.release(buffers)
        s.tunnel = nil
        s.link = nil
        s.index = -1
        if worker.edges.streamCache.count < 1024 { worker.edges.streamCache.append(s) }
    }

    @inline(__always)
    func needsFlush() {
        guard !dirty && !closed else { return }
        dirty = true
        worker.edges.dirty.append(self)
    }

    // MARK: writing

    func flush() {
        dirty = false
        guard !closed, let h2 else { return }
        var rounds = 0
        while true {
            if !output.produce(h2, into: &out, buffers: buffers) { close(reason: "tunnel protocol error"); return }
            guard let b = out, b.count > 0 else { break }
            if !io.writable { break }
            let r: IOResult
            do { r = try transport.write(b.readPointer, b.count) } catch { close(reason: "tunnel write failed"); return }
            guard case .bytes(let n) = r else { io.writable = false; break }
            out!.consume(n)
            if n < b.count && transport.isPlainSocket { io.writable = false; break }
            if !readyStreams.isEmpty && rounds < 8 {
                rounds += 1
                runReady()
                if closed { return }
            }
        }
        if !readyStreams.isEmpty && io.writable {
            // Streams that got room during the rounds above: run them, and flush again next turn
            // (edge-triggered epoll will not report their sockets again).
            runReady()
            if closed { return }
            needsFlush()
        }
        if let b = out, b.isEmpty, output.isEmpty { buffers.give(b); out = nil }
        if nghttp2_session_want_read(h2) == 0 && nghttp2_session_want_write(h2) == 0 && out == nil {
            close(reason: "tunnel ended")
            return
        }
        updateTimer()
    }


    // MARK: timers

    private func updateTimer() {
        worker.arm(self, deadline: lastReceiveMs + (pingSent ? Self.deadAfterMs : Self.pingAfterMs))
    }

    func timeout() {
        guard !closed else { return }
        if worker.now >= lastReceiveMs + Self.deadAfterMs {
            close(reason: "tunnel dead: no frame for 3 s")
            return
        }
        if !pingSent, let h2 {
            pingSent = true
            _ = nghttp2_submit_ping(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
            flush()
        } else {
            updateTimer()
        }
    }

    // MARK: shutdown

    /// The worker is draining: GOAWAY, so the agent reconnects elsewhere; streams in flight go on.
    func drain() {
        guard !closed, !goingAway, let h2 else { return }
        goingAway = true
        _ = nghttp2_submit_goaway(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        worker.edgeTunnelDetached(self, reason: "draining")
        flush()
    }

    /// Closes the tunnel and every client connection it carries (they cannot go on without it).
    func close(reason: String) {
        guard !closed else { return }
        closed = true
        dirty = false
        worker.edgeTunnelDetached(self, reason: reason)  // a no-op when already off the lists
        while let s = streams.last {
            let link = s.link
            s.link = nil
            s.closed = true
            removeStream(s)
            link?.tunnelGone()
        }
        readyStreams.removeAll(keepingCapacity: true)
        if let b = out { buffers.give(b); out = nil }
        output.reset()
        if let h2 { nghttp2_session_del(h2) }
        h2 = nil
        if case .tls(_, let t) = transport { t.shutdown() }
        transport = .socket(-1)
        closeSocket()
        deadline = 0
        edge = nil
        worker.edgeTunnelClosed(self)
    }
}

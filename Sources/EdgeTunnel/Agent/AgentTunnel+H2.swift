import CNghttp2
import Glibc
import H2Wire
import IOCore

/// The running tunnel: an HTTP/2 server session in memory mode. Bytes read from TLS go to
/// `nghttp2_session_mem_recv`; frames to send are gathered into `out` and written at the end of
/// the loop turn (or when the socket has room again). Liveness as on the cluster's side: PING
/// after 1 s without a frame, dead after 3 s.
extension AgentTunnel {
    /// The 101 came: start the session and feed it what followed the head (the cluster sends
    /// its preface at once, often in the same TLS record).
    func startH2(preface p: UnsafePointer<UInt8>, _ n: Int) {
        let setup = agent.h2
        var s: OpaquePointer?
        if nghttp2_session_server_new2(&s, setup.callbacks, Unmanaged.passUnretained(self).toOpaque(), setup.options) != 0 {
            fatalError("nghttp2_session_server_new2 failed")
        }
        h2 = s
        setup.settings.withUnsafeBufferPointer { e in
            _ = nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), e.baseAddress, e.count)
        }
        _ = nghttp2_session_set_local_window_size(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, AgentH2Setup.connectionWindow)
        phase = .running
        attachedAtMs = agent.now
        lastReceiveMs = agent.now
        agentLog("attach \(label)")
        if n > 0 {
            if nghttp2_session_mem_recv(s, p, n) < 0 { close(reason: "protocol error"); return }
        }
        if let b = answer { agent.buffers.give(b); answer = nil }
        runReady()
        guard phase == .running else { return }
        service()
    }

    /// Reads what the cluster sent, runs the streams it concerns, writes.
    func service() {
        guard phase == .running, let tls else { return }
        let scratch = agent.scratch
        let size = EdgeAgent.scratchSize
        // Read on even while our frames wait for a full socket: if both ends stopped reading
        // while their writes were blocked, two-way bulk traffic would deadlock (and PINGs would
        // go unread). What reading adds to the output is small (window updates, PING acks).
        reading: while io.readable {
            switch tls.read(scratch, size) {
            case .bytes(let n):
                lastReceiveMs = agent.now
                pingSent = false
                if nghttp2_session_mem_recv(h2, scratch.assumingMemoryBound(to: UInt8.self), n) < 0 {
                    close(reason: "protocol error")
                    return
                }
                runReady()
                if phase != .running { return }
                // GOAWAY is often followed at once by the close: note it before reading on.
                if goingAway && !detachLogged { noteGoaway() }
            case .wantRead:
                io.readable = false
            case .wantWrite:
                // TLS must write before it can read on (a key update): wait for room.
                io.writable = false
                break reading
            case .closed:
                close(reason: "the cluster closed the tunnel")
                return
            case .failed(let why):
                close(reason: "TLS read: \(why)")
                return
            }
        }
        runReady()
        flush()
    }

    /// The cluster said GOAWAY: detached (no new streams come here); a replacement dials now.
    private func noteGoaway() {
        detachLogged = true
        let seconds = (agent.now - attachedAtMs) / 1000
        agentLog("detach \(label) reason=goaway after=\(seconds)s streams=\(streamsOpened)")
        agent.tunnelGoingAway(self)
    }

    // MARK: streams

    /// nghttp2 begins a request's headers: a stream for it.
    func beginStream(_ id: Int32) {
        let s = agent.streamCache.popLast() ?? AgentStream()
        s.reset(id: id, tunnel: self)
        s.index = streams.count
        streams.append(s)
        streamsOpened += 1
        nghttp2_session_set_stream_user_data(h2, id, Unmanaged.passUnretained(s).toOpaque())
    }

    func markReady(_ s: AgentStream) {
        guard !s.ready else { return }
        s.ready = true
        readyStreams.append(s)
    }

    /// Runs the streams whose state changed, and forgets finished ones.
    func runReady() {
        var i = 0
        while i < readyStreams.count && phase == .running {
            let s = readyStreams[i]
            i += 1
            s.ready = false
            s.advance()
            if s.finished { removeStream(s) }
        }
        readyStreams.removeAll(keepingCapacity: true)
    }

    /// Cluster bytes for `s` (nghttp2's DATA callback): straight to the origin when nothing is
    /// queued before them and its socket takes them, queued (within the stream's window) otherwise.
    func received(_ s: AgentStream, _ p: UnsafePointer<UInt8>, _ n: Int) {
        guard s.fd >= 0 || s.phase == .request, !s.originShut, !s.failed else {
            // Refused, reset or shut: nobody will write these bytes; give them back at once.
            _ = nghttp2_session_consume(h2, s.id, n)
            return
        }
        var taken = 0
        if s.toOrigin == nil && s.phase == .open && s.io.writable {
            do {
                if case .bytes(let k) = try Sys.write(s.fd, p, n) {
                    taken = k
                    if k < n { s.io.writable = false }
                } else {
                    s.io.writable = false
                }
            } catch {
                s.failed = true
                markReady(s)
                _ = nghttp2_session_consume(h2, s.id, n)
                return
            }
        }
        if taken > 0 { _ = nghttp2_session_consume(h2, s.id, taken) }
        guard taken < n else { return }
        if s.toOrigin == nil { s.toOrigin = agent.buffers.takeLarge() }
        if s.toOrigin!.writableCount < n - taken { s.toOrigin!.compact() }
        guard s.toOrigin!.writableCount >= n - taken else {
            // More than the stream's window: the cluster broke flow control (RFC 9113 §6.9.1).
            s.failed = true
            markReady(s)
            _ = nghttp2_session_consume(h2, s.id, n - taken)
            return
        }
        s.toOrigin!.append(UnsafeRawPointer(p + taken), n - taken)
        markReady(s)
    }

    /// The origin took `n` queued bytes of `s`: give them back to the stream's window.
    func consume(_ s: AgentStream, _ n: Int) {
        // Also once the stream closed: the connection-level window needs the credit back.
        guard n > 0, let h2, s.id > 0 else { return }
        _ = nghttp2_session_consume(h2, s.id, n)
        needsFlush()
    }

    /// Origin bytes (or its FIN) are queued for `s`: let its data source run again.
    func resume(_ s: AgentStream) {
        guard let h2, !s.closed else { return }
        if s.deferred {
            s.deferred = false
            _ = nghttp2_session_resume_data(h2, s.id)
        }
        needsFlush()
    }

    func removeStream(_ s: AgentStream) {
        let i = s.index
        guard i >= 0, i < streams.count, streams[i] === s else { return }
        let last = streams.removeLast()
        if i < streams.count {
            streams[i] = last
            last.index = i
        }
        s.closeOrigin()
        s.tunnel = nil
        s.index = -1
        if agent.streamCache.count < 256 { agent.streamCache.append(s) }
    }

    @inline(__always)
    func needsFlush() {
        guard phase == .running else { return }
        agent.markDirty(self)
    }

    // MARK: writing

    func flush() {
        dirty = false
        guard phase == .running, let h2, let tls else { return }
        var rounds = 0
        while true {
            if !output.produce(h2, into: &out, buffers: agent.buffers) { close(reason: "protocol error"); return }
            guard let b = out, b.count > 0 else { break }
            guard io.writable else { break }
            switch tls.write(b.readPointer, b.count) {
            case .bytes(let n):
                out!.consume(n)
            case .wantWrite, .wantRead:
                io.writable = false
            case .closed:
                close(reason: "the cluster closed the tunnel")
                return
            case .failed(let why):
                close(reason: "TLS write: \(why)")
                return
            }
            if !io.writable { break }
            // Frames written: data sources that ran may have made room for their origins.
            if !readyStreams.isEmpty && rounds < 8 {
                rounds += 1
                runReady()
                if phase != .running { return }
            }
        }
        if !readyStreams.isEmpty && io.writable {
            // Streams that got room during the rounds above: run them, and flush again next turn
            // (edge-triggered epoll will not report their sockets again).
            runReady()
            if phase != .running { return }
            needsFlush()
        }
        if let b = out, b.isEmpty, output.isEmpty { agent.buffers.give(b); out = nil }
        if nghttp2_session_want_read(h2) == 0 && nghttp2_session_want_write(h2) == 0 && out == nil {
            close(reason: goingAway ? "goaway" : "session ended")
            return
        }
        if goingAway && streams.isEmpty && out == nil {
            close(reason: "goaway")
            return
        }
        updateTimer()
    }


    // MARK: timers

    func updateTimer() {
        deadline = lastReceiveMs + (pingSent ? Self.deadAfterMs : Self.pingAfterMs)
    }

    func timeout() {
        guard phase == .running else {
            if phase != .closed { fail("no attach within \(Self.attachBudgetMs / 1000) s") }
            return
        }
        let now = agent.now
        for s in streams where s.phase == .connecting && now >= s.connectDeadline { s.connectTimedOut() }
        if now >= lastReceiveMs + Self.deadAfterMs {
            close(reason: "dead: no frame for 3 s")
            return
        }
        if !pingSent, now >= lastReceiveMs + Self.pingAfterMs, let h2 {
            pingSent = true
            _ = nghttp2_submit_ping(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
        }
        runReady()
        flush()
    }
}

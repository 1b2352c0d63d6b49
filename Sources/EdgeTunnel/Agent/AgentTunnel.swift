import CNghttp2
import Glibc
import H2Wire
import IOCore
import TLSTerminator

/// One tunnel to the cluster, from the dial to its end: TCP connect, TLS handshake as client,
/// the attach request, the `101`, then an HTTP/2 server session on the same TLS connection
/// (`AgentTunnel+H2.swift`). A tunnel object lives for one connection; its `EdgeAgent` dialer
/// makes a new one after the backoff.
///
/// Phases, in order: `connecting` (non-blocking connect), `handshaking`, `attaching` (the request
/// is being written), `awaitingUpgrade` (reading the answer), `running`, `closed`. Everything up
/// to `running` must finish within `attachBudgetMs`.
final class AgentTunnel {
    enum Phase { case idle, connecting, handshaking, attaching, awaitingUpgrade, running, closed }

    unowned let agent: EdgeAgent
    let index: Int
    var phase = Phase.idle
    private(set) var fd: Int32 = -1
    var slot: UInt32 = 0
    var generation: UInt32 = 0
    var io = Readiness()
    var tls: TLSConnection?
    /// The next timer: the attach budget, then PING / death.
    var deadline = UInt64.max
    /// On the agent's end-of-turn flush list.
    var dirty = false

    // HTTP/2, once running.
    var h2: OpaquePointer?
    /// TLS output not yet written: the attach request, then frames.
    var out: IOBuffer?
    /// Frames nghttp2 made that `out` had no room for yet.
    var output = H2Output()
    /// The cluster's answer to the attach, until its head (and a refusal's body) is complete.
    var answer: IOBuffer?
    var streams: [AgentStream] = []
    var readyStreams: [AgentStream] = []
    var lastReceiveMs: UInt64 = 0
    var pingSent = false
    /// GOAWAY came: no new streams; the ones in flight finish.
    var goingAway = false
    /// The detach line is written once (at GOAWAY, or at close).
    var detachLogged = false
    var attachedAtMs: UInt64 = 0
    var streamsOpened = 0

    static let attachBudgetMs: UInt64 = 10_000
    static let pingAfterMs: UInt64 = 1_000
    static let deadAfterMs: UInt64 = 3_000

    init(agent: EdgeAgent, index: Int) {
        self.agent = agent
        self.index = index
    }

    deinit {
        if let h2 { nghttp2_session_del(h2) }
    }

    var label: String { "node=\(agent.settings.nodeID) tunnel=\(index) cluster=\(agent.settings.clusterText)" }

    // MARK: dial

    /// Starts the TCP connect (the cluster's name resolved now: a moved cluster is found again).
    func dial() {
        deadline = agent.now + Self.attachBudgetMs
        let s = agent.settings
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(s.clusterHost, String(s.clusterPort), &hints, &list)
        guard rc == 0, let first = list, let address = first.pointee.ai_addr else {
            if let list { freeaddrinfo(list) }
            fail("resolve \(s.clusterHost): \(String(cString: gai_strerror(rc)))")
            return
        }
        defer { freeaddrinfo(list) }
        let socket: Int32
        do { socket = try Sys.socket(family: first.pointee.ai_family) } catch { fail("\(error)"); return }
        fd = socket
        do { (slot, generation) = try agent.register(.tunnel(self), fd: socket) } catch {
            Sys.close(socket)
            fd = -1
            fail("\(error)")
            return
        }
        Sys.setNoDelay(socket)
        phase = .connecting
        do {
            if try Sys.connect(socket, UnsafePointer(address), first.pointee.ai_addrlen) { io.writable = true; step() }
        } catch {
            fail("connect: \(error)")
        }
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        step()
    }

    /// Advances the phase the socket's readiness allows.
    func step() {
        switch phase {
        case .idle, .closed:
            return
        case .connecting:
            guard io.writable else { return }
            let e = Sys.socketError(fd)
            if e != 0 { fail("connect: \(String(cString: strerror(e)))"); return }
            guard let t = agent.tls.makeConnection(fd: fd, serverName: agent.settings.serverName) else {
                fail("TLS: cannot set up a client connection for \(agent.settings.serverName)")
                return
            }
            t.enableBulk()
            tls = t
            phase = .handshaking
            step()
        case .handshaking:
            switch tls!.handshake() {
            case .done:
                phase = .attaching
                var b = agent.buffers.take()
                b.append(AgentAttach.request(settings: agent.settings, index: index))
                out = b
                step()
            case .wantRead, .wantWrite:
                return
            case .failed(let why):
                fail("TLS: \(why)")
            }
        case .attaching:
            guard writeOut() else { return }
            if out == nil {
                phase = .awaitingUpgrade
                step()
            }
        case .awaitingUpgrade:
            readAnswer()
        case .running:
            service()
        }
    }

    /// Writes `out` while TLS takes it; false after a fatal error (the tunnel is closed).
    private func writeOut() -> Bool {
        while let b = out, b.count > 0 {
            switch tls!.write(b.readPointer, b.count) {
            case .bytes(let n): out!.consume(n)
            case .wantRead, .wantWrite: return true
            case .closed: fail("the cluster closed the connection during attach"); return false
            case .failed(let why): fail("TLS write: \(why)"); return false
            }
        }
        if let b = out { agent.buffers.give(b); out = nil }
        return true
    }

    /// Reads the answer to the attach: a 101 starts HTTP/2 (bytes behind the head are the
    /// cluster's preface), anything else is logged with its body and retried after the backoff.
    private func readAnswer() {
        if answer == nil { answer = agent.buffers.take() }
        var ended = false
        while answer!.writableCount > 0 {
            switch tls!.read(answer!.writePointer, answer!.writableCount) {
            case .bytes(let n):
                answer!.end += n
                if decideAnswer(ended: false) { return }
                continue
            case .wantRead, .wantWrite:
                return
            case .closed:
                ended = true
            case .failed(let why):
                fail("TLS read: \(why)")
                return
            }
            break
        }
        if !decideAnswer(ended: true) {
            fail(ended ? "the cluster closed the connection before answering" : "attach answer too large")
        }
    }

    /// True when the answer was dealt with (attached, or refused and closed).
    private func decideAnswer(ended: Bool) -> Bool {
        let b = answer!
        switch AgentAttach.parse(b.readPointer, b.count) {
        case .needMore:
            return false
        case .malformed:
            fail("the cluster's answer is not HTTP/1.1")
            return true
        case .head(let head):
            if head.status == 101 {
                let leftover = b.count - head.length
                startH2(preface: b.readPointer + head.length, leftover)
                return true
            }
            let body = b.count - head.length
            // A refusal comes with a short body, then the cluster closes: wait for all of it.
            if !ended, b.writableCount > 0, body < (head.contentLength ?? Int.max) { return false }
            let text = printable(b.readPointer + head.length, min(body, head.contentLength ?? body))
            agentLog("attach_refused status=\(head.status) body=\(text) \(label)")
            close(reason: "attach refused (\(head.status))")
            return true
        }
    }

    /// Gives up on a tunnel that never attached.
    func fail(_ reason: String) {
        agentLog("attach_failed \(label) reason=\(reason)")
        close(reason: reason)
    }

    // MARK: close

    /// The tunnel's end: every stream's origin closed, the session freed, the socket closed.
    func close(reason: String) {
        guard phase != .closed else { return }
        let wasRunning = phase == .running
        phase = .closed
        dirty = false
        if wasRunning && !detachLogged {
            detachLogged = true
            let seconds = (agent.now - attachedAtMs) / 1000
            agentLog("detach \(label) reason=\(reason) after=\(seconds)s streams=\(streamsOpened)")
        }
        for s in streams {
            s.closed = true
            s.closeOrigin()
            s.tunnel = nil
            s.index = -1
        }
        streams.removeAll()
        readyStreams.removeAll()
        if let h2 { nghttp2_session_del(h2) }
        h2 = nil
        if let b = out { agent.buffers.give(b); out = nil }
        if let b = answer { agent.buffers.give(b); answer = nil }
        output.reset()
        tls?.shutdown()
        tls = nil
        if fd >= 0 {
            agent.unregister(slot)
            Sys.close(fd)
            fd = -1
        }
        deadline = UInt64.max
        agent.tunnelClosed(self)
    }

    /// The agent is stopping: GOAWAY (the cluster opens no more streams here), what can be
    /// written is written, then the tunnel closes.
    func goodbye() {
        if phase == .running, let h2 {
            if !detachLogged {
                detachLogged = true
                agentLog("detach \(label) reason=agent stopping after=\((agent.now - attachedAtMs) / 1000)s streams=\(streamsOpened)")
            }
            _ = nghttp2_submit_goaway(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(h2),
                                      NGHTTP2_NO_ERROR.rawValue, nil, 0)
            flush()
        }
        close(reason: "agent stopping")
    }
}

import CLinux
import EdgeTunnel
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver
import TLSTerminator


/// One client connection and, while a request is in flight, its exchange with an upstream.
///
/// Phases: `.head` (waiting for / reading a request head), `.exchange` (request forwarded,
/// response streaming back), `.responding` (the gateway's own response is being written),
/// `.lingering` (our side is shut; draining what the client still sends before closing, so the
/// kernel does not turn our last response into a RST), `.tunnel` (after a 101: bytes move both
/// ways unparsed until both sides have closed, see Session+Tunnel.swift). Bytes move only when
/// both sides can take them: a reader stops when the buffer it fills is full and the writer
/// behind it is blocked.
final class Session: Pollable {
    enum Phase { case peek, handshake, head, exchange, responding, lingering, tunnel, closed }
    enum TimerKind { case header, idle, body, connect, firstByte, upstreamRead, send, linger, lookup, tunnelIdle }

    /// Strong, for the same reason as the parts below: every `worker.now` or `worker.arm` through
    /// an `unowned(unsafe)` reference cost a retain/release pair. The cycle this makes (the
    /// worker keeps its sessions) is broken when `Worker.run` ends.
    let worker: Worker
    // The worker's parts a session uses on every request, held directly: reaching them through
    // `worker.config` would copy (and retain) the whole configuration each time. Strong `let`s
    // (none of them refers back to sessions, so no cycle): a `let` of a live object is borrowed
    // on use, where loading an `unowned(unsafe)` reference costs a retain/release pair.
    let buffers: BufferPool
    let headers: HeaderTable
    let log: WorkerLog
    let router: Router
    let timeouts: EngineConfig.Timeouts
    /// The access log is on: keep the request line and the timings it prints.
    let logged: Bool
    var phase: Phase = .closed
    var io = Readiness()
    var inBuf: IOBuffer?
    var scanner: HeadScanner
    var requestsServed = 0
    var headStartMs: UInt64 = 0
    var idleSinceMs: UInt64 = 0
    var lastProgressMs: UInt64 = 0
    var timerKind: TimerKind = .header

    // The current exchange.
    var req = RequestHead()
    /// The upstream side of the current exchange (Upstream/UpstreamLeg.swift).
    var leg = UpstreamLeg()
    /// The upstream connection of the current exchange (borrowed, see `UpstreamLeg`).
    var upstream: UpstreamConnection? {
        @inline(__always) get { leg.connectionRef?.takeUnretainedValue() }
        @inline(__always) set { leg.connectionRef = newValue.map { Unmanaged.passUnretained($0) } }
    }
    /// The exchange's framing, request and response side (Exchange/Exchange.swift).
    var exchange = Exchange()
    /// Validated request body bytes at the front of `inBuf`, ready to forward.
    var requestBodyReady = 0
    /// Output to the client that is not body: 100 Continue, the response head, an error.
    var clientOut: IOBuffer?
    var respScanner: HeadScanner
    var resp = ResponseHead()
    /// Validated response body bytes at the front of the upstream's buffer, ready to forward.
    var responseBodyReady = 0
    /// How the client's bytes move: this session's socket, plain or through TLS, or the
    /// HTTP/2 stream it proxies (whose connection owns the socket).
    var transport: Transport = .socket(-1)
    /// The connection's TLS session (TLS listeners); nil: plain or a stream.
    var tls: TLSConnection? {
        if case .tls(_, let t) = transport { return t }
        return nil
    }
    /// The HTTP/2 stream this session proxies; nil: a socket of our own.
    var stream: H2Stream? {
        if case .stream(let s) = transport { return s }
        return nil
    }
    /// The client came over TLS (this connection's, or its HTTP/2 connection's).
    var secure = false
    /// Which of the worker's listeners accepted this connection.
    var listenerIndex = 0
    /// The route the current request matched; -1: none (yet).
    var routeIndex = -1
    /// The exchange is an edge connection relayed to the center holding its tunnel: once the
    /// upstream connects, a byte tunnel (no request head, no response).
    var edgeRelay = false
    /// The route whose secret signs this request to a node API (`target: api`); -1: unsigned.
    var signRoute = -1

    /// The tunnel, once the upstream has answered an upgrade with 101 (`exchange.response` is
    /// `.switching` while the 101 is on its way; the tunnel starts when it has been written).
    var tunnel = Tunnel()

    /// What the logs and counters say of this exchange.
    var record = AccessRecord()
    /// Header lines added to the response of this exchange (sticky routes).
    let responseExtra = UnsafeMutablePointer<UInt8>.allocate(capacity: Session.responseExtraCapacity)
    var responseExtraLength = 0
    static let responseExtraCapacity = 320
    /// The sticky exchange's key, pool, node and container port (Upstream/PortLookup.swift).
    var sticky = StickyTarget()
    /// A container-port lookup to the node's API under way (placement_port targets).
    var portLookup = PortLookup()
    /// Bytes dropped while lingering, bounded so a client cannot keep us reading forever.
    var lingerBytes = 0
    static let maxLingerBytes = 1 << 20
    /// Retry-After for a 503 the gateway answers itself; 0: none.
    var retryAfterSeconds = 0
    /// The owning center named in a pod's 503 or 508 body.
    var errorOwner: String?
    /// The ClientHello seen so far (TLS listeners, before OpenSSL gets the connection).
    var helloParser = ClientHelloParser()

    init(worker: Worker) {
        self.worker = worker
        buffers = worker.buffers
        headers = worker.headers
        log = worker.log
        router = worker.router
        timeouts = worker.config.timeouts
        logged = worker.log.accessEnabled
        let l = worker.config.limits
        scanner = HeadScanner(maxFirstLine: l.maxRequestLine, maxHeaderBytes: l.maxHeaderBytes,
                              maxHeaders: l.maxHeaders, leadingEmptyLines: 2)
        respScanner = HeadScanner(maxFirstLine: l.maxRequestLine, maxHeaderBytes: l.maxHeaderBytes,
                                  maxHeaders: l.maxHeaders)
    }

    deinit {
        record.deallocate()
        responseExtra.deallocate()
    }

    func open(fd: Int32, peer: UnsafePointer<sockaddr_storage>, listener: Int) {
        adoptSocket(fd)
        listenerIndex = listener
        record.clientIPLength = SocketAddress.formatHost(peer, into: record.clientIP, capacity: AccessRecord.clientIPCapacity)
        io = Readiness()
        requestsServed = 0
        deadline = 0
        queuedTick = 0
        phase = .head
        scanner.reset()
        transport = .socket(fd)
        secure = false
        if worker.config.listeners[listener].tls != nil {
            secure = true
            // The ClientHello is read first (Session+Edge.swift): an edge's connection is not
            // ours to terminate. Without a context (OpenSSL refused every certificate set so
            // far) the peek closes it: a TLS listener never serves plain.
            helloParser = ClientHelloParser()
            phase = .peek
        }
    }

    func start() {
        headStartMs = worker.now
        lastProgressMs = worker.now
        resetExchange()
        updateTimer()
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        drive()
    }

    /// Runs every step that can make progress, then re-arms the timer for what we wait on now.
    func drive() {
        var progressed = false
        while true {
            let progress: Bool
            switch phase {
            case .peek: progress = stepPeek()
            case .handshake: progress = stepHandshake()
            case .head: progress = stepHead()
            case .exchange: progress = stepExchange()
            case .responding: progress = stepResponding()
            case .lingering: progress = stepLingering()
            case .tunnel: progress = stepTunnel()
            case .closed: return
            }
            if !progress { break }
            progressed = true
        }
        if progressed { lastProgressMs = worker.now }
        updateTimer()
    }

    // MARK: timers

    @inline(__always)
    private func updateTimer() {
        let t = timeouts
        let clientBlocked = (clientOut != nil || responseBodyReady > 0) && !io.writable
        switch phase {
        case .peek, .handshake:
            timerKind = .header
            worker.arm(self, deadline: headStartMs + t.clientHeader)
        case .head:
            if scanner.started || requestsServed == 0 || inBuf != nil {
                timerKind = .header
                worker.arm(self, deadline: headStartMs + t.clientHeader)
            } else {
                timerKind = .idle
                worker.arm(self, deadline: idleSinceMs + t.clientIdle)
            }
        case .exchange:
            if portLookup.isRunning {
                // The whole port lookup gets the connect budget: it must be quick or fail.
                timerKind = .lookup
                worker.arm(self, deadline: leg.connectStartMs + t.upstreamConnect)
            } else if clientBlocked {
                timerKind = .send
                worker.arm(self, deadline: lastProgressMs + t.send)
            } else if let u = leg.connectionRef, !u._withUnsafeGuaranteedRef({ $0.connected }) {
                timerKind = .connect
                worker.arm(self, deadline: leg.connectStartMs + t.upstreamConnect)
            } else if !exchange.responseStarted {
                if exchange.requestAllSeen && requestBodyReady == 0 && leg.requestHeadOut.map({ leg.requestHeadSent == $0.end }) ?? true {
                    timerKind = .firstByte
                    worker.arm(self, deadline: leg.requestSentMs + t.upstreamFirstByte)
                } else if leg.connectionRef?._withUnsafeGuaranteedRef({ $0.io.writable }) == false
                            && (requestBodyReady > 0 || leg.requestHeadOut != nil) {
                    timerKind = .send
                    worker.arm(self, deadline: lastProgressMs + t.send)
                } else {
                    timerKind = .body
                    worker.arm(self, deadline: lastProgressMs + t.clientBody)
                }
            } else {
                timerKind = .upstreamRead
                worker.arm(self, deadline: lastProgressMs + t.upstreamRead)
            }
        case .responding:
            timerKind = .send
            worker.arm(self, deadline: lastProgressMs + t.send)
        case .lingering:
            timerKind = .linger
            worker.arm(self, deadline: lastProgressMs + 2_000)
        case .tunnel:
            armTunnelTimer()
        case .closed:
            deadline = 0
        }
    }

    /// The wheel says our deadline passed.
    func timeout() {
        switch timerKind {
        case .idle, .linger:
            close()
        case .header:
            if scanner.started || inBuf != nil {
                respondError(408, "request head timeout")
            } else {
                close()
            }
        case .body:
            if exchange.responseStarted { abort(reason: "client body timeout") } else {
                dropUpstream()
                respondError(408, "request body timeout")
            }
        case .connect:
            if edgeRelay { failEdgeRelay("connect to the tunnel's center timed out"); return }
            upstreamFailed(status: 502, "upstream connect timeout", .connect, retryable: false)
        case .firstByte, .upstreamRead:
            upstreamFailed(status: 504, "upstream timeout", .timeout, retryable: false)
        case .send:
            if phase == .tunnel { endTunnel(reason: "tunnel send timeout") } else { abort(reason: "send timeout") }
        case .tunnelIdle:
            endTunnel(reason: "tunnel idle timeout")
        case .lookup:
            failLookup("no answer in time", status: 504, "port lookup timeout")
        }
        if phase != .closed { drive() }
    }

    // MARK: errors and closing

    /// Answers with the gateway's own JSON error. Anything half-sent is abandoned.
    /// `reusable`: the request itself was well framed (no route, or the upstream failed), so the
    /// connection may go on once the request body, if any, has been read to its end. Every parse
    /// error closes: where one request ends is then in doubt.
    func respondError(_ status: Int, _ code: StaticString, reusable: Bool = false) {
        if exchange.responseStarted { abort(reason: code); return }
        // Part of a `100 Continue` already went out: a new status line now would be garbled.
        if let c = clientOut, c.start > 0 { abort(reason: code); return }
        dropUpstream()
        self.record.status = status
        if record.requestIDLength == 0 { generateRequestID() }
        if record.startUs == 0 { record.startUs = cl_monotonic_us() }
        if !reusable || !(exchange.requestAllSeen && requestBodyReady == 0) || worker.draining { exchange.closeAfterwards() }
        let body = exchange.answerOwn()
        var b = clientOut ?? buffers.take()
        b.clear()
        HeadWriter.error(into: &b, status: status, code: code, close: exchange.closeAfter, retryAfter: retryAfterSeconds,
                         owner: errorOwner, requestID: record.requestID, requestIDLength: record.requestIDLength, body: body)
        clientOut = b
        log.error(code, status: status, requestID: record.requestID, requestIDLength: record.requestIDLength,
                         client: record.clientIP, clientLength: record.clientIPLength)
        phase = .responding
    }

    /// Writes the gateway's own response; then logs and either goes on or closes.
    private func stepResponding() -> Bool {
        if let b = clientOut {
            guard io.writable else { return false }
            let r: IOResult
            do { r = try clientWrite(b.readPointer, b.count) } catch { abort(reason: "client write failed"); return false }
            guard case .bytes(let n) = r else { io.writable = false; return false }
            record.bytesOut += UInt64(n)
            clientOut!.consume(n)
            if n < b.count { io.writable = false; return true }
            buffers.give(clientOut!)
            clientOut = nil
        }
        recordExchange()
        requestsServed += 1
        if exchange.closeAfter {
            beginLingering()
        } else {
            nextRequest()
        }
        return true
    }

    /// Shuts our sending side and reads until the client closes (or the linger timer ends), so
    /// bytes the client already sent do not make the kernel reset the connection (RFC 9112 §9.6).
    func beginLingering() {
        if let p = stream { finishStream(p); return }
        // A request body the client may still be sending (an early answer, an error) must be
        // drained, or the kernel answers it with RST and the client may lose our response.
        let unreadBody = !(exchange.requestAllSeen && requestBodyReady == 0)
        resetExchange()
        if let b = inBuf { buffers.give(b); inBuf = nil }
        // Nothing more waiting from the client: close at once.
        if !unreadBody && !io.readable && !io.hangup { close(); return }
        // Over TLS the stream ends with close_notify (RFC 8446 §6.1), so the client can tell a
        // complete response from a cut one (RFC 9112 §9.8).
        transport.finishOutput()
        phase = .lingering
        lingerBytes = 0
    }

    /// Reads and drops what the client still sends, until it closes, pauses (the linger timer
    /// then ends it), or has sent `maxLingerBytes`.
    private func stepLingering() -> Bool {
        guard io.readable else { return false }
        let scratch = buffers.take()
        defer { buffers.give(scratch) }
        while lingerBytes < Session.maxLingerBytes {
            let r: IOResult
            do { r = try clientRead(scratch.base, scratch.capacity) } catch { close(); return false }
            switch r {
            case .bytes(let n): lingerBytes += n
            case .eof: close(); return false
            case .wouldBlock: io.readable = false; return true
            }
        }
        close()
        return false
    }

    /// Ends the connection now (both sides), logging the exchange if one was under way.
    func abort(reason: StaticString) {
        if phase == .tunnel { endTunnel(reason: reason); return }
        if phase == .exchange || phase == .responding {
            if record.status == 0 { record.status = 499 }
            log.error(reason, status: record.status, requestID: record.requestID, requestIDLength: record.requestIDLength,
                             client: record.clientIP, clientLength: record.clientIPLength)
            recordExchange()
        }
        dropUpstream()
        close()
    }

    /// Detaches and closes the upstream connection (and any port lookup) of the exchange.
    func dropUpstream() {
        dropLookup()
        if let u = upstream {
            u.session = nil
            u.close()
            upstream = nil
        }
    }

    func close() {
        guard phase != .closed else { return }
        if tunnel.isOpen { leaveTunnel() }
        dropUpstream()
        resetExchange()
        phase = .closed
        if let b = inBuf { buffers.give(b); inBuf = nil }
        deadline = 0
        if let p = stream {
            // A stream whose response did not end in order is reset; its connection goes on.
            if !p.outputEnded { p.connection?.resetStream(p, error: 2) }
            p.connection?.sessionEnded(p)
            p.session = nil
            transport = .socket(-1)
            worker.streamSessionClosed(self)
            return
        }
        // close_notify, best effort (never waits), and the SSL freed before the socket closes.
        tls?.shutdown()
        transport = .socket(-1)
        closeSocket()
        worker.sessionClosed(self)
    }

    /// Gives up the socket (and its TLS session) without closing them: their new owner (an
    /// HTTP/2 connection taking over the client) closes them. The session is closed, its slot
    /// kept by the caller for the new owner; it may be reused from the next loop turn.
    func handOverSocket() -> (fd: Int32, transport: Transport) {
        let handed = (releaseSocket(), transport)
        transport = .socket(-1)
        phase = .closed
        deadline = 0
        return handed
    }

    /// Called when the worker starts draining: an idle keep-alive connection closes now; one in
    /// the middle of a request closes after its response.
    func drainIfIdle() {
        // A stream's session ends with its one exchange; the connection says GOAWAY.
        if stream != nil { return }
        switch phase {
        case .head where !scanner.started && inBuf == nil:
            close()
        case .peek, .handshake:
            close()
        case .head, .exchange, .responding:
            exchange.closeAfterwards()
        case .tunnel:
            // A tunnel has no request boundary to stop at; it ends when the drain timeout does.
            break
        default:
            break
        }
    }

    /// One finished exchange (or tunnel): the metrics, the node's counters, the access log.
    func recordExchange() {
        let micros = record.startUs == 0 ? 0 : cl_monotonic_us() &- record.startUs
        worker.stats.request(route: routeIndex >= 0 ? routeIndex : worker.stats.routeCount - 1, status: record.status, micros: micros)
        sticky.node?.recordTraffic(bytesIn: record.bytesIn, bytesOut: record.bytesOut)
        log.access(self)
    }

    @inline(__always)
    func generateRequestID() {
        worker.requestIDs.write(record.requestID)
        record.requestIDLength = 32
    }
}

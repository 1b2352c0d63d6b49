import CLinux
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver
import Synchronization
import TLSTerminator

/// One event-loop thread: its own epoll instance, its own SO_REUSEPORT listeners, its own
/// connections, buffers, upstream pools and timers. A connection never leaves its worker.
final class Worker {
    let id: Int
    let config: EngineConfig
    let epfd: Int32
    let wakeFD: Int32
    let control: WorkerControl

    var now: UInt64
    /// Unix milliseconds (coarse), refreshed with `now`: heartbeat ages are wall-clock times.
    var wallMs: Int64 = 0
    var timers: TimerWheel
    /// Reused scratch list of timer entries that came due this turn.
    private var dueTimers: [(token: UInt64, tick: UInt64)] = []
    let buffers = BufferPool()
    let headers: HeaderTable
    let log: WorkerLog
    /// Upstream connection pools, round robin and node-address lookups (Upstream/UpstreamPools.swift).
    let upstreams: UpstreamPools
    /// Turns request heads into routing decisions (shared by every worker and route explain).
    let router: Router
    let registry: Registry?
    let portLookups: [String: EngineConfig.PortLookup]
    /// Pipes for spliced tunnels, taken only while bytes are in flight.
    let pipes = PipePool()
    /// Open tunnels of this worker (each session knows its index here).
    private(set) var tunnels: [Session] = []
    let routeTunnelIdle: [UInt64]
    private let routeNames: [String]
    /// Per listener: edge agents may attach here.
    let edgeTunnelListeners: [Bool]
    /// Signs requests to node APIs (`target: api` routes with a secret).
    var apiSigner: APISigner
    let directory: TunnelDirectory
    let stats: WorkerStats
    /// Per listener: TLS contexts (refreshed with the certificates), HSTS lines, the record scratch.
    private(set) var tls: ListenerTLS
    /// HTTP/2 connections' setup, scratch, end-of-turn flush list and caches (Worker+H2.swift).
    var h2: H2Resources
    /// Edge tunnels held here, their flush list and caches (Worker+Edge.swift).
    var edges = EdgeResources()
    let edgeDirectory: EdgeTunnelDirectory
    var requestIDs: RequestIDGenerator

    private var owners: [SlotOwner] = []
    /// `owners` as dispatch reads it (same slots).
    private var targets: [SlotTarget] = []
    /// Owners unregistered during this loop turn. Dispatch borrows an object without retaining
    /// it, and an object may close (unregister) itself from inside its own handler: it must
    /// outlive that call even when no cache takes it.
    private var retired: [SlotOwner] = []
    private var generations: [UInt32] = []
    private var freeSlots: [UInt32] = []
    private var listenerFDs: [Int32] = []
    private var listenerReadable: [Bool] = []
    private var sessionCache: [Session] = []
    private var upstreamCache: [UpstreamConnection] = []
    private let events: UnsafeMutablePointer<cl_event>
    private static let maxEvents = 256

    var sessionCount = 0
    private(set) var draining = false
    private var drainDeadline: UInt64 = 0
    private var running = true
    private let acceptAddress = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)

    init(id: Int, config: EngineConfig, router: Router, control: WorkerControl, sinks: LogSinks,
         directory: TunnelDirectory, edgeDirectory: EdgeTunnelDirectory, stats: WorkerStats,
         certificates: ListenerCertificates?) throws(SysError) {
        self.id = id
        self.edgeDirectory = edgeDirectory
        self.stats = stats
        self.directory = directory
        routeTunnelIdle = config.routeTunnelIdle
        h2 = H2Resources(config)
        routeNames = config.routes.routes.map(\.name)
        edgeTunnelListeners = config.listeners.map(\.edgeTunnel)
        apiSigner = APISigner(maxRequestLine: config.limits.maxRequestLine)
        self.config = config
        self.control = control
        wakeFD = control.wakeFD
        epfd = cl_epoll_create()
        if epfd < 0 { throw SysError("epoll_create1", errno) }
        now = cl_monotonic_ms()
        wallMs = Worker.wallClockMs()
        timers = TimerWheel(now: now)
        headers = HeaderTable(capacity: config.limits.maxHeaders + 1)
        log = WorkerLog(sinks: sinks)
        tls = ListenerTLS(config, certificates: certificates, log: log)
        upstreams = UpstreamPools(config, worker: id)
        self.router = router
        registry = router.registry
        portLookups = config.sticky.portLookups
        requestIDs = RequestIDGenerator()
        events = .allocate(capacity: Self.maxEvents)

        _ = register(.wake, fd: wakeFD, events: Epoll.input)
        for (i, l) in config.listeners.enumerated() {
            let fd = try Sys.listen(l.address, backlog: l.backlog)
            listenerFDs.append(fd)
            listenerReadable.append(false)
            _ = register(.listener(i), fd: fd, events: Epoll.input | Epoll.edgeTriggered)
        }
    }

    deinit {
        events.deallocate()
        tls.deallocate()
        h2.deallocate()
        acceptAddress.deallocate()
        Sys.close(epfd)
    }

    static func wallClockMs() -> Int64 {
        var sec: Int64 = 0
        var ms: Int32 = 0
        cl_wall_clock(&sec, &ms)
        return sec * 1000 + Int64(ms)
    }

    // MARK: slots

    /// Registers `fd` for `owner`; returns (slot, generation). Interest is fixed at registration:
    /// edge-triggered IN|OUT|RDHUP needs no epoll_ctl(MOD) for the life of the connection, which is
    /// the limit case of batching interest changes (STYLE.md point 5).
    func register(_ owner: SlotOwner, fd: Int32, events: UInt32) -> (UInt32, UInt32) {
        let (slot, gen) = takeSlot(owner)
        if cl_epoll_add(epfd, fd, events, UInt64(gen) << 32 | UInt64(slot)) != 0 {
            fatalError("epoll_ctl(ADD) fd \(fd): errno \(errno)")
        }
        return (slot, gen)
    }

    /// A slot with no socket behind it (a stream's session): its token serves the timers only.
    func takeSlot(_ owner: SlotOwner) -> (UInt32, UInt32) {
        let slot: UInt32
        if let s = freeSlots.popLast() {
            slot = s
            owners[Int(s)] = owner
            targets[Int(s)] = owner.target
        } else {
            slot = UInt32(owners.count)
            owners.append(owner)
            targets.append(owner.target)
            generations.append(1)
        }
        return (slot, generations[Int(slot)])
    }

    /// Hands a registered socket's slot to a new owner (same slot and generation: the epoll
    /// registration stays as it is). The old owner is kept until the loop turn ends.
    func replaceOwner(slot: UInt32, with owner: SlotOwner) {
        retired.append(owners[Int(slot)])
        owners[Int(slot)] = owner
        targets[Int(slot)] = owner.target
    }

    static let connectionEvents = Epoll.input | Epoll.output | Epoll.readHangup | Epoll.edgeTriggered

    /// Frees a slot; closing the fd removes it from epoll. Stale events for it are dropped by the
    /// generation check.
    func unregister(slot: UInt32) {
        retired.append(owners[Int(slot)])
        owners[Int(slot)] = .free
        targets[Int(slot)] = .free
        generations[Int(slot)] &+= 1
        if generations[Int(slot)] == 0 { generations[Int(slot)] = 1 }
        freeSlots.append(slot)
    }

    // MARK: timers

    /// Sets an owner's deadline (0 clears it), queuing it in the wheel only when it moves earlier.
    @inline(__always)
    func arm(_ p: Pollable, deadline: UInt64) {
        p.deadline = deadline
        if deadline == 0 { return }
        let tick = TimerWheel.tick(for: deadline)
        if p.queuedTick == 0 || tick < p.queuedTick {
            p.queuedTick = timers.insert(p.token, tick: tick)
        }
    }

    private func fireTimers() {
        timers.advance(now: now, into: &dueTimers)
        if dueTimers.isEmpty { return }
        for (token, tick) in dueTimers {
            let slot = Int(token & 0xFFFF_FFFF)
            guard slot < owners.count, generations[slot] == UInt32(token >> 32) else { continue }
            switch targets[slot] {
            case .session(let s): s._withUnsafeGuaranteedRef { s in timerEntryDue(s, tick) { s.timeout() } }
            case .upstream(let u): u._withUnsafeGuaranteedRef { u in timerEntryDue(u, tick) { u.timeout() } }
            case .h2(let c): c._withUnsafeGuaranteedRef { c in timerEntryDue(c, tick) { c.timeout() } }
            case .edgeTunnel(let c): c._withUnsafeGuaranteedRef { c in timerEntryDue(c, tick) { c.timeout() } }
            case .edgeLink(let l): l._withUnsafeGuaranteedRef { l in timerEntryDue(l, tick) { l.timeout() } }
            default: continue
            }
        }
        dueTimers.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func timerEntryDue(_ p: Pollable, _ tick: UInt64, _ fire: () -> Void) {
        guard p.queuedTick == tick else { return }  // a newer entry stands for this owner
        p.queuedTick = 0
        if p.deadline == 0 { return }
        if p.deadline > now {
            p.queuedTick = timers.insert(p.token, tick: TimerWheel.tick(for: p.deadline))
        } else {
            fire()
        }
    }

    // MARK: loop

    func run() {
        while running {
            var timeout = timers.timeoutMs(now: now)
            // Pending log lines go out within 100 ms; a draining worker checks its deadline often.
            let cap: Int32 = !h2.dirty.isEmpty || !edges.dirty.isEmpty ? 0 : draining ? 50 : log.pendingFlush ? 100 : -1
            if cap >= 0 && (timeout < 0 || timeout > cap) { timeout = cap }
            let n = cl_epoll_wait(epfd, events, Int32(Self.maxEvents), timeout)
            let t = cl_monotonic_ms()
            // The wall clock, the timers and the log flush only move on when the (coarse)
            // monotonic clock does: most turns under load come within the same tick. With `now`
            // unchanged, no timer can have come due (an entry is queued for a later tick than
            // the last one processed) and the flush interval cannot have passed.
            let moved = t != now
            if moved {
                now = t
                wallMs = Worker.wallClockMs()
            }
            if n < 0 && errno != EINTR { fatalError("epoll_wait: errno \(errno)") }
            // New certificates apply from the next connection accepted (the engine wakes us).
            tls.refreshIfChanged(log: log)
            var i = 0
            while i < Int(n) {
                dispatch(events[i])
                i += 1
            }
            if moved {
                fireTimers()
                log.tick(now: now)
            }
            if !h2.dirty.isEmpty { flushH2() }
            if !edges.dirty.isEmpty { flushEdge() }
            if !retired.isEmpty { retired.removeAll(keepingCapacity: true) }
            if draining { checkDrained() }
        }
        log.flush()
        pipes.closeAll()
        for fd in listenerFDs where fd >= 0 { Sys.close(fd) }
        // Sessions and upstream connections hold their worker strongly: drop every one we keep,
        // so the worker (and its epoll fd) is freed once its thread lets go of it.
        owners.removeAll()
        targets.removeAll()
        retired.removeAll()
        sessionCache.removeAll()
        upstreamCache.removeAll()
        h2.removeAll()
        edges.removeAll()
        upstreams.removeAll()
    }

    @inline(__always)
    private func dispatch(_ ev: cl_event) {
        let slot = Int(ev.data & 0xFFFF_FFFF)
        guard generations[slot] == UInt32(ev.data >> 32) else { return }
        switch targets[slot] {
        case .session(let s): s._withUnsafeGuaranteedRef { $0.handle(ev.events) }
        case .upstream(let u): u._withUnsafeGuaranteedRef { $0.handle(ev.events) }
        case .h2(let c): c._withUnsafeGuaranteedRef { $0.handle(ev.events) }
        case .edgeTunnel(let c): c._withUnsafeGuaranteedRef { $0.handle(ev.events) }
        case .edgeLink(let l): l._withUnsafeGuaranteedRef { $0.handle(ev.events) }
        case .listener(let i): listenerReadable[i] = true; acceptLoop(i)
        case .wake: handleWake()
        case .free: return
        }
    }

    private func acceptLoop(_ i: Int) {
        let fd = listenerFDs[i]
        guard fd >= 0 else { return }
        while listenerReadable[i] {
            let client: Int32?
            do {
                client = try Sys.accept(fd, acceptAddress)
            } catch {
                // EMFILE/ENFILE/ENOBUFS: leave the rest in the backlog and try again next edge.
                log.error("accept_failed", error.description)
                listenerReadable[i] = false
                return
            }
            guard let c = client else { listenerReadable[i] = false; return }
            Sys.setNoDelay(c)
            let s = sessionCache.popLast() ?? Session(worker: self)
            s.open(fd: c, peer: acceptAddress, listener: i)
            let (slot, gen) = register(.session(s), fd: c, events: Self.connectionEvents)
            s.slot = slot
            s.generation = gen
            sessionCount += 1
            stats.setConnections(sessionCount)
            s.start()
        }
    }

    /// Called by a session when its socket is closed.
    func sessionClosed(_ s: Session) {
        unregister(slot: s.slot)
        connectionClosed()
        cacheSession(s)
    }

    /// A client connection (HTTP/1.1 session or HTTP/2 connection) is gone.
    func connectionClosed() {
        sessionCount -= 1
        stats.setConnections(sessionCount)
    }

    func cacheSession(_ s: Session) {
        if sessionCache.count < 1024 { sessionCache.append(s) }
    }

    func popSession() -> Session { sessionCache.popLast() ?? Session(worker: self) }

    /// Puts a finished upstream connection in its address's idle pool (holding no buffer, with an
    /// idle deadline). False when the pool is full: the caller closes it.
    @inline(__always)
    func keepIdle(_ u: UpstreamConnection) -> Bool {
        guard upstreams[u.addressIndex].put(u, limit: upstreams.idlePerAddress) else { return false }
        if let b = u.inBuf { buffers.give(b); u.inBuf = nil }
        arm(u, deadline: now + upstreams.idleTimeout)
        return true
    }

    func makeUpstream() -> UpstreamConnection {
        upstreamCache.popLast() ?? UpstreamConnection(worker: self)
    }

    /// A connection object whose connect failed before registration.
    func recycleUnused(_ u: UpstreamConnection) {
        if upstreamCache.count < 1024 { upstreamCache.append(u) }
    }

    func upstreamClosed(_ u: UpstreamConnection) {
        unregister(slot: u.slot)
        if upstreamCache.count < 1024 { upstreamCache.append(u) }
    }

    // MARK: shutdown

    private func handleWake() {
        _ = Sys.drainEventFD(wakeFD)
        let moved = control.takePosted()
        if !moved.isEmpty { closeTunnels(of: moved) }
        takeEdgeHandoffs()
        if control.drainRequested.load(ordering: .acquiring) && !draining { beginDrain() }
    }

    // MARK: tunnels

    /// A route's name; "-" for none (a relayed edge connection matched no route).
    func routeName(_ index: Int) -> String {
        index >= 0 && index < routeNames.count ? routeNames[index] : "-"
    }

    func tunnelOpened(_ s: Session) {
        s.tunnel.index = tunnels.count
        tunnels.append(s)
        directory.opened(route: routeName(s.routeIndex), node: s.sticky.node?.name)
    }

    func tunnelClosed(_ s: Session) {
        let i = s.tunnel.index
        guard i >= 0, i < tunnels.count, tunnels[i] === s else { return }
        let last = tunnels.removeLast()
        if i < tunnels.count {
            tunnels[i] = last
            last.tunnel.index = i
        }
        s.tunnel.index = -1
        directory.closed(route: routeName(s.routeIndex), node: s.sticky.node?.name)
    }

    /// Closes the tunnels of users whose placement moved (one pass over this worker's tunnels,
    /// however many users moved).
    private func closeTunnels(of keys: [TunnelKey]) {
        let moved = Set(keys)
        var matching: [Session] = []
        for s in tunnels where s.sticky.isKeyed {
            let key = TunnelKey(pool: s.sticky.pool, key: Array(s.sticky.key))
            if moved.contains(key) { matching.append(s) }
        }
        for s in matching { s.closeTunnel(code: 1012) }
    }

    /// Stops accepting, closes idle connections, lets in-flight exchanges finish (each then closes),
    /// and ends the loop when none are left or the drain timeout passes.
    private func beginDrain() {
        draining = true
        drainDeadline = now + config.timeouts.drain
        for i in listenerFDs.indices where listenerFDs[i] >= 0 {
            Sys.close(listenerFDs[i])
            listenerFDs[i] = -1
        }
        forEachSession { $0.drainIfIdle() }
        forEachH2 { $0.drain() }
        for case .edgeTunnel(let c) in owners { c.drain() }
        // WebSocket clients are told the gateway is going away (1001) and reconnect elsewhere;
        // other tunnels run until they end or the drain timeout does.
        for s in tunnels where s.tunnel.webSocket { s.closeTunnel(code: 1001) }
        upstreams.closeAll()
        checkDrained()
    }

    private func checkDrained() {
        if sessionCount == 0 { running = false; return }
        if now >= drainDeadline {
            forEachSession { $0.abort(reason: "drain_timeout") }
            forEachH2 { $0.close() }
            for case .edgeLink(let l) in owners { l.close(abort: true, reason: "drain_timeout") }
            for case .edgeTunnel(let c) in owners { c.close(reason: "draining") }
            running = false
        }
    }

    private func forEachSession(_ body: (Session) -> Void) {
        for i in owners.indices {
            if case .session(let s) = owners[i] { body(s) }
        }
    }

    private func forEachH2(_ body: (H2Connection) -> Void) {
        for i in owners.indices {
            if case .h2(let c) = owners[i] { body(c) }
        }
    }
}

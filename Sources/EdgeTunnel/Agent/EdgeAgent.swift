import CLinux
import Glibc
import IOCore
import TLSTerminator

/// The edge node's side of the reverse tunnels (docs/edge-tunnel.md): keeps `tunnels` TLS
/// connections to the cluster attached, serves each as an HTTP/2 **server** (the cluster opens
/// one extended-CONNECT stream per client connection) and connects every stream to the node's
/// own entrypoint.
///
/// One thread, one epoll loop: `run()` blocks until `stop()` (callable from any thread). Each
/// registration's epoll data is (generation << 32 | slot) (STYLE.md point 4): a reused slot never
/// receives an event meant for its previous owner. Dispatch is a switch over final classes.
public final class EdgeAgent {
    let settings: EdgeAgentSettings
    let tls: TLSClientContext
    let h2: AgentH2Setup
    let buffers = BufferPool(keepStandard: 16, keepLarge: 64)
    let epfd: Int32
    private let wakeFD: Int32
    /// Monotonic ms, read once per loop turn.
    private(set) var now: UInt64
    /// Where decrypted tunnel bytes land before nghttp2 reads them (one per agent: one thread).
    let scratch: UnsafeMutableRawPointer
    static let scratchSize = 64 * 1024

    enum Owner {
        case free
        case wake
        case tunnel(AgentTunnel)
        case stream(AgentStream)
    }
    private var owners: [Owner] = [.wake]
    private var generations: [UInt32] = [0]
    private var freeSlots: [UInt32] = []

    /// One dialer per tunnel index: the tunnel it keeps attached, and its backoff.
    private var dialers: [Dialer] = []
    /// Tunnels that got GOAWAY: their streams finish while the dialer's replacement attaches.
    private var draining: [AgentTunnel] = []
    /// Stream objects kept for reuse (no allocation per tunnelled connection once warm).
    var streamCache: [AgentStream] = []
    /// Tunnels with frames to write at the end of the turn.
    var dirty: [AgentTunnel] = []
    private var stopping = false

    final class Dialer {
        let index: Int
        var tunnel: AgentTunnel?
        var backoff = Backoff()
        /// When to dial again (0: now); only while `tunnel` is nil.
        var dialAt: UInt64 = 0
        init(index: Int) { self.index = index }
    }

    public init(settings: EdgeAgentSettings) throws {
        self.settings = settings
        tls = try TLSClientContext(caFile: settings.caFile, alpn: ["http/1.1"])
        h2 = AgentH2Setup()
        epfd = cl_epoll_create()
        if epfd < 0 { throw SysError("epoll_create1", errno) }
        do { wakeFD = try Sys.eventFD() } catch { Sys.close(epfd); throw error }
        if cl_epoll_add(epfd, wakeFD, Epoll.input | Epoll.edgeTriggered, 0) != 0 {
            let e = errno
            Sys.close(wakeFD)
            Sys.close(epfd)
            throw SysError("epoll_ctl(ADD)", e)
        }
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
        now = cl_monotonic_ms()
        dialers = (0..<settings.tunnels).map { Dialer(index: $0) }
    }

    deinit {
        scratch.deallocate()
        Sys.close(wakeFD)
        Sys.close(epfd)
    }

    /// Asks `run()` to return: GOAWAY on every tunnel, then everything is closed. Thread-safe
    /// (it only writes the eventfd).
    public func stop() {
        Sys.signalEventFD(wakeFD)
    }

    /// What another thread (a signal waiter) holds to call `stop()`: the eventfd alone, so the
    /// agent itself never crosses threads. Valid while the agent lives.
    public struct Stopper: Sendable {
        let fd: Int32
        public func stop() { Sys.signalEventFD(fd) }
    }

    public var stopper: Stopper { Stopper(fd: wakeFD) }

    /// The loop; returns after `stop()`.
    public func run() {
        let maxEvents = 128
        let events = UnsafeMutablePointer<cl_event>.allocate(capacity: maxEvents)
        defer { events.deallocate() }
        while !stopping {
            now = cl_monotonic_ms()
            dialDue()
            let n = cl_epoll_wait(epfd, events, Int32(maxEvents), nextTimeout())
            now = cl_monotonic_ms()
            if n < 0 && errno != EINTR { fatalError("epoll_wait: errno \(errno)") }
            for i in 0..<max(0, Int(n)) {
                dispatch(events[i].data, events[i].events)
            }
            fireTimers()
            flushDirty()
        }
        shutdown()
    }

    @inline(__always)
    private func dispatch(_ token: UInt64, _ bits: UInt32) {
        let slot = Int(truncatingIfNeeded: token & 0xFFFF_FFFF)
        guard slot < owners.count, generations[slot] == UInt32(truncatingIfNeeded: token >> 32) else { return }
        switch owners[slot] {
        case .free: return
        case .wake:
            if Sys.drainEventFD(wakeFD) > 0 { stopping = true }
        case .tunnel(let t): t.handle(bits)
        case .stream(let s): s.handle(bits)
        }
    }

    // MARK: slots

    /// Registers `fd` (edge-triggered IN|OUT|RDHUP) for `owner`; (slot, generation).
    func register(_ owner: Owner, fd: Int32) throws(SysError) -> (UInt32, UInt32) {
        let slot: UInt32
        if let s = freeSlots.popLast() {
            slot = s
            owners[Int(s)] = owner
        } else {
            slot = UInt32(owners.count)
            owners.append(owner)
            generations.append(0)
        }
        let gen = generations[Int(slot)]
        if cl_epoll_add(epfd, fd, AgentEpoll.socket, UInt64(gen) << 32 | UInt64(slot)) != 0 {
            let e = errno
            unregister(slot)
            throw SysError("epoll_ctl(ADD)", e)
        }
        return (slot, gen)
    }

    /// Frees a slot (its fd is closed by its owner, which takes it out of epoll); events still
    /// queued for it carry the old generation and are dropped.
    func unregister(_ slot: UInt32) {
        let i = Int(slot)
        guard i > 0, i < owners.count else { return }
        if case .free = owners[i] { return }
        owners[i] = .free
        generations[i] &+= 1
        freeSlots.append(slot)
    }

    // MARK: tunnels

    private func dialDue() {
        guard !stopping else { return }
        for d in dialers where d.tunnel == nil && d.dialAt <= now {
            let t = AgentTunnel(agent: self, index: d.index)
            d.tunnel = t
            t.dial()
        }
    }

    /// How long a tunnel must have been attached for its end to restart the backoff at 0.2 s: a
    /// cluster that accepts and drops at once (or says GOAWAY at once) gets no reconnect storm.
    static let healthyAfterMs: UInt64 = 10_000

    private func wasHealthy(_ t: AgentTunnel) -> Bool {
        t.attachedAtMs > 0 && now - t.attachedAtMs >= Self.healthyAfterMs
    }

    /// A tunnel failed to attach or closed: its dialer dials again after the backoff.
    func tunnelClosed(_ t: AgentTunnel) {
        if let i = draining.firstIndex(where: { $0 === t }) { draining.remove(at: i) }
        guard t.index < dialers.count else { return }
        let d = dialers[t.index]
        guard d.tunnel === t else { return }
        d.tunnel = nil
        if wasHealthy(t) { d.backoff.reset() }
        d.dialAt = now + d.backoff.next()
    }

    /// The cluster sent GOAWAY on `t`: it goes on carrying its streams; a new tunnel replaces it
    /// at once after a healthy tunnel (the cluster is draining: the new one lands elsewhere),
    /// after the backoff otherwise.
    func tunnelGoingAway(_ t: AgentTunnel) {
        guard t.index < dialers.count else { return }
        let d = dialers[t.index]
        guard d.tunnel === t else { return }
        d.tunnel = nil
        if wasHealthy(t) {
            d.backoff.reset()
            d.dialAt = now
        } else {
            d.dialAt = now + d.backoff.next()
        }
        draining.append(t)
    }

    func markDirty(_ t: AgentTunnel) {
        guard !t.dirty else { return }
        t.dirty = true
        dirty.append(t)
    }

    private func flushDirty() {
        var i = 0
        while i < dirty.count {
            let t = dirty[i]
            i += 1
            if t.dirty { t.flush() }
        }
        dirty.removeAll(keepingCapacity: true)
    }

    // MARK: timers

    /// Every tunnel has a deadline (connect/attach budget, PING, death); the next one bounds the wait.
    private func nextTimeout() -> Int32 {
        var next = UInt64.max
        for d in dialers {
            if let t = d.tunnel { next = min(next, t.deadline) } else { next = min(next, d.dialAt) }
        }
        for t in draining { next = min(next, t.deadline) }
        if next == UInt64.max { return 1000 }
        return next <= now ? 0 : Int32(min(next - now, 1000))
    }

    private func fireTimers() {
        for d in dialers {
            if let t = d.tunnel, t.deadline <= now { t.timeout() }
        }
        for t in draining where t.deadline <= now { t.timeout() }
    }

    // MARK: stopping

    private func shutdown() {
        for d in dialers {
            d.tunnel?.goodbye()
        }
        for t in draining { t.goodbye() }
        dialers.removeAll()
        draining.removeAll()
        dirty.removeAll()
    }
}

import CLinux
import Glibc
import HTTP1Codec
import IOCore

/// One TCP connection to an upstream address. While an exchange uses it, `session` is set and its
/// events drive that session; while idle it sits in its address's pool, watched for close.
final class UpstreamConnection: Pollable {
    /// Strong (a borrowed `let`, no retain per use); `Worker.run` breaks the cycle when it ends.
    let worker: Worker
    var addressIndex = 0
    var inBuf: IOBuffer?
    var io = Readiness()
    var connected = false
    /// True when the connection came from the idle pool (a failure before any response byte may
    /// then be the server's keep-alive race, so an idempotent request is retried once).
    var reused = false
    /// The session using this connection. Not owning: an open session is owned by its slot.
    /// Unmanaged so each event borrows it instead of paying a retain/release pair.
    var sessionRef: Unmanaged<Session>?
    var session: Session? {
        @inline(__always) get { sessionRef?.takeUnretainedValue() }
        @inline(__always) set { sessionRef = newValue.map { Unmanaged.passUnretained($0) } }
    }
    /// Index in the pool's idle list; -1 when not idle.
    var poolPosition = -1

    init(worker: Worker) {
        self.worker = worker
    }

    /// Starts a non-blocking connect and registers the socket. Throws when the kernel refuses at once.
    func connect(to index: Int) throws(SysError) {
        let address = worker.upstreams[index].address
        let s = try Sys.socket(family: Int32(address.storage.ss_family))
        adoptSocket(s)
        Sys.setNoDelay(s)
        do {
            connected = try Sys.connect(s, address)
        } catch {
            closeSocket()
            throw error
        }
        addressIndex = index
        io = Readiness()
        reused = false
        poolPosition = -1
        deadline = 0
        queuedTick = 0
        let (slot, gen) = worker.register(.upstream(self), fd: s, events: Worker.connectionEvents)
        self.slot = slot
        generation = gen
    }

    /// Completes a connect once the socket is writable; returns the pending socket error (0: ok).
    func finishConnect() -> Int32 {
        let err = Sys.socketError(fd)
        if err == 0 { connected = true }
        return err
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        if let s = sessionRef {
            s._withUnsafeGuaranteedRef { $0.drive() }
        } else if io.readable || io.hangup {
            // Idle in the pool: anything readable is a close (or junk) from the server. A lone
            // EPOLLOUT edge (late ACKs) is not.
            worker.upstreams[addressIndex].remove(self)
            close()
        }
    }

    /// Idle timeout (attached connections are timed by their session).
    func timeout() {
        guard session == nil else { return }
        worker.upstreams[addressIndex].remove(self)
        close()
    }

    func close() {
        guard fd >= 0 else { return }
        closeSocket()
        connected = false
        session = nil
        if let b = inBuf { worker.buffers.give(b); inBuf = nil }
        deadline = 0
        worker.upstreamClosed(self)
    }
}

/// Idle keep-alive connections to one upstream address, per worker. LIFO: the most recently used
/// connection is the least likely to have been closed by the server. Not owning: an idle
/// connection stays registered (it is watched for close), so its slot keeps it alive, and every
/// path that closes an idle connection removes it from here first.
final class UpstreamPool {
    let address: SocketAddress
    /// The address as bytes, for access log lines.
    let addressText: [UInt8]
    private var idle: [Unmanaged<UpstreamConnection>] = []

    init(address: SocketAddress) {
        self.address = address
        addressText = Array(address.text.utf8)
    }

    @inline(__always)
    func take() -> Unmanaged<UpstreamConnection>? {
        guard let u = idle.popLast() else { return nil }
        u._withUnsafeGuaranteedRef { $0.poolPosition = -1 }
        return u
    }

    /// Returns a connection to the pool; false (caller closes it) when the pool is full.
    @inline(__always)
    func put(_ u: UpstreamConnection, limit: Int) -> Bool {
        guard idle.count < limit else { return false }
        u.poolPosition = idle.count
        idle.append(Unmanaged.passUnretained(u))
        return true
    }

    func remove(_ u: UpstreamConnection) {
        let i = u.poolPosition
        guard i >= 0, i < idle.count, idle[i].toOpaque() == Unmanaged.passUnretained(u).toOpaque() else { return }
        let last = idle.removeLast()
        if i < idle.count {
            idle[i] = last
            last._withUnsafeGuaranteedRef { $0.poolPosition = i }
        }
        u.poolPosition = -1
    }

    func closeAll() {
        while let ref = idle.popLast() {
            let u = ref.takeUnretainedValue()
            u.poolPosition = -1
            u.close()
        }
    }
}

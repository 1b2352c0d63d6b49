import CNghttp2
import Glibc
import IOCore

/// One client connection the cluster carries to this node: an extended-CONNECT stream of a
/// tunnel on one side, a socket to the node's own entrypoint (the origin, `--forward` or
/// `--http-forward`) on the other. Bytes move unchanged both ways.
///
/// Memory is bounded per stream: cluster → origin bytes wait in `toOrigin` (at most the stream's
/// 64 KiB window, given back with `nghttp2_session_consume` only once the origin's socket took
/// them); origin → cluster bytes wait in `fromOrigin` (one 64 KiB buffer), and the origin is not
/// read while it is full. Buffers are held only while bytes are in flight.
final class AgentStream {
    /// Where the stream is. `request`: headers arriving; `connecting`: the origin's connect is in
    /// progress; `open`: 200 sent, bytes flowing; `answered`: refused (404/400/502 sent with
    /// END_STREAM), waiting for nghttp2 to close it.
    enum Phase { case request, connecting, open, answered }
    enum Kind { case unknown, tls, http }

    unowned(unsafe) var tunnel: AgentTunnel?
    var id: Int32 = 0
    /// Index in the tunnel's stream list.
    var index = -1
    var phase = Phase.request

    // The request, as the callbacks saw it.
    var isConnect = false
    var kind = Kind.unknown
    var headersDone = false

    // The origin's socket.
    private(set) var fd: Int32 = -1
    var slot: UInt32 = 0
    var generation: UInt32 = 0
    var io = Readiness()
    var connectDeadline: UInt64 = 0

    /// Cluster → origin bytes the origin's socket has not taken yet.
    var toOrigin: IOBuffer?
    /// END_STREAM came from the cluster: after `toOrigin` drains, the origin's write side is shut.
    var inboundEnded = false
    var originShut = false
    /// Origin → cluster bytes nghttp2 has not framed yet.
    var fromOrigin: IOBuffer?
    /// The origin sent its FIN: after `fromOrigin` drains, END_STREAM.
    var originEnded = false
    /// The data source said "deferred": resume it when bytes (or the FIN) come.
    var deferred = false
    /// A write to the origin failed inside nghttp2's DATA callback: abort on the next run.
    var failed = false
    /// nghttp2 closed the stream (both ends done, or a reset: `resetCode` != 0).
    var closed = false
    var resetCode: UInt32 = 0
    /// On the tunnel's ready list.
    var ready = false

    static let connectBudgetMs: UInt64 = 10_000

    func reset(id: Int32, tunnel: AgentTunnel) {
        self.id = id
        self.tunnel = tunnel
        index = -1
        phase = .request
        isConnect = false
        kind = .unknown
        headersDone = false
        io = Readiness()
        inboundEnded = false
        originShut = false
        originEnded = false
        deferred = false
        failed = false
        closed = false
        resetCode = 0
        ready = false
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        advance()
        guard let t = tunnel else { return }
        if finished { t.removeStream(self) }
        t.runReady()
    }

    /// Runs the stream one step: the request decided, a connect finished, bytes moved.
    func advance() {
        guard let t = tunnel else { return }
        if failed && !closed { abort(); return }
        switch phase {
        case .request:
            if closed { return }
            guard headersDone else { return }
            start(t)
        case .connecting:
            if closed { closeOrigin(); return }
            guard io.writable else { return }
            let e = Sys.socketError(fd)
            if e != 0 { refuse("502"); return }
            phase = .open
            // Connected: the answer, and a data source for the origin's bytes.
            let rv = AgentH2Setup.withStatus("200") { nv in
                csh2_submit_response(t.h2, id, nv, 1, Unmanaged.passUnretained(self).toOpaque(), AgentH2Setup.readFromOrigin)
            }
            if rv != 0 { abort(); return }
            t.needsFlush()
            pump(t)
        case .open:
            if fd >= 0 { pump(t) }
        case .answered:
            return
        }
    }

    /// The request is complete: refuse it, or connect to the origin its kind names.
    private func start(_ t: AgentTunnel) {
        guard isConnect, kind != .unknown else { refuse("400"); return }
        let target: SocketAddress
        if kind == .tls {
            target = t.agent.settings.forward
        } else if let h = t.agent.settings.httpForward {
            target = h
        } else {
            refuse("404")
            return
        }
        let socket: Int32
        do { socket = try Sys.socket(family: Int32(target.storage.ss_family)) } catch { refuse("502"); return }
        fd = socket
        do {
            (slot, generation) = try t.agent.register(.stream(self), fd: socket)
        } catch {
            Sys.close(socket)
            fd = -1
            refuse("502")
            return
        }
        Sys.setNoDelay(socket)
        phase = .connecting
        connectDeadline = t.agent.now + Self.connectBudgetMs
        do {
            // Connected at once (loopback can be) or not: the first EPOLLOUT says how it ended.
            _ = try Sys.connect(socket, target)
        } catch {
            refuse("502")
            return
        }
    }

    /// Moves bytes both ways while the sockets and buffers let them.
    private func pump(_ t: AgentTunnel) {
        let buffers = t.agent.buffers
        // Cluster → origin.
        while let b = toOrigin, b.count > 0, io.writable {
            let r: IOResult
            do { r = try Sys.write(fd, b.readPointer, b.count) } catch { abort(); return }
            guard case .bytes(let k) = r else { io.writable = false; break }
            if k < b.count { io.writable = false }
            toOrigin!.consume(k)
            t.consume(self, k)
        }
        if let b = toOrigin, b.isEmpty { buffers.give(b); toOrigin = nil }
        if inboundEnded && toOrigin == nil && !originShut && fd >= 0 {
            originShut = true
            Sys.shutdownWrite(fd)
        }
        // Origin → cluster, while `fromOrigin` has room.
        while io.readable && !originEnded && !closed {
            if fromOrigin == nil { fromOrigin = buffers.takeLarge() }
            if fromOrigin!.writableCount == 0 { fromOrigin!.compact() }
            let want = fromOrigin!.writableCount
            guard want > 0 else { break }  // full: nghttp2 drains it as the cluster's window allows
            let r: IOResult
            do { r = try Sys.read(fd, fromOrigin!.writePointer, want) } catch { abort(); return }
            switch r {
            case .bytes(let n):
                fromOrigin!.end += n
                if n < want && !io.hangup { io.readable = false }
                t.resume(self)
            case .wouldBlock:
                io.readable = false
            case .eof:
                originEnded = true
                t.resume(self)
            }
        }
        if let b = fromOrigin, b.isEmpty { buffers.give(b); fromOrigin = nil }
        if closed && (resetCode != 0 || toOrigin == nil) {
            // Reset by the cluster, or both sides ended and the origin has every byte.
            closeOrigin(reset: resetCode != 0)
        }
    }

    /// Answers the request with `status` and END_STREAM; the origin (if any) is closed.
    private func refuse(_ status: StaticString) {
        closeOrigin()
        phase = .answered
        guard let t = tunnel, !closed else { return }
        let rv = AgentH2Setup.withStatus(status) { nv in csh2_submit_response(t.h2, id, nv, 1, nil, nil) }
        if rv != 0 { _ = nghttp2_submit_rst_stream(t.h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_INTERNAL_ERROR.rawValue) }
        t.needsFlush()
    }

    /// An error on the origin's side: RST_STREAM (CANCEL), and the origin is closed.
    func abort() {
        closeOrigin(reset: true)
        phase = .answered
        guard let t = tunnel, !closed else { return }
        _ = nghttp2_submit_rst_stream(t.h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_CANCEL.rawValue)
        t.needsFlush()
    }

    /// The origin's connect took longer than its budget.
    func connectTimedOut() {
        if phase == .connecting { refuse("502") }
    }

    /// Closes the origin's socket (the one place it is closed) and gives its buffers back.
    /// `reset`: the connection was aborted, so the origin gets a reset rather than a clean end.
    func closeOrigin(reset: Bool = false) {
        if fd >= 0 {
            if reset { Sys.resetOnClose(fd) }
            tunnel?.agent.unregister(slot)
            Sys.close(fd)
            fd = -1
        }
        if let t = tunnel {
            // Cluster bytes the origin will never take: their credit goes back to the
            // connection's window, or refused and aborted streams would shrink it to nothing.
            if let b = toOrigin, b.count > 0, id > 0, let h2 = t.h2 { _ = nghttp2_session_consume(h2, id, b.count) }
            if let b = toOrigin { t.agent.buffers.give(b); toOrigin = nil }
            if let b = fromOrigin { t.agent.buffers.give(b); fromOrigin = nil }
        }
    }

    /// Nothing more will happen on this stream: nghttp2 closed it and the origin is closed.
    var finished: Bool { closed && fd < 0 }
}

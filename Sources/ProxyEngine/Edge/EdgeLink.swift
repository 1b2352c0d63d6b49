import CLinux
import Glibc
import IOCore

/// One client connection carried to an edge node through its tunnel: the client's socket (raw
/// TLS for SNI passthrough, plain HTTP for a proxy-mode host, or a center's relay) on one side,
/// an `EdgeStream` of a tunnel on the other. Bytes move unparsed both ways; each direction
/// stops when the side it fills cannot take more (the stream's window, or the client's socket).
///
/// The gateway never decrypts passthrough bytes: the ClientHello it peeked at goes to the agent
/// first, as it came, and the node terminates TLS with its own certificate.
final class EdgeLink: Pollable {
    enum Kind { case tls, http }

    let worker: Worker
    let buffers: BufferPool
    var transport: Transport = .socket(-1)
    var io = Readiness()
    var kind = Kind.tls
    var stream: EdgeStream?
    var closed = true
    /// The client sent its FIN (passed on as END_STREAM).
    var clientEnded = false
    /// The agent's END_STREAM was passed on to the client (our side shut).
    var clientShut = false
    var openedMs: UInt64 = 0
    var lastProgressMs: UInt64 = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    var edgeID = ""
    var client = ""

    init(worker: Worker) {
        self.worker = worker
        buffers = worker.buffers
    }

    /// Starts carrying a client connection (its socket already in our epoll slot) through
    /// `tunnel`; `first` holds what the client sent so far (its ClientHello, or a request head),
    /// sent first. When the tunnel cannot take a stream now, the link closes (the client sees its
    /// connection closed at once) and this returns false.
    @discardableResult
    func open(fd: Int32, transport: Transport, io: Readiness, kind: Kind, authority: String, client: String,
              first: IOBuffer?, through tunnel: EdgeTunnelConnection) -> Bool {
        adoptSocket(fd)
        self.transport = transport
        self.io = io
        self.kind = kind
        self.client = client
        edgeID = tunnel.edge?.id ?? ""
        closed = false
        clientEnded = false
        clientShut = false
        bytesIn = 0
        bytesOut = 0
        openedMs = worker.now
        lastProgressMs = worker.now
        deadline = 0
        queuedTick = 0
        guard let s = tunnel.openStream(for: self, kind: kind, authority: authority, client: client) else {
            if let b = first { buffers.give(b) }
            close(abort: true, reason: "edge tunnel refused a stream")
            return false
        }
        stream = s
        if let b = first {
            if b.count > 0 {
                s.outbound = b  // a large or standard buffer: either goes back to the pool
                bytesIn += UInt64(b.count)
                tunnel.resume(s)
            } else {
                buffers.give(b)
            }
        }
        let t = worker.config.tunnels
        if t.keepaliveIdle > 0 { Sys.setKeepAlive(fd, idle: t.keepaliveIdle, interval: t.keepaliveInterval, count: t.keepaliveCount) }
        updateTimer()
        return true
    }

    /// Owns `fd` only (no tunnel to carry it through): for closing it through `close`.
    func adoptOnly(fd: Int32) {
        adoptSocket(fd)
        transport = .socket(fd)
        stream = nil
        closed = false
        client = ""
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        pump()
    }

    /// The stream has news (an answer, bytes, room, its end).
    func streamChanged() { pump() }

    func pump() {
        guard !closed, let s = stream else { return }
        if s.status != 0 && s.status != 200 {
            close(abort: true, reason: s.status == 404 ? "edge agent has no such entrypoint" : "edge origin unreachable")
            return
        }
        // Agent → client.
        while let b = s.inbound, b.count > 0, io.writable {
            let r: IOResult
            do { r = try transport.write(b.readPointer, b.count) } catch { close(abort: true, reason: "edge client write failed"); return }
            guard case .bytes(let k) = r else { io.writable = false; break }
            if k < b.count && transport.isPlainSocket { io.writable = false }
            s.inbound!.consume(k)
            if s.inbound!.isEmpty { buffers.give(s.inbound!); s.inbound = nil }
            bytesOut += UInt64(k)
            lastProgressMs = worker.now
            s.tunnel?.consumed(s, k)
        }
        if s.inboundEnded && s.inbound == nil && !clientShut {
            clientShut = true
            transport.finishOutput()
        }
        // Client → agent, while the stream has room (and is not reset).
        while io.readable && !clientEnded && !s.closed && s.outboundRoom > 0 {
            if s.outbound == nil { s.outbound = buffers.takeLarge() }
            if s.outbound!.writableCount == 0 { s.outbound!.compact() }
            let want = s.outbound!.writableCount
            let r: IOResult
            do { r = try transport.read(s.outbound!.writePointer, want) } catch { close(abort: true, reason: "edge client read failed"); return }
            switch r {
            case .bytes(let n):
                s.outbound!.end += n
                bytesIn += UInt64(n)
                lastProgressMs = worker.now
                if n < want && !io.hangup && transport.isPlainSocket { io.readable = false }
                s.tunnel?.resume(s)
            case .wouldBlock:
                io.readable = false
            case .eof:
                clientEnded = true
                s.finishOutput()
            }
        }
        if let b = s.outbound, b.isEmpty { buffers.give(b); s.outbound = nil }
        if s.closed {
            // Reset by the agent, or both sides ended: once the client has what came, we are done.
            if s.resetCode != 0 || s.inbound == nil { close(abort: s.resetCode != 0, reason: s.resetCode != 0 ? "edge stream reset" : nil); return }
        } else if clientShut && clientEnded && s.outbound == nil && s.inbound == nil && s.inboundEnded {
            // Both halves closed in order; nghttp2 closes the stream once END_STREAM is out.
        }
        updateTimer()
    }

    private func updateTimer() {
        guard let s = stream else { deadline = 0; return }
        let t = worker.config.timeouts
        if s.status == 0 {
            // The agent must connect to its origin within the upstream connect budget.
            worker.arm(self, deadline: openedMs + t.upstreamConnect)
        } else if s.inbound != nil && !io.writable {
            worker.arm(self, deadline: lastProgressMs + t.send)
        } else {
            deadline = 0
        }
    }

    func timeout() {
        guard !closed, let s = stream else { return }
        if s.status == 0 {
            close(abort: true, reason: "edge agent did not answer")
        } else if s.inbound != nil && !io.writable {
            close(abort: true, reason: "edge client send timeout")
        }
    }

    /// The tunnel under this link closed: the client cannot go on.
    func tunnelGone() {
        stream = nil
        close(abort: true, reason: "edge tunnel closed")
    }

    func close(abort: Bool, reason: StaticString?) {
        guard !closed else { return }
        closed = true
        if let s = stream {
            stream = nil
            s.tunnel?.linkDone(s, abort: abort)
        }
        if let reason { worker.log.error(reason, "edge \(edgeID) client \(client) in=\(bytesIn) out=\(bytesOut)") }
        if abort {
            // Passthrough bytes were cut mid-stream: a reset tells the client at once (a FIN
            // would look like a clean end of what was sent, after its buffer drains).
            switch transport {
            case .socket(let fd) where fd >= 0: Sys.resetOnClose(fd)
            case .tls(let fd, _): Sys.resetOnClose(fd)
            default: break
            }
        } else if case .tls(_, let t) = transport {
            _ = t.shutdown()
        }
        transport = .socket(-1)
        closeSocket()
        deadline = 0
        worker.edgeLinkClosed(self)
    }
}

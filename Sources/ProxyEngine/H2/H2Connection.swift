import CLinux
import CNghttp2
import Glibc
import HTTP1Codec
import H2Wire
import IOCore
import TLSTerminator

/// One HTTP/2 client connection (over TLS by ALPN, or h2c with prior knowledge): nghttp2 frames
/// it, each request stream is proxied by a `Session` of its own (see `H2Stream`).
///
/// nghttp2 runs in its memory mode: bytes read from the socket (or TLS) are fed to
/// `nghttp2_session_mem_recv`, and what it has to send is gathered into one buffer and written
/// with one call per loop turn, however many streams answered in that turn. Callbacks only record
/// what happened; sessions are driven after nghttp2 returns (`runReady`), never from inside it.
///
/// Limits (RFC 9113 §10.5): concurrent streams, header list size, HPACK table size, the incoming
/// RST_STREAM rate (CVE-2023-44487) and CONTINUATION frames per header block (CVE-2024-27316) are
/// all set explicitly from `EngineConfig.HTTP2`; nghttp2 answers a breach with GOAWAY.
final class H2Connection: Pollable {
    let worker: Worker
    let buffers: BufferPool
    let limits: EngineConfig.HTTP2
    var h2: OpaquePointer?
    /// The client socket, plain (h2c) or through TLS; the connection owns the socket and closes
    /// it in `close()`.
    var transport: Transport = .socket(-1)
    var tls: TLSConnection? {
        if case .tls(_, let t) = transport { return t }
        return nil
    }
    /// The client sent SNI: a request for a name its certificate does not cover gets 421.
    var sniSent = false
    var io = Readiness()
    var listenerIndex = 0
    let clientIP = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
    var clientIPLength = 0
    var streams: [H2Stream] = []
    private var readyStreams: [H2Stream] = []
    var heads: [H2Stream] = []
    /// Frames to write, gathered from nghttp2.
    private var out: IOBuffer?
    /// nghttp2's last chunk that did not fit in `out` (valid until the next mem_send).
    /// Frames nghttp2 made that `out` had no room for yet.
    var output = H2Output()
    /// On the worker's list of connections to flush at the end of the turn.
    var dirty = false
    /// GOAWAY sent (draining): close once the last stream ends.
    var goingAway = false
    var closed = true
    var lastActiveMs: UInt64 = 0
    /// When the socket last took bytes (the send timeout counts from here).
    var lastWriteMs: UInt64 = 0
    /// Streams whose session is running: while none is, the connection is timed (a client
    /// that opens streams and never completes them is not left alone).
    var sessionsRunning = 0
    /// Streams opened on this connection so far.
    var streamsOpened = 0
    /// Token bucket for the resets nghttp2 sends on its own (stream errors the client provokes:
    /// "MadeYouReset", CVE-2025-8671); the client's own resets have nghttp2's bucket.
    var resetTokens: Double = 0
    var resetRefillMs: UInt64 = 0
    /// The request head being decoded: its pseudo-header fields and cookies (HEADERS and its
    /// CONTINUATIONs arrive without anything in between, RFC 9113 §6.10).
    let block: H2HeaderBlock

    init(worker: Worker) {
        self.worker = worker
        buffers = worker.buffers
        limits = worker.config.http2
        block = H2HeaderBlock(capacity: worker.config.limits.maxRequestLine + 1024)
    }

    deinit {
        clientIP.deallocate()
        if let h2 { nghttp2_session_del(h2) }
    }

    /// Takes over a client connection whose first bytes (the preface onward, maybe) are in
    /// `leftover`. The caller has put us in the connection's epoll slot.
    func open(fd: Int32, transport: Transport, listener: Int, io: Readiness, clientIP ip: UnsafePointer<UInt8>, _ ipLength: Int) {
        adoptSocket(fd)
        self.transport = transport
        sniSent = tls?.serverName != nil
        self.io = io
        listenerIndex = listener
        clientIP.update(from: ip, count: ipLength)
        clientIPLength = ipLength
        closed = false
        goingAway = false
        dirty = false
        sessionsRunning = 0
        streamsOpened = 0
        resetTokens = Double(limits.resetBurst)
        resetRefillMs = worker.now
        lastActiveMs = worker.now
        lastWriteMs = worker.now
        deadline = 0
        queuedTick = 0
        var s: OpaquePointer?
        let setup = worker.h2.setup!
        if nghttp2_session_server_new2(&s, setup.callbacks, Unmanaged.passUnretained(self).toOpaque(), setup.options) != 0 {
            fatalError("nghttp2_session_server_new2 failed")
        }
        h2 = s
        setup.settings.withUnsafeBufferPointer { e in
            _ = nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), e.baseAddress, e.count)
        }
        _ = nghttp2_session_set_local_window_size(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(limits.connectionWindowSize))
    }

    /// Bytes the HTTP/1.1 session already read (the h2c preface and what followed it).
    func feed(_ p: UnsafePointer<UInt8>, _ n: Int) {
        guard n > 0, let h2 else { return }
        let rv = nghttp2_session_mem_recv(h2, p, n)
        if rv < 0 { fail(Int32(truncatingIfNeeded: rv)) }
    }

    @inline(__always)
    func handle(_ events: UInt32) {
        io.apply(events)
        service()
    }

    /// Reads and processes what the client sent, drives the streams that can move, writes.
    func service() {
        guard !closed else { return }
        let scratch = worker.h2.scratch
        let size = H2Resources.scratchSize
        // A client that does not read what we owe it is not read either (bounded output).
        while io.readable && !(out.map { $0.count > 0 } ?? false && !io.writable) {
            let r: IOResult
            do {
                r = try transport.read(scratch, size)
            } catch {
                close()
                return
            }
            switch r {
            case .bytes(let n):
                if n < size && !io.hangup && transport.isPlainSocket { io.readable = false }
                lastActiveMs = worker.now
                let rv = nghttp2_session_mem_recv(h2, scratch.assumingMemoryBound(to: UInt8.self), n)
                if rv < 0 { fail(Int32(truncatingIfNeeded: rv)); return }
                runReady()
                if closed { return }
            case .wouldBlock:
                io.readable = false
            case .eof:
                close()
                return
            }
        }
        runReady()
        flush()
    }

    /// nghttp2 refused the input: a protocol error, a flood of SETTINGS/PING acknowledgements,
    /// too many CONTINUATIONs. Some of these it has already answered with GOAWAY, some not
    /// (RFC 9113 §5.4.1 wants one): make sure one is queued, send it, and close.
    private func fail(_ error: Int32) {
        if let h2 {
            let flood = error == NGHTTP2_ERR_FLOODED.rawValue || error == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue
            // Refused (harmlessly) when a GOAWAY is already on its way.
            _ = nghttp2_session_terminate_session(h2, flood ? NGHTTP2_ENHANCE_YOUR_CALM.rawValue : NGHTTP2_PROTOCOL_ERROR.rawValue)
        }
        worker.log.error("h2_connection_error", "client \(String(decoding: UnsafeBufferPointer(start: clientIP, count: clientIPLength), as: UTF8.self)): \(String(cString: nghttp2_strerror(error)))")
        flush(finalWrite: true)
        close()
    }

    // MARK: streams

    func markReady(_ s: H2Stream) {
        guard !s.ready else { return }
        s.ready = true
        readyStreams.append(s)
    }

    /// Drives the streams whose state changed: starts sessions for complete heads, hands body
    /// bytes and output room to running ones, and ends those nghttp2 closed.
    func runReady() {
        var i = 0
        while i < readyStreams.count {
            let s = readyStreams[i]
            i += 1
            s.ready = false
            if s.closed {
                if let session = s.session {
                    // Closed in order (both ends sent END_STREAM): let the session see the end of
                    // the request first (a tunnel reads its EOF and ends cleanly).
                    if s.requestEnded && s.outputEnded {
                        session.io.readable = true
                        session.drive()
                    }
                    s.session?.streamReset()
                }
                removeStream(s)
                continue
            }
            if let session = s.session {
                if s.body != nil || s.requestEnded { session.io.readable = true }
                if s.writerBlocked && s.hasRoom {
                    s.writerBlocked = false
                    session.io.writable = true
                }
                session.drive()
            } else if s.head != nil {
                worker.startStreamSession(s, self)
            }
        }
        readyStreams.removeAll(keepingCapacity: true)
    }

    func beginStream(_ id: Int32) {
        let s = worker.h2.streamCache.popLast() ?? H2Stream()
        s.reset()
        s.connection = self
        s.id = id
        s.index = streams.count
        streams.append(s)
        s.head = buffers.take()
        streamsOpened += 1
        block.reset(buffers)
        nghttp2_session_set_stream_user_data(h2, id, Unmanaged.passUnretained(s).toOpaque())
    }

    func removeStream(_ s: H2Stream) {
        let i = s.index
        guard i >= 0, i < streams.count, streams[i] === s else { return }
        let last = streams.removeLast()
        if i < streams.count {
            streams[i] = last
            last.index = i
        }
        if s.unconsumed > 0, let h2 {
            _ = nghttp2_session_consume_connection(h2, s.unconsumed)
            s.unconsumed = 0
        }
        s.release(buffers)
        s.connection = nil
        s.session = nil
        s.index = -1
        if worker.h2.streamCache.count < 1024 { worker.h2.streamCache.append(s) }
        if streams.isEmpty { lastActiveMs = worker.now }
    }

    /// The session read `n` DATA bytes: give them back to the client's windows.
    func consumed(_ s: H2Stream, _ n: Int) {
        guard n > 0, let h2 else { return }
        s.unconsumed -= n
        _ = nghttp2_session_consume(h2, s.id, n)
        needsFlush()
    }

    func resume(_ s: H2Stream) {
        guard let h2, !s.closed else { return }
        _ = nghttp2_session_resume_data(h2, s.id)
    }

    /// A stream's session ended: what the client sent that nobody will read is acknowledged at
    /// once (its windows move, so it can finish sending and is answered by the RST_STREAM that
    /// follows a complete response), and the buffer goes back.
    func sessionEnded(_ s: H2Stream) {
        sessionsRunning -= 1
        if let b = s.body { buffers.give(b); s.body = nil }
        if s.unconsumed > 0, let h2 {
            _ = nghttp2_session_consume(h2, s.id, s.unconsumed)
            s.unconsumed = 0
            needsFlush()
        }
    }

    /// A stream reset that nghttp2 sent on its own (a stream error the client caused): spend a
    /// token; out of tokens, the connection ends (ENHANCE_YOUR_CALM).
    func serverReset() {
        let now = worker.now
        resetTokens = min(Double(limits.resetBurst), resetTokens + Double(now - resetRefillMs) * Double(limits.resetRate) / 1000)
        resetRefillMs = now
        resetTokens -= 1
        if resetTokens < 0, let h2 {
            _ = nghttp2_session_terminate_session(h2, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            worker.log.error("h2_connection_error", "client \(String(decoding: UnsafeBufferPointer(start: clientIP, count: clientIPLength), as: UTF8.self)): too many stream errors")
            needsFlush()
        }
    }

    func resetStream(_ s: H2Stream, error: UInt32) {
        guard let h2, !s.closed else { return }
        s.resetByUs = true
        _ = nghttp2_submit_rst_stream(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), s.id, error)
        needsFlush()
    }

    func queueHead(_ s: H2Stream) {
        guard !s.headQueued else { return }
        s.headQueued = true
        heads.append(s)
    }

    /// Output is waiting: write it at the end of this loop turn (one write for every stream).
    @inline(__always)
    func needsFlush() {
        guard !dirty && !closed else { return }
        dirty = true
        worker.h2.dirty.append(self)
    }

    // MARK: writing

    /// Submits the response heads the sessions wrote, then writes what nghttp2 has for the
    /// client, as long as the socket takes it. Closes when nghttp2 is done with the connection.
    func flush(finalWrite: Bool = false) {
        dirty = false
        guard !closed, let h2 else { return }
        if !heads.isEmpty { submitHeads() }
        var rounds = 0
        while true {
            if !output.produce(h2, into: &out, buffers: buffers) { close(); return }
            guard let b = out, b.count > 0 else { break }
            if !io.writable { break }
            let r: IOResult
            do {
                r = try transport.write(b.readPointer, b.count)
            } catch {
                close()
                return
            }
            guard case .bytes(let n) = r else { io.writable = false; break }
            out!.consume(n)
            lastWriteMs = worker.now
            // A short write on a socket means it is full; through TLS (partial writes, one
            // record at a time) it does not: the next write says whether the socket is.
            if n < b.count && transport.isPlainSocket { io.writable = false; break }
            lastActiveMs = worker.now
            // Data sources that made room may have unblocked their sessions: let them write more.
            if !readyStreams.isEmpty && rounds < 8 {
                rounds += 1
                runReady()
                if closed { return }
                if !heads.isEmpty { submitHeads() }
            }
        }
        if let b = out, b.isEmpty, output.isEmpty { buffers.give(b); out = nil }
        if finalWrite { return }
        if !readyStreams.isEmpty { needsFlush() }
        let idle = out == nil && output.isEmpty
        if idle && nghttp2_session_want_read(h2) == 0 && nghttp2_session_want_write(h2) == 0 { close(); return }
        if idle && goingAway && streams.isEmpty { close(); return }
        updateTimer()
    }


    // MARK: timers

    private func updateTimer() {
        let t = worker.config.timeouts
        if let b = out, b.count > 0, !io.writable {
            worker.arm(self, deadline: lastWriteMs + t.send)
        } else if streamsOpened == 0 {
            // The preface and nothing else yet: as long as an HTTP/1.1 client gets for its head.
            worker.arm(self, deadline: lastActiveMs + t.clientHeader)
        } else if streams.isEmpty {
            worker.arm(self, deadline: lastActiveMs + t.clientIdle)
        } else if sessionsRunning == 0 {
            // Streams whose head never completed, or whose response is done while the client
            // keeps its side open: each session had its own timers; now the connection's run.
            worker.arm(self, deadline: lastActiveMs + t.clientHeader)
        } else {
            deadline = 0
        }
    }

    func timeout() {
        if let b = out, b.count > 0, !io.writable {
            close()
        } else if streams.isEmpty || sessionsRunning == 0 {
            // Idle: say goodbye properly (GOAWAY), then close.
            if let h2 { _ = nghttp2_session_terminate_session(h2, NGHTTP2_NO_ERROR.rawValue) }
            flush(finalWrite: true)
            close()
        }
    }

    // MARK: shutdown

    /// The worker is draining: GOAWAY naming the last stream we will serve; streams in flight
    /// finish, then the connection closes (RFC 9113 §6.8).
    func drain() {
        guard !closed, !goingAway, let h2 else { return }
        goingAway = true
        _ = nghttp2_submit_goaway(h2, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(h2),
                                  NGHTTP2_NO_ERROR.rawValue, nil, 0)
        flush()
    }

    func close() {
        guard !closed else { return }
        closed = true
        dirty = false
        block.reset(buffers)
        // Sessions of streams still open end with their streams.
        while let s = streams.last {
            if let session = s.session { session.streamReset() }
            removeStream(s)
        }
        readyStreams.removeAll(keepingCapacity: true)
        heads.removeAll(keepingCapacity: true)
        if let b = out { buffers.give(b); out = nil }
        output.reset()
        if let h2 { nghttp2_session_del(h2) }
        h2 = nil
        // close_notify (best effort), the SSL freed, then the socket: closed here and nowhere else.
        tls?.shutdown()
        transport = .socket(-1)
        closeSocket()
        deadline = 0
        worker.h2Closed(self)
    }
}

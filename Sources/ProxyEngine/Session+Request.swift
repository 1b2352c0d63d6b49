import CLinux
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver

/// The request side of a session: reading and parsing the head, routing, choosing an upstream
/// connection, and streaming the rewritten head and the body to it.
extension Session {
    func stepHead() -> Bool {
        if requestsServed == 0, stream == nil, let b = inBuf, b.count > 0, b.readPointer[0] == 0x16, onClusterListener {
            return beginRelayedPeek()  // a TLS record: an edge connection another center relays
        }
        if requestsServed == 0, let b = inBuf, b.count > 0, b.readPointer[0] == 0x50, worker.h2.cleartextListeners[listenerIndex], stream == nil {
            // "P": maybe the HTTP/2 connection preface (h2c with prior knowledge, RFC 9113 §3.3).
            switch H2Preface.match(b.readPointer, b.count) {
            case .complete:
                worker.adoptH2(self, leftover: b)
                return false
            case .partial:
                guard io.readable else { return false }
                return readClient()
            case .no:
                break
            }
        }
        if let b = inBuf, b.count > 0 {
            switch scanner.scan(b.readPointer, count: b.count) {
            case .complete(let length):
                beginExchange(headLength: length)
                return true
            case .failed(let e):
                copyRequestLine(b.readPointer, b.count)
                respondError(e.status, e.code)
                return true
            case .needMore:
                if b.writableCount == 0 && !makeRoomForHead() { return true }
            }
        }
        guard io.readable else { return false }
        let wasEmpty = inBuf?.isEmpty ?? true
        guard readClient() else {
            if phase == .head, let b = inBuf, b.isEmpty { buffers.give(b); inBuf = nil }
            return false
        }
        if wasEmpty && !scanner.started && requestsServed > 0 { headStartMs = worker.now }
        return true
    }

    /// The head does not fit yet: compact, or move to a large buffer.
    private func makeRoomForHead() -> Bool {
        if buffers.makeRoom(&inBuf!) { return true }
        respondError(431, HTTPError.headersTooLarge.code)
        return false
    }

    /// Reads from the client into `inBuf`. True when bytes arrived; on EOF or error the session
    /// is closed (a client that leaves mid-request gets nothing more).
    @inline(__always)
    func readClient() -> Bool {
        if inBuf == nil { inBuf = buffers.take() }
        if inBuf!.writableCount == 0 {
            inBuf!.compact()
            if inBuf!.writableCount == 0 { return false }
        }
        let want = inBuf!.writableCount
        let r: IOResult
        do { r = try clientRead(inBuf!.writePointer, want) } catch {
            abort(reason: "client read failed")
            return false
        }
        switch r {
        case .bytes(let n):
            inBuf!.end += n
            // A short read means drained, unless the FIN came with this data: then no further
            // edge will come, and the next read must run to see the EOF.
            // Through TLS or from an HTTP/2 stream a short read says nothing about the socket.
            if n < want && !io.hangup && transport.isPlainSocket { io.readable = false }
            return true
        case .wouldBlock:
            io.readable = false
            return false
        case .eof:
            if phase == .head && !scanner.started { close() } else { abort(reason: "client closed mid-request") }
            return false
        }
    }

    private func beginExchange(headLength: Int) {
        let b = inBuf!
        let base = UnsafePointer(b.base)
        let start = b.start + scanner.headStart
        let end = b.start + headLength
        record.startUs = cl_monotonic_us()
        record.bytesIn = UInt64(headLength)
        do {
            req = try RequestHead.parse(base, start: start, end: end, headers: headers)
        } catch {
            copyRequestLine(base + start, end - start)
            respondError(error.status, error.code)
            return
        }
        if logged { copyRequestLine(base + start, end - start) }
        // The head leaves the buffer now; its bytes stay where they are (consuming only moves
        // offsets) until the next read, so the routing and rewriting below may still read them.
        inBuf!.consume(headLength)
        scanner.reset()
        phase = .exchange
        if req.requestIDStart >= 0 {
            record.requestID.update(from: base + req.requestIDStart, count: req.requestIDLength)
            record.requestIDLength = req.requestIDLength
        } else {
            generateRequestID()
        }
        let answerContinue = exchange.begin(framing: req.framing, expectContinue: req.expectContinue,
                                            closes: req.close || worker.draining, headRequest: req.method == .head)

        if worker.edgeTunnelListeners[listenerIndex] && isEdgeAttachPath(base) {
            answerAttach(base)
            return
        }
        // One decision (RouteResolver's), acted on here and never re-derived.
        let lookupNode: RegistryNode?
        switch router.decide(req, headers: headers, base: base, listener: listenerIndex, now: worker.wallMs) {
        case .forward(let f):
            routeIndex = f.route
            switch take(f, base) {
            case .ready: lookupNode = nil
            case .lookup(let node): lookupNode = node
            case .answered: return
            case .edge(let edge):
                if !carryRequestToEdge(edge, headStart: start, headEnd: end, host: hostString(base)) {
                    retryAfterSeconds = 1
                    respondError(503, "edge tunnel not ready", reusable: true)
                }
                return
            }
        case .redirect(let r):
            respondRedirect(base, r)
            return
        case .reject(let r):
            routeIndex = r.route
            retryAfterSeconds = r.retryAfterSeconds
            errorOwner = r.owner
            respondError(r.status, r.code, reusable: true)
            return
        }

        // The rewritten head: the original, the host once more (Host and X-Forwarded-Host), ", "
        // after each extended list value, and our own fields.
        var need = (end - start) + max(req.hostLength, 0) + 2 * headers.count + HeadWriter.overhead
            + record.clientIPLength + record.requestIDLength
        if sticky.pod != .none, let cluster = router.cluster { need += cluster.nodeBytes.count + cluster.secret.count + 48 }
        if signRoute >= 0 { need += APISigner.overhead }
        guard need <= BufferPool.largeSize else {
            respondError(431, HTTPError.headersTooLarge.code)
            return
        }
        var out = need <= BufferPool.standardSize ? buffers.take() : buffers.takeLarge()
        HeadWriter.request(into: &out, base, req, headers, clientIP: record.clientIP, clientIPLength: record.clientIPLength,
                           requestID: record.requestID, requestIDLength: record.requestIDLength, https: secure,
                           pod: sticky.pod, cluster: router.cluster)
        if signRoute >= 0, let target = router.keyedTargets[signRoute] {
            worker.apiSigner.sign(&out, secret: target.signingSecret, nowSeconds: worker.wallMs / 1000)
        }
        if secure { appendHSTS() }
        leg.requestHeadOut = out
        leg.requestHeadSent = 0
        if answerContinue {
            // We read the body ourselves, so we answer the expectation (as nginx does); the
            // upstream gets no Expect field.
            var c = buffers.take()
            c.append("HTTP/1.1 100 Continue\r\n\r\n")
            clientOut = c
        }
        leg.attempts = 0
        if let node = lookupNode {
            let settings = worker.portLookups[sticky.pool] ?? EngineConfig.PortLookup()
            _ = startPortLookup(node: node, settings: settings)
        } else {
            acquireUpstream(fresh: false)
        }
    }

    /// A plain listener that only sends clients to HTTPS: 308 (method and body kept, RFC 9110
    /// §15.4.9) to the same host and target on the HTTPS port.
    private func respondRedirect(_ base: UnsafePointer<UInt8>, _ r: Redirect) {
        guard r.base != nil || (req.hostStart >= 0 && req.hostNameLength > 0) else {
            respondError(400, "no host to redirect to", reusable: true)
            return
        }
        record.status = r.status
        if !exchange.requestAllSeen { exchange.closeAfterwards() }
        var b = buffers.take()
        let fits: Bool
        if let location = r.base {
            fits = HeadWriter.edgeRedirect(into: &b, base: location, path: base + req.pathStart, pathLength: req.pathLength,
                                           close: exchange.closeAfter, requestID: record.requestID, requestIDLength: record.requestIDLength)
        } else {
            fits = HeadWriter.redirect(into: &b, host: base + req.hostStart, hostLength: req.hostNameLength,
                                       port: r.port, path: base + req.pathStart, pathLength: req.pathLength,
                                       close: exchange.closeAfter, requestID: record.requestID, requestIDLength: record.requestIDLength)
        }
        guard fits else {
            buffers.give(b)
            respondError(414, "target too long to redirect", reusable: true)
            return
        }
        _ = exchange.answerOwn()
        clientOut = b
        phase = .responding
    }

    /// `Strict-Transport-Security` on responses of a TLS listener that sets `hsts`.
    private func appendHSTS() {
        let line = worker.tls.hstsLines[listenerIndex]
        guard !line.isEmpty, responseExtraLength + line.count <= Session.responseExtraCapacity else { return }
        line.withUnsafeBytes { (responseExtra + responseExtraLength).update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: $0.count) }
        responseExtraLength += line.count
    }

    /// Copies "METHOD target" (the request line up to the version, truncated) for the access log.
    func copyRequestLine(_ p: UnsafePointer<UInt8>, _ n: Int) {
        var i = 0
        var spaces = 0
        let cap = AccessRecord.requestLineCapacity
        while i < n && i < cap {
            let c = p[i]
            if c == 0x0D || c == 0x0A { break }
            if c == 0x20 { spaces += 1; if spaces == 2 { break } }
            record.requestLine[i] = c < 0x20 || c == 0x7F || c == 0x22 ? 0x3F : c
            i += 1
        }
        record.requestLineLength = i
    }

    /// Takes an idle pooled connection (unless `fresh`) or starts a new connect.
    func acquireUpstream(fresh: Bool) {
        leg.connectStartMs = worker.now
        if logged { record.upstreamStartUs = cl_monotonic_us() }
        if !fresh, let ref = worker.upstreams[leg.addressIndex].take() {
            ref._withUnsafeGuaranteedRef { u in
                u.reused = true
                u.session = self
                u.deadline = 0
            }
            leg.connectionRef = ref
            return
        }
        let u = worker.makeUpstream()
        do {
            try u.connect(to: leg.addressIndex)
        } catch {
            worker.recycleUnused(u)
            log.error("upstream_connect", error.description)
            worker.stats.upstreamError(.connect)
            answerConnectFailure("upstream connect failed")
            return
        }
        u.session = self
        upstream = u
    }

    /// Streams the rewritten head and then the body to the upstream, while both sides can move.
    @inline(__always)
    func pumpRequest(_ u: UpstreamConnection) -> Bool {
        guard u.connected, !exchange.requestCut else { return false }
        var progress = false
        while true {
            if requestBodyReady == 0 && !exchange.requestAllSeen, let b = inBuf, b.count > 0 {
                guard validateRequestBody() else { return true }
            }
            let headLeft = leg.requestHeadOut.map { $0.end - leg.requestHeadSent } ?? 0
            if headLeft == 0 && requestBodyReady == 0 {
                if exchange.requestAllSeen || !io.readable { break }
                guard readClient() else { break }
                progress = true
                continue
            }
            guard u.io.writable else { break }
            let total = headLeft + requestBodyReady
            let r: IOResult
            do {
                if headLeft > 0 {
                    r = try Sys.writev2(u.fd, leg.requestHeadOut!.base + leg.requestHeadSent, headLeft,
                                        requestBodyReady > 0 ? UnsafeRawPointer(inBuf!.readPointer) : nil, requestBodyReady)
                } else {
                    r = try Sys.write(u.fd, inBuf!.readPointer, requestBodyReady)
                }
            } catch {
                // Answered already: finish the response, then close. Else the exchange failed.
                if exchange.upstreamStoppedReading() == .finishResponse { return true }
                upstreamFailed(status: 502, "upstream write failed", .reset, retryable: true)
                return true
            }
            guard case .bytes(let n) = r else { u.io.writable = false; break }
            progress = true
            let h = min(n, headLeft)
            leg.requestHeadSent += h
            let k = n - h
            if k > 0 {
                inBuf!.consume(k)
                requestBodyReady -= k
                record.bytesIn += UInt64(k)
            }
            if n < total { u.io.writable = false; break }
        }
        if leg.requestSentMs == 0 && exchange.requestAllSeen && requestBodyReady == 0 && (leg.requestHeadOut.map { leg.requestHeadSent == $0.end } ?? true) {
            leg.requestSentMs = worker.now
        }
        return progress
    }

    /// Marks the body bytes at the front of `inBuf` as ready to forward, checking chunked framing.
    /// False when the framing is bad (the session has then answered or aborted).
    private func validateRequestBody() -> Bool {
        let b = inBuf!
        do {
            requestBodyReady = try exchange.requestBody(UnsafePointer(b.readPointer), b.count)
        } catch {
            requestBodyReady = 0
            respondError(error.status, error.code)
            return false
        }
        return true
    }

    /// An upstream failure before or during the response. A reused connection that failed before
    /// any response byte is retried once on a fresh connection when the request is idempotent and
    /// has no body (the server may have closed it just as we sent: RFC 9112 §9.3.1).
    func upstreamFailed(status: Int, _ code: StaticString, _ kind: UpstreamErrorKind, retryable: Bool) {
        guard let u = upstream else {
            worker.stats.upstreamError(kind)
            respondError(status, code, reusable: true)
            return
        }
        if exchange.responseStarted { worker.stats.upstreamError(kind); abort(reason: code); return }
        if retryable && u.reused && leg.attempts == 0 && req.method.isIdempotent && req.framing == .none
            && !respScanner.started && (u.inBuf?.isEmpty ?? true) {
            leg.attempts += 1
            dropUpstream()
            leg.requestHeadSent = 0
            leg.requestSentMs = 0
            acquireUpstream(fresh: true)
            return
        }
        worker.stats.upstreamError(kind)
        if kind == .connect { answerConnectFailure(code); return }
        respondError(status, code, reusable: true)
    }

    /// No connection to the upstream: 502, or for a pod's owning center 503 naming it, with
    /// `Retry-After` (the center may be restarting; its heartbeat going stale turns this into
    /// "pod owner down"). Never retried on another center: the pod's data is on its owner.
    private func answerConnectFailure(_ code: StaticString) {
        if case .center = sticky.pod {
            retryAfterSeconds = 1
            errorOwner = sticky.node?.name
            respondError(503, "pod owner unreachable", reusable: true)
            return
        }
        respondError(502, code, reusable: true)
    }

    /// Clears the per-exchange state and returns its buffers.
    func resetExchange() {
        if let b = leg.requestHeadOut { buffers.give(b); leg.requestHeadOut = nil }
        if let b = clientOut { buffers.give(b); clientOut = nil }
        leg.requestHeadSent = 0
        exchange = Exchange()
        requestBodyReady = 0
        routeIndex = -1
        edgeRelay = false
        signRoute = -1
        tunnel.webSocket = false
        leg.addressIndex = -1
        responseExtraLength = 0
        retryAfterSeconds = 0
        errorOwner = nil
        sticky.reset()
        respScanner.reset()
        responseBodyReady = 0
        record.reset()
        leg.requestSentMs = 0
    }

    /// After a response: wait for the next request on this connection (maybe already buffered).
    func nextRequest() {
        if let p = stream { finishStream(p); return }
        resetExchange()
        phase = .head
        scanner.reset()
        idleSinceMs = worker.now
        headStartMs = worker.now
        if let b = inBuf, b.isEmpty { buffers.give(b); inBuf = nil }
    }
}

import CLinux
import Glibc
import HTTP1Codec
import IOCore

/// The response side of a session: connect completion, reading and checking the upstream's head,
/// rewriting it, and streaming the body back with the framing the client can take.
extension Session {
    enum UpstreamRead { case bytes, blocked, eof, failed }

    func stepExchange() -> Bool {
        if lookupActive, let l = lookup { return stepPortLookup(l) }
        guard let u = upstreamRef else { return false }
        return u._withUnsafeGuaranteedRef { stepExchange($0) }
    }

    private func stepExchange(_ u: UpstreamConnection) -> Bool {
        if !u.connected && u.io.writable {
            let err = u.finishConnect()
            if err != 0 {
                forgetContainerPortIfRefused(err)
                log.error("upstream_connect", SysError("connect", err).description)
                upstreamFailed(status: 502, "upstream connect failed", .connect, retryable: false)
                return true
            }
        }
        let sent = pumpRequest(u)
        if phase != .exchange { return true }
        let received = pumpResponse(u)
        return sent || received
    }

    func pumpResponse(_ u: UpstreamConnection) -> Bool {
        var progress = false
        while phase == .exchange {
            // Body bytes already buffered join the head in the same writev.
            if respHeadDone && respPending == 0 && !respAllSeen, let b = u.inBuf, b.count > 0 {
                guard validateResponseBody(u) else { return true }
            }
            // 1. Whatever is ready for the client goes first: our head bytes, then body bytes.
            let outLeft = clientOut?.count ?? 0
            if outLeft > 0 || respPending > 0 {
                guard io.writable else { break }
                let total = outLeft + respPending
                let r: IOResult
                do {
                    if outLeft > 0 {
                        r = try clientWritev2(clientOut!.readPointer, outLeft,
                                            respPending > 0 ? UnsafeRawPointer(u.inBuf!.readPointer) : nil, respPending)
                    } else {
                        r = try clientWrite(u.inBuf!.readPointer, respPending)
                    }
                } catch {
                    abort(reason: "client write failed")
                    return true
                }
                guard case .bytes(let n) = r else { io.writable = false; break }
                progress = true
                bytesOut += UInt64(n)
                let h = min(n, outLeft)
                if h > 0 {
                    clientOut!.consume(h)
                    if clientOut!.isEmpty { buffers.give(clientOut!); clientOut = nil }
                }
                if n > h {
                    u.inBuf!.consume(n - h)
                    respPending -= n - h
                }
                if n < total { io.writable = false; break }
                continue
            }
            guard u.connected else { break }
            if respHeadDone && respAllSeen {
                finishExchange(u)
                return true
            }
            // 2. The response head.
            if !respHeadDone {
                if let b = u.inBuf, b.count > 0 {
                    switch respScanner.scan(b.readPointer, count: b.count) {
                    case .complete(let length):
                        guard beginResponse(u, headLength: length) else { return true }
                        progress = true
                        continue
                    case .failed:
                        upstreamFailed(status: 502, "invalid upstream response head", .invalidResponse, retryable: false)
                        return true
                    case .needMore:
                        if b.writableCount == 0 && !growUpstreamBuffer(u) { return true }
                    }
                }
                switch readUpstream(u) {
                case .bytes: progress = true; continue
                case .blocked: break
                case .eof:
                    upstreamFailed(status: 502, "upstream closed before responding", .reset, retryable: true)
                    return true
                case .failed:
                    upstreamFailed(status: 502, "upstream read failed", .reset, retryable: true)
                    return true
                }
                break
            }
            // 3. The body.
            if respPending == 0 && !respAllSeen, let b = u.inBuf, b.count > 0 {
                guard validateResponseBody(u) else { return true }
                progress = true
                continue
            }
            if respAllSeen { continue }
            switch readUpstream(u) {
            case .bytes: progress = true; continue
            case .blocked: break
            case .eof:
                if resp.framing == .untilClose { respAllSeen = true; progress = true; continue }
                abort(reason: "upstream closed mid-body")
                return true
            case .failed:
                abort(reason: "upstream read failed")
                return true
            }
            break
        }
        return progress
    }

    @inline(__always)
    private func readUpstream(_ u: UpstreamConnection) -> UpstreamRead {
        guard u.io.readable else { return .blocked }
        if u.inBuf == nil { u.inBuf = buffers.take() }
        if u.inBuf!.writableCount == 0 {
            u.inBuf!.compact()
            if u.inBuf!.writableCount == 0 { return .blocked }
        }
        let want = u.inBuf!.writableCount
        let r: IOResult
        do { r = try Sys.read(u.fd, u.inBuf!.writePointer, want) } catch { return .failed }
        switch r {
        case .bytes(let n):
            u.inBuf!.end += n
            if n < want && !u.io.hangup { u.io.readable = false }  // see Session.readClient
            return .bytes
        case .wouldBlock:
            u.io.readable = false
            return .blocked
        case .eof:
            return .eof
        }
    }

    private func growUpstreamBuffer(_ u: UpstreamConnection) -> Bool {
        if buffers.makeRoom(&u.inBuf!) { return true }
        upstreamFailed(status: 502, "upstream response head too large", .invalidResponse, retryable: false)
        return false
    }

    /// Parses and checks the upstream's head, drops interim (1xx) responses, and writes the
    /// rewritten head for the client. False when the response was refused (502 under way).
    private func beginResponse(_ u: UpstreamConnection, headLength: Int) -> Bool {
        let b = u.inBuf!
        let base = UnsafePointer(b.base)
        do {
            resp = try ResponseHead.parse(base, start: b.start, end: b.start + headLength,
                                          headers: headers, requestMethod: req.method)
        } catch {
            log.error("bad_upstream_response", "\(error.code)")
            upstreamFailed(status: 502, "invalid upstream response", .invalidResponse, retryable: false)
            return false
        }
        if resp.status == 101 {
            // A switch we did not ask for, or one without its Upgrade field (RFC 9110 §15.2.2),
            // cannot be passed on; nor one that comes before the request body has gone out.
            guard req.upgrade, headers.has(.upgrade) else {
                upstreamFailed(status: 502, "unexpected protocol switch", .invalidResponse, retryable: false)
                return false
            }
            guard reqAllSeen && reqPending == 0 && upOut.map({ upOutSent == $0.end }) ?? true else {
                upstreamFailed(status: 502, "protocol switch before the request was sent", .invalidResponse, retryable: false)
                return false
            }
            switching = true
            webSocket = upgradeIsWebSocket(base)
        } else if resp.isInterim {
            // 100 Continue was answered by us already; other interim responses are dropped.
            u.inBuf!.consume(headLength)
            respScanner.reset()
            return true
        }
        if logged { upstreamUs = cl_monotonic_us() - upstreamStartUs }
        status = resp.status
        let requestFullySent = reqAllSeen && reqPending == 0 && (upOut.map { upOutSent == $0.end } ?? true)
        if let o = upOut {
            // Answered before our head was fully sent: the rest of the request cannot follow.
            if upOutSent < o.end { requestBroken = true }
            buffers.give(o)
            upOut = nil
        }
        // An HTTP/2 stream carries the body in DATA frames: chunk framing is removed as for 1.0.
        dechunk = resp.framing == .chunked && (req.version == 10 || port != nil)
        if dechunk || resp.framing == .untilClose || !requestFullySent || worker.draining { closeAfter = true }

        let need = headLength + HeadWriter.overhead + requestIDLength + responseExtraLength
        var out: IOBuffer
        if let existing = clientOut, existing.writableCount >= need {
            out = existing
        } else {
            out = need <= BufferPool.standardSize / 2 ? buffers.take() : buffers.takeLarge()
            if let existing = clientOut {
                out.append(existing.readPointer, existing.count)
                buffers.give(existing)
            }
        }
        HeadWriter.response(into: &out, base, resp, headers, dechunk: dechunk, close: closeAfter,
                            keepAlive10: req.keepAlive10 && !closeAfter, switching: switching,
                            extra: responseExtra, extraLength: responseExtraLength,
                            requestID: requestID, requestIDLength: requestIDLength)
        clientOut = out
        u.inBuf!.consume(headLength)
        respHeadDone = true
        respStarted = true
        switch resp.framing {
        case .none: respAllSeen = true
        case .length(let n): respRemaining = n
        case .chunked: respChunk = ChunkedDecoder()
        case .untilClose: break
        }
        return true
    }

    /// Marks body bytes at the front of the upstream buffer as ready for the client. In de-chunk
    /// mode framing bytes are consumed here and only payload is queued.
    @inline(__always)
    private func validateResponseBody(_ u: UpstreamConnection) -> Bool {
        let b = u.inBuf!
        switch resp.framing {
        case .length:
            let take = min(UInt64(b.count), respRemaining)
            respPending = Int(take)
            respRemaining -= take
            if respRemaining == 0 { respAllSeen = true }
        case .untilClose:
            respPending = b.count
        case .chunked:
            let p = UnsafePointer(b.readPointer)
            let n = b.count
            do {
                if dechunk {
                    let run = try respChunk.step(p, n)
                    if run.kind == .payload { respPending = run.count } else { u.inBuf!.consume(run.count) }
                } else {
                    var i = 0
                    while i < n && !respChunk.isDone { i += try respChunk.step(p + i, n - i).count }
                    respPending = i
                }
            } catch {
                abort(reason: "invalid upstream chunked framing")
                return false
            }
            if respChunk.isDone { respAllSeen = true }
        case .none:
            respAllSeen = true
        }
        return true
    }

    /// The response is complete and flushed: pool or close the upstream, log, and go on.
    @inline(__always)
    private func finishExchange(_ u: UpstreamConnection) {
        if switching { enterTunnel(u); return }
        let reusable = !resp.close && resp.framing != .untilClose && !requestBroken
            && reqAllSeen && reqPending == 0 && (u.inBuf?.isEmpty ?? true) && !worker.draining
        u.session = nil
        upstream = nil
        if !(reusable && worker.keepIdle(u)) { u.close() }
        recordExchange()
        requestsServed += 1
        if closeAfter || !reqAllSeen || reqPending > 0 {
            beginLingering()
        } else {
            nextRequest()
        }
    }
}

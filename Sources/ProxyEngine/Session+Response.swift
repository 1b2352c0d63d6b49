import CLinux
import Glibc
import HTTP1Codec
import IOCore

/// The response side of a session: connect completion, reading and checking the upstream's head,
/// rewriting it, and streaming the body back with the framing the client can take.
extension Session {
    enum UpstreamRead { case bytes, blocked, eof, failed }

    func stepExchange() -> Bool {
        if portLookup.isRunning { return stepPortLookup() }
        guard let u = leg.connectionRef else { return false }
        return u._withUnsafeGuaranteedRef { stepExchange($0) }
    }

    private func stepExchange(_ u: UpstreamConnection) -> Bool {
        if !u.connected && u.io.writable {
            let err = u.finishConnect()
            if err != 0 && edgeRelay {
                failEdgeRelay(SysError("connect to the tunnel's center", err).description)
                return false
            }
            if err != 0 {
                forgetContainerPortIfRefused(err)
                log.error("upstream_connect", SysError("connect", err).description)
                upstreamFailed(status: 502, "upstream connect failed", .connect, retryable: false)
                return true
            }
        }
        if edgeRelay {
            guard u.connected else { return false }
            startEdgeRelay(u)
            return true
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
            if exchange.response == .body && responseBodyReady == 0, let b = u.inBuf, b.count > 0 {
                guard validateResponseBody(u) else { return true }
            }
            // 1. Whatever is ready for the client goes first: our head bytes, then body bytes.
            let outLeft = clientOut?.count ?? 0
            if outLeft > 0 || responseBodyReady > 0 {
                guard io.writable else { break }
                let total = outLeft + responseBodyReady
                let r: IOResult
                do {
                    if outLeft > 0 {
                        r = try clientWritev2(clientOut!.readPointer, outLeft,
                                            responseBodyReady > 0 ? UnsafeRawPointer(u.inBuf!.readPointer) : nil, responseBodyReady)
                    } else {
                        r = try clientWrite(u.inBuf!.readPointer, responseBodyReady)
                    }
                } catch {
                    abort(reason: "client write failed")
                    return true
                }
                guard case .bytes(let n) = r else { io.writable = false; break }
                progress = true
                record.bytesOut += UInt64(n)
                let h = min(n, outLeft)
                if h > 0 {
                    clientOut!.consume(h)
                    if clientOut!.isEmpty { buffers.give(clientOut!); clientOut = nil }
                }
                if n > h {
                    u.inBuf!.consume(n - h)
                    responseBodyReady -= n - h
                }
                if n < total { io.writable = false; break }
                continue
            }
            guard u.connected else { break }
            if exchange.responseAllSeen {
                finishExchange(u)
                return true
            }
            // 2. The response head.
            if !exchange.responseStarted {
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
            if responseBodyReady == 0, let b = u.inBuf, b.count > 0 {
                guard validateResponseBody(u) else { return true }
                progress = true
                continue
            }
            if exchange.responseAllSeen { continue }
            switch readUpstream(u) {
            case .bytes: progress = true; continue
            case .blocked: break
            case .eof:
                if exchange.upstreamClosed() == .complete { progress = true; continue }
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
        let headSent = leg.requestHeadOut.map { leg.requestHeadSent == $0.end } ?? true
        // A switch we did not ask for, or one without its Upgrade field (RFC 9110 §15.2.2),
        // cannot be passed on; nor one that comes before the request body has gone out. An
        // HTTP/2 stream carries the body in DATA frames: chunk framing is removed as for 1.0.
        switch exchange.responseHead(status: resp.status, framing: resp.framing, upgradeRequested: req.upgrade,
                                     upgradeField: headers.has(.upgrade),
                                     requestSent: exchange.requestAllSeen && requestBodyReady == 0 && headSent,
                                     headSent: headSent, payloadOnly: req.version == 10 || stream != nil,
                                     draining: worker.draining) {
        case .refuse(let code):
            upstreamFailed(status: 502, code, .invalidResponse, retryable: false)
            return false
        case .dropInterim:
            // 100 Continue was answered by us already; other interim responses are dropped.
            u.inBuf!.consume(headLength)
            respScanner.reset()
            return true
        case .forward:
            break
        }
        let switching = exchange.response == .switching
        if switching { tunnel.webSocket = upgradeIsWebSocket(base) }
        if logged { record.upstreamUs = cl_monotonic_us() - record.upstreamStartUs }
        // Over HTTP/2 the client sees the switch as a 200 on its CONNECT stream (RFC 8441 §5):
        // the access log says what the client got.
        record.status = switching && stream != nil ? 200 : resp.status
        if let o = leg.requestHeadOut {
            buffers.give(o)
            leg.requestHeadOut = nil
        }

        let need = headLength + HeadWriter.overhead + record.requestIDLength + responseExtraLength
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
        HeadWriter.response(into: &out, base, resp, headers, dechunk: exchange.dechunk, close: exchange.closeAfter,
                            keepAlive10: req.keepAlive10 && !exchange.closeAfter, switching: switching,
                            extra: responseExtra, extraLength: responseExtraLength,
                            requestID: record.requestID, requestIDLength: record.requestIDLength)
        clientOut = out
        u.inBuf!.consume(headLength)
        return true
    }

    /// Marks body bytes at the front of the upstream buffer as ready for the client. In de-chunk
    /// mode framing bytes are consumed here and only payload is queued.
    @inline(__always)
    private func validateResponseBody(_ u: UpstreamConnection) -> Bool {
        let b = u.inBuf!
        do {
            let run = try exchange.responseBody(UnsafePointer(b.readPointer), b.count)
            if run.forward { responseBodyReady = run.count } else { u.inBuf!.consume(run.count) }
        } catch {
            abort(reason: "invalid upstream chunked framing")
            return false
        }
        return true
    }

    /// The response is complete and flushed: pool or close the upstream, log, and go on.
    @inline(__always)
    private func finishExchange(_ u: UpstreamConnection) {
        switch exchange.finish(responseClose: resp.close, upstreamIdle: u.inBuf?.isEmpty ?? true,
                               requestPending: requestBodyReady > 0, draining: worker.draining) {
        case .tunnel:
            enterTunnel(u)
        case .done(let reuseUpstream, let next):
            u.session = nil
            upstream = nil
            if !(reuseUpstream && worker.keepIdle(u)) { u.close() }
            recordExchange()
            requestsServed += 1
            if next { nextRequest() } else { beginLingering() }
        }
    }
}

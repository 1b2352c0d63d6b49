import HTTP1Codec

/// The framing of one proxied HTTP/1.1 exchange, as a value-type state machine (STYLE.md point
/// 2, after swift-nio-http2's): the session tells it what happened — a request head was parsed,
/// body bytes arrived, the upstream answered, a side closed — and does what it answers. It holds
/// no sockets and no buffers: bytes are looked at in place and counted, never kept, so every
/// path through it is tested without a socket (`ExchangeTests`).
///
/// The two sides move independently, because an upstream may answer before the request body is
/// complete (RFC 9110 §15 allows it; the rest of the body is then not sent):
///
/// ```
/// request:   .body ──(last body byte seen)──► .complete
///              └──────(upstream answered and stopped reading)──► .cut
/// response:  .awaitingHead ──(1xx: dropped, stays)
///              ├──(101 to an upgrade, request complete)──► .switching  (a tunnel follows)
///              ├──(final head)──► .body ──(last body byte seen)──► .complete
///              └──(the gateway answers itself: an error, a redirect)──► .own
/// ```
///
/// Once the response has left `.awaitingHead`, bytes of it may be on their way to the client:
/// a failure from then on can only abort the connection (`responseStarted`).
struct Exchange {
    enum RequestState: Equatable {
        /// Body bytes are still to come from the client.
        case body
        /// Every request byte has been seen (it may still be waiting to be written upstream).
        case complete
        /// The upstream answered and stopped reading, or answered before our head was all sent:
        /// the rest of the request is not sent, and the client connection closes after the
        /// response. `allSeen`: the client had sent all of it already.
        case cut(allSeen: Bool)
    }

    enum ResponseState: Equatable {
        case awaitingHead
        /// The head went to the client; body bytes are still to come.
        case body
        /// Every response byte has been seen.
        case complete
        /// A 101 answered the upgrade: once the head is written, the pair becomes a tunnel.
        case switching
        /// The gateway answers itself (an error, a redirect); no upstream response follows.
        case own
    }

    private(set) var request: RequestState = .complete
    private(set) var response: ResponseState = .awaitingHead
    /// The client connection closes after this exchange (the client asked, a framing needs it,
    /// or the request was cut).
    private(set) var closeAfter = false
    /// Chunk framing of the response is removed on the way (an HTTP/1.0 client, an HTTP/2
    /// stream): only payload bytes are forwarded.
    private(set) var dechunk = false
    /// The request is a HEAD: whatever answers it, upstream or gateway, sends no body
    /// (RFC 9110 §9.3.2). False until `begin` (a head that did not parse is no HEAD).
    private(set) var headRequest = false

    /// How each body ends; lengths live in the `Remaining` counters (a one-byte kind keeps the
    /// session, which holds one exchange per connection, no larger than before).
    private enum Framing: UInt8 { case none, length, chunked, untilClose }
    private var requestFraming = Framing.none
    private var requestRemaining: UInt64 = 0
    private var requestChunks = ChunkedDecoder()
    private var responseFraming = Framing.none
    private var responseRemaining: UInt64 = 0
    private var responseChunks = ChunkedDecoder()

    private static func kind(_ f: BodyFraming) -> Framing {
        switch f {
        case .none: return .none
        case .length: return .length
        case .chunked: return .chunked
        case .untilClose: return .untilClose
        }
    }

    /// Every request byte has been seen (whether or not it will be sent).
    var requestAllSeen: Bool {
        switch request {
        case .complete: return true
        case .body: return false
        case .cut(let allSeen): return allSeen
        }
    }

    var requestCut: Bool { if case .cut = request { return true } else { return false } }
    /// A response (the upstream's head, final or 101, or the gateway's own) is on its way to the
    /// client: an error now can only abort the connection.
    var responseStarted: Bool { response != .awaitingHead }
    /// Every response byte has been seen (a 101 has no body).
    var responseAllSeen: Bool { response == .complete || response == .switching }

    /// Starts a fresh exchange (`Exchange()`, as the session's reset leaves it) on a parsed request
    /// head. `closes`: the client's connection ends after it
    /// (`Connection: close`, HTTP/1.0 without keep-alive, or the worker is draining). Returns
    /// whether the gateway must answer `100 Continue` itself (RFC 9110 §10.1.1: the client waits
    /// for it before sending the body; the upstream gets no Expect field).
    mutating func begin(framing: BodyFraming, expectContinue: Bool, closes: Bool, headRequest: Bool = false) -> Bool {
        assert(response == .awaitingHead && !dechunk, "begin on an exchange that was not reset")
        closeAfter = closes
        self.headRequest = headRequest
        requestFraming = Self.kind(framing)
        switch framing {
        case .length(let n):
            requestRemaining = n
            request = n == 0 ? .complete : .body
        case .chunked:
            request = .body
        case .none, .untilClose:
            request = .complete
        }
        return expectContinue && request == .body
    }

    /// Looks at client bytes `p[0..<n]` that follow what was already seen and returns how many of
    /// them are request body (to forward as they are); the rest belong to the next request.
    /// Throws on bad chunked framing: the connection cannot continue.
    mutating func requestBody(_ p: UnsafePointer<UInt8>, _ n: Int) throws(HTTPError) -> Int {
        guard request == .body else { return 0 }
        switch requestFraming {
        case .length:
            let take = min(UInt64(n), requestRemaining)
            requestRemaining -= take
            if requestRemaining == 0 { request = .complete }
            return Int(take)
        case .chunked:
            var i = 0
            while i < n && !requestChunks.isDone { i += try requestChunks.step(p + i, n - i).count }
            if requestChunks.isDone { request = .complete }
            return i
        case .none, .untilClose:
            request = .complete
            return 0
        }
    }

    /// What to do when writing the request to the upstream failed.
    enum WriteFailure: Equatable {
        /// The upstream has answered: finish its response, then close the client connection.
        case finishResponse
        /// No answer yet: the exchange failed (502; a retry may be safe).
        case failed
    }

    mutating func upstreamStoppedReading() -> WriteFailure {
        guard response != .awaitingHead && response != .own else { return .failed }
        request = .cut(allSeen: requestAllSeen)
        closeAfter = true
        return .finishResponse
    }

    /// What to do with a response head.
    enum HeadAction: Equatable {
        /// An interim response (100, 102, 103): dropped; the final head follows.
        case dropInterim
        /// Refused: 502 with this code (a 101 nobody asked for, or one before the request went).
        case refuse(StaticString)
        /// Forward the (rewritten) head; `dechunk` and `closeAfter` are set for it.
        case forward

        static func == (a: HeadAction, b: HeadAction) -> Bool {
            switch (a, b) {
            case (.dropInterim, .dropInterim), (.forward, .forward): return true
            case (.refuse(let x), .refuse(let y)): return x.description == y.description
            default: return false
            }
        }
    }

    /// A response head arrived. `upgradeRequested`: the request asked to switch protocols;
    /// `upgradeField`: the response names the protocol it switches to (RFC 9110 §15.2.2);
    /// `requestSent`: the head and every body byte have been written upstream; `headSent`: at
    /// least our head was all written; `payloadOnly`: the client takes no chunk framing (HTTP/1.0,
    /// an HTTP/2 stream); `draining`: the worker is shutting down.
    mutating func responseHead(status: Int, framing: BodyFraming, upgradeRequested: Bool, upgradeField: Bool,
                               requestSent: Bool, headSent: Bool, payloadOnly: Bool, draining: Bool) -> HeadAction {
        if status == 101 {
            guard upgradeRequested, upgradeField else { return .refuse("unexpected protocol switch") }
            guard requestSent else { return .refuse("protocol switch before the request was sent") }
            response = .switching
            return .forward
        }
        if status >= 100 && status < 200 { return .dropInterim }
        // Answered before our head was fully sent: the rest of the request cannot follow.
        if !headSent { request = .cut(allSeen: requestAllSeen) }
        dechunk = framing == .chunked && payloadOnly
        if dechunk || framing == .untilClose || !requestSent || draining { closeAfter = true }
        responseFraming = Self.kind(framing)
        switch framing {
        case .none: response = .complete
        case .length(let n):
            responseRemaining = n
            response = n == 0 ? .complete : .body
        case .chunked: response = .body
        case .untilClose: response = .body
        }
        return .forward
    }

    /// One run of response bytes: forward `count` bytes to the client, or drop them (chunk
    /// framing while de-chunking).
    struct BodyRun: Equatable {
        let count: Int
        let forward: Bool
    }

    /// Looks at upstream bytes `p[0..<n]` after the head. De-chunking returns one run at a time
    /// (payload or framing); otherwise the run is everything up to the end of the body. Throws on
    /// bad chunked framing (the exchange is aborted: the client already has a head).
    mutating func responseBody(_ p: UnsafePointer<UInt8>, _ n: Int) throws(HTTPError) -> BodyRun {
        guard response == .body else { return BodyRun(count: 0, forward: true) }
        switch responseFraming {
        case .length:
            let take = min(UInt64(n), responseRemaining)
            responseRemaining -= take
            if responseRemaining == 0 { response = .complete }
            return BodyRun(count: Int(take), forward: true)
        case .untilClose:
            return BodyRun(count: n, forward: true)
        case .chunked:
            let run: BodyRun
            if dechunk {
                let step = try responseChunks.step(p, n)
                run = BodyRun(count: step.count, forward: step.kind == .payload)
            } else {
                var i = 0
                while i < n && !responseChunks.isDone { i += try responseChunks.step(p + i, n - i).count }
                run = BodyRun(count: i, forward: true)
            }
            if responseChunks.isDone { response = .complete }
            return run
        case .none:
            response = .complete
            return BodyRun(count: 0, forward: true)
        }
    }

    /// What the upstream's FIN means.
    enum UpstreamClosed: Equatable {
        /// Before any response head: the exchange failed (502; a retry may be safe).
        case beforeResponse
        /// The body ran until close: it is complete now.
        case complete
        /// Mid-body: the response is cut short and the client connection must be aborted.
        case truncated
    }

    mutating func upstreamClosed() -> UpstreamClosed {
        switch response {
        case .awaitingHead, .own: return .beforeResponse
        case .complete, .switching: return .complete
        case .body:
            guard responseFraming == .untilClose else { return .truncated }
            response = .complete
            return .complete
        }
    }

    /// Once the response is complete and written: what becomes of the two connections.
    enum Finish: Equatable {
        /// The upgrade went through: the pair becomes a byte tunnel.
        case tunnel
        /// `reuseUpstream`: the upstream connection may go back to its pool; `nextRequest`: the
        /// client connection waits for its next request (else it closes, draining what the
        /// client still sends).
        case done(reuseUpstream: Bool, nextRequest: Bool)
    }

    /// `responseClose`: the upstream said `Connection: close`; `upstreamIdle`: it sent nothing
    /// beyond the response; `requestPending`: request bytes still wait to be written.
    func finish(responseClose: Bool, upstreamIdle: Bool, requestPending: Bool, draining: Bool) -> Finish {
        if response == .switching { return .tunnel }
        let requestDone = request == .complete && !requestPending
        let reuse = !responseClose && responseFraming != .untilClose && requestDone && upstreamIdle && !draining
        return .done(reuseUpstream: reuse, nextRequest: !closeAfter && requestAllSeen && !requestPending)
    }

    /// The client connection must close after this exchange (an error answer, a drain).
    mutating func closeAfterwards() {
        closeAfter = true
    }

    /// The gateway answers this request itself (only before any response has started: after
    /// that the connection can only be aborted). Returns whether the answer carries a body.
    mutating func answerOwn() -> Bool {
        assert(response == .awaitingHead, "an own answer after a response started")
        response = .own
        return !headRequest
    }
}

@testable import HTTP1Codec
@testable import ProxyEngine
import Testing

/// The exchange state machine without sockets: request and response framing fed in pieces,
/// 100-continue, upgrades, an upstream that answers early, a client that goes away.
@Suite("Exchange: request and response framing as a state machine")
struct ExchangeTests {
    /// Feeds `bytes` to the request side in reads of `cuts` bytes (then the rest) and returns how
    /// many were body, the machine after it.
    func feedRequest(_ e: inout Exchange, _ bytes: [UInt8], cuts: [Int]) throws -> Int {
        var offset = 0, body = 0
        var reads = cuts + [bytes.count]
        while offset < bytes.count, !reads.isEmpty {
            let end = min(bytes.count, offset + reads.removeFirst())
            var i = offset
            while i < end {
                let n = try bytes.withUnsafeBufferPointer { try e.requestBody($0.baseAddress! + i, end - i) }
                if n == 0 { return body }  // the rest is the next request
                body += n
                i += n
            }
            offset = end
        }
        return body
    }

    /// Feeds a response body in reads of `cuts`, returning the bytes the client would get.
    func feedResponse(_ e: inout Exchange, _ bytes: [UInt8], cuts: [Int]) throws -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        var reads = cuts + [bytes.count]
        while offset < bytes.count, !reads.isEmpty, e.response == .body {
            let end = min(bytes.count, offset + reads.removeFirst())
            var i = offset
            while i < end, e.response == .body {
                let run = try bytes.withUnsafeBufferPointer { try e.responseBody($0.baseAddress! + i, end - i) }
                if run.forward { out += bytes[i..<(i + run.count)] }
                i += run.count
                if run.count == 0 { break }
            }
            offset = end
        }
        return out
    }

    func forwardHead(_ e: inout Exchange, status: Int = 200, _ framing: BodyFraming, payloadOnly: Bool = false,
                     requestSent: Bool = true, headSent: Bool = true) -> Exchange.HeadAction {
        e.responseHead(status: status, framing: framing, upgradeRequested: false, upgradeField: false,
                       requestSent: requestSent, headSent: headSent, payloadOnly: payloadOnly, draining: false)
    }

    @Test("A length-framed request body ends exactly at its length, however it is split; the next request is not body")
    func lengthBody() throws {
        let body = Array("hello, world".utf8), next = Array("GET /next HTTP/1.1\r\n".utf8)
        for cut in 0...body.count {
            var e = Exchange()
            let answerContinue = e.begin(framing: .length(UInt64(body.count)), expectContinue: false, closes: false)
            #expect(!answerContinue)
            #expect(e.request == .body && !e.requestAllSeen)
            #expect(try feedRequest(&e, body + next, cuts: [cut]) == body.count, "first read \(cut)")
            #expect(e.request == .complete)
        }
    }

    @Test("A chunked request body is validated at every split and ends after its last chunk")
    func chunkedBody() throws {
        let body = Array("4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\n".utf8)
        for cut in 0...body.count {
            var e = Exchange()
            _ = e.begin(framing: .chunked, expectContinue: false, closes: false)
            #expect(try feedRequest(&e, body + Array("GET".utf8), cuts: [cut, 1, 2]) == body.count, "split at \(cut)")
            #expect(e.request == .complete)
        }
        var bad = Exchange()
        _ = bad.begin(framing: .chunked, expectContinue: false, closes: false)
        #expect(throws: HTTPError.self) { _ = try feedRequest(&bad, Array("zz\r\n".utf8), cuts: []) }
    }

    @Test("100-continue is answered by the gateway only when a body is expected")
    func expectContinue() {
        var e = Exchange()
        let cases: [(BodyFraming, Bool, Bool)] = [(.length(10), true, true), (.none, true, false), (.chunked, false, false),
                                                  (.chunked, true, true)]
        for (framing, expect, answer) in cases {
            let answered = e.begin(framing: framing, expectContinue: expect, closes: false)
            #expect(answered == answer, "\(framing) expect \(expect)")
        }
        // An interim 100 from the upstream is dropped: the final head follows.
        _ = e.begin(framing: .length(3), expectContinue: true, closes: false)
        #expect(forwardHead(&e, status: 100, .none) == .dropInterim && e.response == .awaitingHead)
        #expect(forwardHead(&e, status: 103, .none) == .dropInterim)
    }

    @Test("Response bodies: length and chunked pass through whole; de-chunking forwards payload only")
    func responseFraming() throws {
        let chunked = Array("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".utf8)
        for cut in 0...chunked.count {
            var raw = Exchange()
            _ = raw.begin(framing: .none, expectContinue: false, closes: false)
            #expect(forwardHead(&raw, .chunked) == .forward && !raw.dechunk && !raw.closeAfter)
            #expect(try feedResponse(&raw, chunked, cuts: [cut]) == chunked && raw.response == .complete)

            var dechunked = Exchange()
            _ = dechunked.begin(framing: .none, expectContinue: false, closes: false)
            #expect(forwardHead(&dechunked, .chunked, payloadOnly: true) == .forward && dechunked.dechunk)
            #expect(dechunked.closeAfter, "an HTTP/1.0 client learns the end from the close")
            #expect(try feedResponse(&dechunked, chunked, cuts: [cut]) == Array("abcde".utf8))
            #expect(dechunked.response == .complete)
        }
        var e = Exchange()
        _ = e.begin(framing: .none, expectContinue: false, closes: false)
        #expect(forwardHead(&e, .length(5)) == .forward)
        #expect(try feedResponse(&e, Array("12345extra".utf8), cuts: [2]) == Array("12345".utf8))
        #expect(e.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: false)
                == .done(reuseUpstream: true, nextRequest: true))
        var empty = Exchange()
        _ = empty.begin(framing: .none, expectContinue: false, closes: false)
        #expect(forwardHead(&empty, status: 204, .none) == .forward && empty.response == .complete)
    }

    @Test("The upstream's FIN: failure before a head, the end of an until-close body, a cut mid-body")
    func upstreamClose() {
        var before = Exchange()
        _ = before.begin(framing: .none, expectContinue: false, closes: false)
        #expect(before.upstreamClosed() == .beforeResponse)
        var untilClose = Exchange()
        _ = untilClose.begin(framing: .none, expectContinue: false, closes: false)
        _ = forwardHead(&untilClose, .untilClose)
        #expect(untilClose.closeAfter)
        #expect(untilClose.upstreamClosed() == .complete && untilClose.response == .complete)
        #expect(untilClose.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: false)
                == .done(reuseUpstream: false, nextRequest: false))
        var cut = Exchange()
        _ = cut.begin(framing: .none, expectContinue: false, closes: false)
        _ = forwardHead(&cut, .length(10))
        #expect(cut.upstreamClosed() == .truncated)
    }

    @Test("Upgrade: a 101 to a request that asked, once the request went out, switches; others are refused")
    func upgrade() {
        func head(_ e: inout Exchange, requested: Bool, field: Bool, sent: Bool) -> Exchange.HeadAction {
            e.responseHead(status: 101, framing: .none, upgradeRequested: requested, upgradeField: field,
                           requestSent: sent, headSent: sent, payloadOnly: false, draining: false)
        }
        var e = Exchange()
        _ = e.begin(framing: .none, expectContinue: false, closes: false)
        #expect(head(&e, requested: true, field: true, sent: true) == .forward)
        #expect(e.response == .switching && e.responseAllSeen && e.responseStarted)
        #expect(e.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: true) == .tunnel)
        for (requested, field, sent, code) in [(false, true, true, "unexpected protocol switch"),
                                               (true, false, true, "unexpected protocol switch"),
                                               (true, true, false, "protocol switch before the request was sent")] {
            var r = Exchange()
            _ = r.begin(framing: .none, expectContinue: false, closes: false)
            let action = head(&r, requested: requested, field: field, sent: sent)
            guard case .refuse(let refused) = action else { Issue.record("\(action)"); continue }
            #expect(refused.description == code)
            #expect(r.response == .awaitingHead)
        }
    }

    @Test("An upstream that answers before the body is complete: the response goes out, the request is cut, both connections close")
    func earlyResponse() throws {
        var e = Exchange()
        _ = e.begin(framing: .length(1_000), expectContinue: false, closes: false)
        #expect(try feedRequest(&e, Array(repeating: 0x61, count: 100), cuts: []) == 100)
        // Before any answer, a failed write is the exchange failing (502, maybe retried).
        var unanswered = e
        #expect(unanswered.upstreamStoppedReading() == .failed)
        #expect(forwardHead(&e, status: 413, .length(2), requestSent: false) == .forward)
        #expect(e.closeAfter && e.request == .body)
        #expect(e.upstreamStoppedReading() == .finishResponse)
        #expect(e.requestCut && !e.requestAllSeen)
        _ = try feedResponse(&e, Array("no".utf8), cuts: [])
        #expect(e.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: false)
                == .done(reuseUpstream: false, nextRequest: false))
        // Answered before our head was even all written: cut too, though the client sent all.
        var headCut = Exchange()
        _ = headCut.begin(framing: .none, expectContinue: false, closes: false)
        #expect(forwardHead(&headCut, .length(1), requestSent: false, headSent: false) == .forward)
        #expect(headCut.request == .cut(allSeen: true) && headCut.closeAfter)
    }

    @Test("A client that goes away mid-body leaves the request unseen: nothing is reused, no next request")
    func clientAbort() throws {
        var e = Exchange()
        _ = e.begin(framing: .chunked, expectContinue: false, closes: false)
        #expect(try feedRequest(&e, Array("5\r\nab".utf8), cuts: []) == 5)
        #expect(!e.requestAllSeen)
        _ = forwardHead(&e, .length(0 + 1))
        _ = try feedResponse(&e, [0x21], cuts: [])
        #expect(e.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: false)
                == .done(reuseUpstream: false, nextRequest: false))
    }

    @Test("Reuse needs a clean end on both sides: no close, idle upstream, nothing pending, no drain")
    func reuse() {
        func finished(_ body: (inout Exchange) -> Void) -> Exchange {
            var e = Exchange()
            _ = e.begin(framing: .none, expectContinue: false, closes: false)
            body(&e)
            _ = forwardHead(&e, .none)
            return e
        }
        let clean = finished { _ in }
        #expect(clean.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: false) == .done(reuseUpstream: true, nextRequest: true))
        #expect(clean.finish(responseClose: true, upstreamIdle: true, requestPending: false, draining: false) == .done(reuseUpstream: false, nextRequest: true))
        #expect(clean.finish(responseClose: false, upstreamIdle: false, requestPending: false, draining: false) == .done(reuseUpstream: false, nextRequest: true))
        #expect(clean.finish(responseClose: false, upstreamIdle: true, requestPending: true, draining: false) == .done(reuseUpstream: false, nextRequest: false))
        #expect(clean.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: true) == .done(reuseUpstream: false, nextRequest: true))
        var closing = Exchange()
        _ = closing.begin(framing: .none, expectContinue: false, closes: true)
        _ = forwardHead(&closing, .none)
        #expect(closing.finish(responseClose: false, upstreamIdle: true, requestPending: false, draining: false) == .done(reuseUpstream: true, nextRequest: false))
    }

    @Test("The gateway's own answer: starts the response (no upstream head may follow), and has no body for HEAD")
    func ownAnswer() {
        // A head that did not parse never began: the error answer has a body.
        var unparsed = Exchange()
        #expect(!unparsed.responseStarted)
        let unparsedBody = unparsed.answerOwn()
        #expect(unparsedBody)
        #expect(unparsed.responseStarted && unparsed.response == .own)
        let stopped = unparsed.upstreamStoppedReading()
        #expect(stopped == .failed)
        var head = Exchange()
        _ = head.begin(framing: .none, expectContinue: false, closes: false, headRequest: true)
        let headBody = head.answerOwn()
        #expect(head.headRequest && !headBody)
        var get = Exchange()
        _ = get.begin(framing: .length(10), expectContinue: false, closes: false)
        let getBody = get.answerOwn()
        #expect(getBody && get.request == .body)
        let closed = get.upstreamClosed()
        #expect(closed == .beforeResponse)
        // An interim response leaves room for an own answer; a forwarded head does not.
        var interim = Exchange()
        _ = interim.begin(framing: .none, expectContinue: false, closes: false)
        let early = forwardHead(&interim, status: 103, .none)
        #expect(early == .dropInterim && !interim.responseStarted)
        let final = forwardHead(&interim, .length(3))
        #expect(final == .forward && interim.responseStarted)
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// Valid requests give the same head length and the same parse however the bytes arrive: all at
/// once, in two reads split at every offset, or one byte per read (STYLE.md point 2).
@Suite("Requests split at every read boundary")
struct RequestBoundaryTests {
    @Test("HeadScanner finds the same head end at every split", arguments: ValidCorpus.requests)
    func scannerAgreesAtEverySplit(_ c: ValidRequest) throws {
        let headStart = c.bytes.starts(with: b("\r\n")) ? 2 : 0
        let length = try #require(expectedHeadLength(c.bytes, headStart: headStart))
        let whole = scan(c.bytes)
        #expect(whole == ScanResult(outcome: .complete(length: length), headStart: headStart))

        for cuts in everySplit(c.bytes.count) {
            let r = scan(c.bytes, cuts: cuts)
            #expect(r == whole, "first read of \(cuts[0]) bytes")
        }
        #expect(scan(c.bytes, cuts: byteByByte(c.bytes.count)) == whole, "byte by byte")
    }

    @Test("A stream of requests parses the same at every split", arguments: ValidCorpus.requests)
    func streamAgreesAtEverySplit(_ c: ValidRequest) {
        let whole = RequestStream.run(c.bytes)
        #expect(whole.error == nil)
        #expect(whole.violations == [])
        check(whole.messages, c.expected)
        // Every byte belongs to some head or body: nothing is left over or read twice.
        #expect(whole.messages.allSatisfy { $0.complete })

        for cuts in everySplit(c.bytes.count) {
            let s = RequestStream.run(c.bytes, cuts: cuts)
            #expect(s.result == whole.result, "first read of \(cuts[0]) bytes")
            #expect(s.violations == [])
        }
        let slow = RequestStream.run(c.bytes, cuts: byteByByte(c.bytes.count))
        #expect(slow.result == whole.result, "byte by byte")
    }

    @Test("Every pair of split points agrees on the pipelined stream")
    func pipelinedAtEveryPairOfSplits() throws {
        let c = try #require(ValidCorpus.requests.first { $0.name == "pipelined requests back to back" })
        let whole = RequestStream.run(c.bytes).result
        let n = c.bytes.count
        var disagreements: [[Int]] = []
        for i in 0...n {
            for j in i...n where RequestStream.run(c.bytes, cuts: [i, j]).result != whole {
                disagreements.append([i, j])
            }
        }
        #expect(disagreements == [])
    }

    @Test("Fields keep their order, trimmed values and kinds")
    func fieldsOfGET() throws {
        let head = try parseRequest(ValidCorpus.requests[0].bytes).get()
        let fields = head.fields.map { "\($0.name)=\($0.value)" }
        #expect(fields == ["Host=Example.COM:8080", "User-Agent=switchyard-test/1.0", "Accept=*/*", "X-Empty=",
                           "X-Spaces=a  b", "X-Obs=caf\u{FFFD}", "X-Request-Id=abc-123_x.y"])
        #expect(head.fields.map(\.kind) == [.host, .other, .other, .other, .other, .other, .xRequestID])
        #expect(head.fields.allSatisfy { !$0.dropped })
        #expect(head.methodText == "GET")
    }

    private func check(_ got: [RequestStream.Message], _ expected: [ExpectedRequest],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(got.count == expected.count, sourceLocation: sourceLocation)
        for (g, e) in zip(got, expected) {
            let h = g.head
            #expect(h.method == e.method, sourceLocation: sourceLocation)
            #expect(h.path == e.path, sourceLocation: sourceLocation)
            #expect(h.host == e.host, sourceLocation: sourceLocation)
            #expect(h.hostName == e.hostName, sourceLocation: sourceLocation)
            #expect(h.version == e.version, sourceLocation: sourceLocation)
            #expect(h.framing == e.framing, sourceLocation: sourceLocation)
            #expect(h.close == e.close, sourceLocation: sourceLocation)
            #expect(h.keepAlive10 == e.keepAlive10, sourceLocation: sourceLocation)
            #expect(h.expectContinue == e.expectContinue, sourceLocation: sourceLocation)
            #expect(h.requestID == e.requestID, sourceLocation: sourceLocation)
            #expect(g.body == e.body, sourceLocation: sourceLocation)
        }
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// The scanner's limits sit exactly where they say, and fire before the offending line ends, so a
/// client cannot make the gateway buffer more than one over-limit line.
@Suite("Head size limits")
struct HeadLimitTests {
    /// A request line of exactly `n` bytes (without CRLF).
    private func requestLine(_ n: Int) -> String {
        "GET /" + String(repeating: "a", count: n - 14) + " HTTP/1.1"
    }

    /// A request whose header lines (CRLFs included, blank line excluded) take exactly `n` bytes.
    private func headerBlock(_ n: Int) -> [UInt8] {
        b("GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + String(repeating: "p", count: n - 18) + "\r\n\r\n")
    }

    private func expectSame(_ bytes: [UInt8], _ outcome: HeadScanner.Outcome,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(scan(bytes).outcome == outcome, "whole", sourceLocation: sourceLocation)
        #expect(scan(bytes, cuts: byteByByte(bytes.count)).outcome == outcome, "byte by byte", sourceLocation: sourceLocation)
    }

    @Test("Request line at the limit passes; one byte more is 414")
    func firstLine() {
        let ok = b(requestLine(Limits.firstLine) + "\r\nHost: h\r\n\r\n")
        expectSame(ok, .complete(length: ok.count))
        expectSame(b(requestLine(Limits.firstLine + 1) + "\r\nHost: h\r\n\r\n"), .failed(.uriTooLong))
    }

    @Test("An over-long request line fails before its end arrives")
    func firstLineEarly() {
        let partial = b(requestLine(Limits.firstLine + 2))
        #expect(scan(partial).outcome == .failed(.uriTooLong))
        // One byte fewer is still a line that could end in time (its last byte may be the CR).
        #expect(scan(Array(b(requestLine(Limits.firstLine)) + [0x0D])).outcome == .needMore)
    }

    @Test("Header block at the limit passes; one byte more is 431")
    func headerBytes() {
        let ok = headerBlock(Limits.headerBytes)
        expectSame(ok, .complete(length: ok.count))
        expectSame(headerBlock(Limits.headerBytes + 1), .failed(.headersTooLarge))
    }

    @Test("An over-long header block fails before its line ends")
    func headerBytesEarly() {
        let full = headerBlock(Limits.headerBytes + 100)
        let partial = Array(full[0..<(full.count - 10)])
        #expect(scan(partial).outcome == .failed(.headersTooLarge))
    }

    @Test("Header count at the limit passes; one more is 431")
    func headerCount() {
        func request(_ n: Int) -> [UInt8] {
            b("GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "X-N: n\r\n", count: n - 1) + "\r\n")
        }
        let ok = request(Limits.headers)
        expectSame(ok, .complete(length: ok.count))
        expectSame(request(Limits.headers + 1), .failed(.tooManyHeaders))
    }

    @Test("A header table smaller than the scanner limit refuses the extra fields")
    func tableCapacity() {
        let bytes = b("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
        #expect(throws: Never.self) { try parseRequest(bytes, capacity: 4).get() }
        #expect(parseRequest(bytes, capacity: 3) == .failure(.tooManyHeaders))
    }

    @Test("Leading empty lines: as many as configured, no more")
    func leadingEmptyLines() {
        let req = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        let two = HeadScanner(maxFirstLine: 100, maxHeaderBytes: 100, maxHeaders: 4, leadingEmptyLines: 2)
        let bytes = b("\r\n\r\n" + req)
        let r = scan(bytes, with: two)
        #expect(r == ScanResult(outcome: .complete(length: bytes.count), headStart: 4))
        #expect(scan(b("\r\n\r\n\r\n" + req), with: two).outcome == .failed(.badRequestLine))
        #expect(scan(b("\r\n" + req), with: makeResponseScanner()).outcome == .failed(.badRequestLine))
    }

    @Test("reset() makes the scanner ready for the next head")
    func reset() {
        var s = makeRequestScanner()
        #expect(!s.started)
        let first = b("\r\nGET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        first.withUnsafeBufferPointer { p in
            #expect(s.scan(p.baseAddress!, count: 1) == .needMore)
            #expect(s.started)
            #expect(s.scan(p.baseAddress!, count: p.count) == .complete(length: first.count))
        }
        #expect(s.headStart == 2)
        s.reset()
        #expect(!s.started && s.headStart == 0)
        let second = b("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        second.withUnsafeBufferPointer { p in
            #expect(s.scan(p.baseAddress!, count: p.count) == .complete(length: second.count))
        }
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// A response that must be refused (the gateway answers 502 instead of passing it on).
struct BadResponse: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var error: HTTPError
    var testDescription: String { name }

    init(_ name: String, _ raw: String, _ error: HTTPError) {
        self.name = name
        bytes = b(raw)
        self.error = error
    }
}

/// A valid response and the framing and connection handling it must get.
struct FramedResponse: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var method: Method
    var status: Int
    var framing: BodyFraming
    var close: Bool
    var testDescription: String { name }

    init(_ name: String, _ raw: String, method: Method = .get, status: Int = 200, _ framing: BodyFraming, close: Bool = false) {
        self.name = name
        bytes = b(raw)
        self.method = method
        self.status = status
        self.framing = framing
        self.close = close
    }
}

@Suite("Response heads")
struct ResponseHeadTests {
    static let bad: [BadResponse] = [
        BadResponse("no status code", "HTTP/1.1 OK\r\n\r\n", .badStatus),
        BadResponse("bad protocol name", "HTTX/1.1 200 OK\r\n\r\n", .badStatusLine),
        BadResponse("lowercase protocol", "http/1.1 200 OK\r\n\r\n", .badStatusLine),
        BadResponse("HTTP/2", "HTTP/2 200 OK\r\n\r\n", .badStatusLine),
        BadResponse("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", .badStatusLine),
        BadResponse("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", .badStatus),
        BadResponse("status 20", "HTTP/1.1 20 OK\r\n\r\n", .badStatus),
        BadResponse("status 1000", "HTTP/1.1 1000 OK\r\n\r\n", .badStatusLine),
        BadResponse("status 099", "HTTP/1.1 099 OK\r\n\r\n", .badStatus),
        BadResponse("status 600", "HTTP/1.1 600 OK\r\n\r\n", .badStatus),
        BadResponse("status 2x0", "HTTP/1.1 2x0 OK\r\n\r\n", .badStatus),
        BadResponse("no space after status", "HTTP/1.1 200OK\r\n\r\n", .badStatusLine),
        BadResponse("status line too short", "HTTP/1.1\r\n\r\n", .badStatusLine),
        BadResponse("NUL in reason", "HTTP/1.1 200 O\u{0}K\r\n\r\n", .badStatusLine),
        BadResponse("bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n", .badStatusLine),
        BadResponse("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                    .contentLengthWithTransferEncoding),
        BadResponse("two different CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .duplicateContentLength),
        BadResponse("two equal CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", .duplicateContentLength),
        BadResponse("bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n", .badContentLength),
        BadResponse("NUL in header value", "HTTP/1.1 200 OK\r\nX-A: a\u{0}b\r\n\r\n", .badHeaderValue),
        BadResponse("NUL in header name", "HTTP/1.1 200 OK\r\nX\u{0}A: a\r\n\r\n", .badHeaderName),
        BadResponse("obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", .obsFold),
        BadResponse("TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .transferEncodingInHTTP10),
        BadResponse("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", .bareLF),
        BadResponse("leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", .badRequestLine),
    ]

    static let framed: [FramedResponse] = [
        FramedResponse("Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", .length(42)),
        FramedResponse("HEAD with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", method: .head, .none),
        FramedResponse("HEAD with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method: .head, .none),
        FramedResponse("HEAD without framing", "HTTP/1.1 200 OK\r\n\r\n", method: .head, .none),
        FramedResponse("204", "HTTP/1.1 204 No Content\r\n\r\n", status: 204, .none),
        FramedResponse("304 with Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", status: 304, .none),
        FramedResponse("100", "HTTP/1.1 100 Continue\r\n\r\n", status: 100, .none),
        FramedResponse("101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
                       status: 101, .none),
        FramedResponse("103", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", status: 103, .none),
        FramedResponse("no CL and no TE", "HTTP/1.1 200 OK\r\n\r\n", .untilClose, close: true),
        FramedResponse("HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", .length(5), close: true),
        FramedResponse("HTTP/1.0 with keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
                       .length(5)),
        FramedResponse("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .chunked),
        FramedResponse("gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .chunked),
        FramedResponse("TE without final chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .untilClose, close: true),
        FramedResponse("CL 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .none),
        FramedResponse("Connection: close", "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
                       status: 500, .length(2), close: true),
        FramedResponse("no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", status: 404, .none),
    ]

    @Test("Malformed responses throw", arguments: bad)
    func refused(_ c: BadResponse) {
        for method in [Method.get, .post] {
            guard case .failure(let e) = parseResponse(c.bytes, method: method) else {
                Issue.record("accepted")
                continue
            }
            #expect(e == c.error)
        }
    }

    @Test("Framing and close decisions", arguments: framed)
    func framing(_ c: FramedResponse) throws {
        let r = try parseResponse(c.bytes, method: c.method).get()
        #expect(r.status == c.status)
        #expect(r.framing == c.framing)
        #expect(r.close == c.close)
    }

    @Test("Every split gives the same response head", arguments: framed)
    func agreesAtEverySplit(_ c: FramedResponse) {
        let whole = scan(c.bytes, with: makeResponseScanner())
        #expect(whole.outcome == .complete(length: c.bytes.count))
        for cuts in everySplit(c.bytes.count) {
            #expect(scan(c.bytes, cuts: cuts, with: makeResponseScanner()) == whole, "first read of \(cuts[0]) bytes")
        }
        #expect(scan(c.bytes, cuts: byteByByte(c.bytes.count), with: makeResponseScanner()) == whole)
    }

    @Test("Status line parts")
    func statusLine() throws {
        let r = try parseResponse(b("HTTP/1.0 404 Not\tFound here\r\nX-A:  v \r\n\r\n")).get()
        #expect(r.status == 404 && r.version == 10)
        #expect(r.reason == "Not\tFound here")
        #expect(r.fields == [FieldSummary(name: "X-A", value: "v", kind: .other, dropped: false)])
        let empty = try parseResponse(b("HTTP/1.1 200 \r\n\r\n")).get()
        #expect(empty.reason == "" && empty.framing == .untilClose)
        let interim = try parseResponse(b("HTTP/1.1 100 Continue\r\n\r\n")).get()
        #expect(interim.status == 100)
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// What one request of a valid stream must parse to.
struct ExpectedRequest: Sendable {
    var method: Method
    var path: String
    var host: String?
    var hostName: String?
    var version: UInt8 = 11
    var framing: BodyFraming = .none
    var close = false
    var keepAlive10 = false
    var expectContinue = false
    var requestID: String? = nil
    var body: [UInt8] = []
}

/// A valid byte stream of one or more requests and what each must parse to.
struct ValidRequest: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var expected: [ExpectedRequest]
    var testDescription: String { name }
}

/// The valid corpus: the boundary tests split it everywhere, the fuzz test mutates it.
enum ValidCorpus {
    static let requests: [ValidRequest] = [
        ValidRequest(
            name: "GET with headers",
            bytes: b("GET /index.html?q=1&r=%20 HTTP/1.1\r\nHost: Example.COM:8080\r\n"
                + "User-Agent: switchyard-test/1.0\r\nAccept: */*\r\nX-Empty:\r\nX-Spaces: \t a  b \t\r\n")
                + b("X-Obs: caf") + [0xE9] + b("\r\nX-Request-Id: abc-123_x.y\r\n\r\n"),
            expected: [ExpectedRequest(method: .get, path: "/index.html?q=1&r=%20", host: "Example.COM:8080",
                                       hostName: "Example.COM", requestID: "abc-123_x.y")]),
        ValidRequest(
            name: "POST with Content-Length and Expect",
            bytes: b("POST /upload HTTP/1.1\r\nHost: api.local\r\nContent-Type: text/plain\r\n"
                + "Content-Length: 11\r\nExpect: 100-Continue\r\n\r\nhello world"),
            expected: [ExpectedRequest(method: .post, path: "/upload", host: "api.local", hostName: "api.local",
                                       framing: .length(11), expectContinue: true, body: b("hello world"))]),
        ValidRequest(
            name: "chunked with extensions and trailers",
            bytes: b("POST /chunks HTTP/1.1\r\nHost: [::1]:8443\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                + "5;name=value\r\nhello\r\n1A ; q=\"a;b\"\t;flag\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                + "0;last=1\r\nX-Checksum: abc\r\nX-Other:\r\n\r\n"),
            expected: [ExpectedRequest(method: .post, path: "/chunks", host: "[::1]:8443", hostName: "[::1]",
                                       framing: .chunked, body: b("helloabcdefghijklmnopqrstuvwxyz"))]),
        ValidRequest(
            name: "pipelined requests back to back",
            bytes: b("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
                + "\r\nDELETE /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
            expected: [
                ExpectedRequest(method: .get, path: "/a", host: "h", hostName: "h"),
                ExpectedRequest(method: .post, path: "/b", host: "h", hostName: "h", framing: .length(3), body: b("abc")),
                ExpectedRequest(method: .put, path: "/c", host: "h", hostName: "h", framing: .chunked, body: b("xyz")),
                ExpectedRequest(method: .delete, path: "/d", host: "h", hostName: "h", close: true),
            ]),
        ValidRequest(
            name: "absolute-form target",
            bytes: b("GET http://Example.org:81/p/q?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"),
            expected: [ExpectedRequest(method: .get, path: "/p/q?x=1", host: "Example.org:81", hostName: "Example.org")]),
        ValidRequest(
            name: "absolute-form without a path",
            bytes: b("HEAD HTTPS://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n"),
            expected: [ExpectedRequest(method: .head, path: "", host: "h.example", hostName: "h.example")]),
        ValidRequest(
            name: "leading CRLF",
            bytes: b("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            expected: [ExpectedRequest(method: .get, path: "/", host: "a", hostName: "a")]),
        ValidRequest(
            name: "HTTP/1.0 without Host",
            bytes: b("GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n"),
            expected: [ExpectedRequest(method: .get, path: "/old", host: nil, hostName: nil, version: 10, close: true)]),
        ValidRequest(
            name: "HTTP/1.0 keep-alive then default close",
            bytes: b("POST /k HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"
                + "GET /k2 HTTP/1.0\r\nHost: h\r\n\r\n"),
            expected: [
                ExpectedRequest(method: .post, path: "/k", version: 10, framing: .length(2), keepAlive10: true, body: b("hi")),
                ExpectedRequest(method: .get, path: "/k2", host: "h", hostName: "h", version: 10, close: true),
            ]),
        ValidRequest(
            name: "OPTIONS asterisk-form",
            bytes: b("OPTIONS * HTTP/1.1\r\nHost: h:1\r\n\r\n"),
            expected: [ExpectedRequest(method: .options, path: "*", host: "h:1", hostName: "h")]),
        ValidRequest(
            name: "zero Content-Length and an unknown method",
            bytes: b("POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\nPURGE /x HTTP/1.1\r\nhost: H\r\n\r\n"),
            expected: [
                ExpectedRequest(method: .post, path: "/z", host: "h", hostName: "h"),
                ExpectedRequest(method: .other, path: "/x", host: "H", hostName: "H"),
            ]),
    ]

    /// Chunked bodies (framing only, no head) followed by bytes that belong to the next message.
    static let chunkedBodies: [ChunkedCase] = [
        ChunkedCase("one chunk", "5\r\nhello\r\n0\r\n\r\n", payload: "hello"),
        ChunkedCase("empty body", "0\r\n\r\n", payload: ""),
        ChunkedCase("extensions and BWS", "5 \t;a=b;c=\"d;e\"\r\nhello\r\n3;x\r\nabc\r\n0;end\r\n\r\n", payload: "helloabc"),
        ChunkedCase("trailers", "2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-Empty:\r\nX-Tab:\ta\tb\r\n\r\n", payload: "hi"),
        ChunkedCase("hex spellings", "A\r\n0123456789\r\na\r\nabcdefghij\r\n00000F\r\nABCDEFGHIJKLMNO\r\n000\r\n\r\n",
                    payload: "0123456789abcdefghijABCDEFGHIJKLMNO"),
        ChunkedCase("fifteen digit size", "000000000000003\r\nabc\r\n0\r\n\r\n", payload: "abc"),
        ChunkedCase("data full of framing bytes", "7\r\n\r\n0\r\n\r\n\r\n1\r\n\n\r\n0\r\n\r\n", payload: "\r\n0\r\n\r\n\n"),
        ChunkedCase("one byte chunks", "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", payload: "abc"),
    ]
}

/// A chunked body, its payload, and bytes after it that the decoder must leave alone.
struct ChunkedCase: Sendable, CustomTestStringConvertible {
    var name: String
    var encoded: [UInt8]
    var payload: [UInt8]
    var bytes: [UInt8] { encoded + b("GET /next HTTP/1.1\r\n") }
    var testDescription: String { name }

    init(_ name: String, _ encoded: String, payload: String) {
        self.name = name
        self.encoded = b(encoded)
        self.payload = b(payload)
    }
}

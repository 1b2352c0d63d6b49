@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// A request that must be refused, the error it must be refused with, and the status the client
/// gets for it.
struct Malformed: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var error: HTTPError
    var status: Int
    var testDescription: String { name }

    init(_ name: String, _ bytes: [UInt8], _ error: HTTPError, _ status: Int = 400) {
        self.name = name
        self.bytes = bytes
        self.error = error
        self.status = status
    }

    init(_ name: String, _ raw: String, _ error: HTTPError, _ status: Int = 400) {
        self.init(name, b(raw), error, status)
    }

    /// A request with `fields` (CRLF-terminated lines) after a valid request line.
    static func fields(_ name: String, _ fields: String, _ error: HTTPError, _ status: Int = 400) -> Malformed {
        Malformed(name, "POST / HTTP/1.1\r\n" + fields + "\r\n", error, status)
    }

    /// A request line with a valid Host field after it.
    static func line(_ name: String, _ line: String, _ error: HTTPError, _ status: Int = 400) -> Malformed {
        Malformed(name, line + "\r\nHost: h\r\n\r\n", error, status)
    }

    /// A field line whose name or value holds `byte`.
    static func withByte(_ name: String, _ before: String, _ byte: UInt8, _ after: String, _ error: HTTPError) -> Malformed {
        Malformed(name, b("GET / HTTP/1.1\r\nHost: h\r\n" + before) + [byte] + b(after + "\r\n\r\n"), error)
    }

    /// A chunked request whose body is `body`.
    static func chunked(_ name: String, _ body: String, _ error: HTTPError) -> Malformed {
        Malformed(name, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body, error)
    }
}

enum MalformedCorpus {
    static let framing: [Malformed] = [
        .fields("CL and TE", "Host: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", .contentLengthWithTransferEncoding),
        .fields("TE and CL", "Host: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", .contentLengthWithTransferEncoding),
        .fields("CL +1", "Host: h\r\nContent-Length: +1\r\n", .badContentLength),
        .fields("CL 1,1", "Host: h\r\nContent-Length: 1,1\r\n", .badContentLength),
        .fields("CL 5, 5", "Host: h\r\nContent-Length: 5, 5\r\n", .badContentLength),
        .fields("CL -1", "Host: h\r\nContent-Length: -1\r\n", .badContentLength),
        .fields("CL 1 1", "Host: h\r\nContent-Length: 1 1\r\n", .badContentLength),
        .fields("CL empty", "Host: h\r\nContent-Length: \r\n", .badContentLength),
        .fields("CL hex", "Host: h\r\nContent-Length: 0x10\r\n", .badContentLength),
        .fields("CL 1.5", "Host: h\r\nContent-Length: 1.5\r\n", .badContentLength),
        .fields("CL 20 digits", "Host: h\r\nContent-Length: 18446744073709551617\r\n", .badContentLength),
        .fields("CL above 2^53", "Host: h\r\nContent-Length: 9007199254740993\r\n", .badContentLength),
        .fields("two equal CL", "Host: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n", .duplicateContentLength),
        .fields("two different CL", "Host: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n", .duplicateContentLength),
        .fields("TE gzip", "Host: h\r\nTransfer-Encoding: gzip\r\n", .badTransferEncoding),
        .fields("TE identity", "Host: h\r\nTransfer-Encoding: identity\r\n", .badTransferEncoding),
        .fields("TE gzip, chunked", "Host: h\r\nTransfer-Encoding: gzip, chunked\r\n", .unsupportedTransferEncoding, 501),
        .fields("TE gzip then chunked field", "Host: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                .unsupportedTransferEncoding, 501),
        .fields("TE chunked, chunked", "Host: h\r\nTransfer-Encoding: chunked, chunked\r\n", .badTransferEncoding),
        .fields("TE chunked twice in two fields", "Host: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                .badTransferEncoding),
        .fields("TE chunked, gzip", "Host: h\r\nTransfer-Encoding: chunked, gzip\r\n", .badTransferEncoding),
        .fields("TE chunkedx", "Host: h\r\nTransfer-Encoding: chunkedx\r\n", .badTransferEncoding),
        .fields("TE empty", "Host: h\r\nTransfer-Encoding: \r\n", .badTransferEncoding),
        .fields("TE only commas", "Host: h\r\nTransfer-Encoding: , ,\r\n", .badTransferEncoding),
        Malformed("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .transferEncodingInHTTP10),
    ]

    static let chunks: [Malformed] = [
        .chunked("chunk size g", "g\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("chunk size empty", "\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("chunk size 0x1", "0x1\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("chunk size negative", "-1\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("chunk size after a space", " 1\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("chunk size 16 hex digits", "0000000000000001\r\nx\r\n0\r\n\r\n", .chunkTooLarge),
        .chunked("chunk size 17 hex digits", "10000000000000000\r\nx\r\n0\r\n\r\n", .chunkTooLarge),
        .chunked("bare LF after chunk size", "1\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("bare LF after extension", "1;a=b\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("CR CR after chunk size", "1\r\rx\r\n0\r\n\r\n", .badChunk),
        .chunked("bare LF after chunk data", "1\r\nx\n0\r\n\r\n", .badChunk),
        .chunked("missing CRLF after chunk data", "1\r\nxy\r\n0\r\n\r\n", .badChunk),
        .chunked("CR without LF after chunk data", "1\r\nx\r0\r\n\r\n", .badChunk),
        .chunked("bare LF in last chunk line", "0\n\r\n", .badChunk),
        .chunked("bare LF ending a trailer", "0\r\nX: a\n\r\n", .badChunk),
        .chunked("bare LF as the final line", "0\r\n\n", .badChunk),
        .chunked("CR CR as the final line", "0\r\n\r\r", .badChunk),
        .chunked("folded trailer", "0\r\nX: a\r\n b\r\n\r\n", .badChunk),
        .chunked("NUL in extension", "1;a\u{0}\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("DEL in trailer", "0\r\nX: a\u{7F}\r\n\r\n", .badChunk),
        .chunked("garbage after the size", "1 x\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("extension line too long", "1;" + String(repeating: "a", count: 5000) + "\r\nx\r\n0\r\n\r\n", .badChunk),
        .chunked("trailers too large",
                 "0\r\n" + String(repeating: "X-T: " + String(repeating: "v", count: 1000) + "\r\n", count: 40) + "\r\n",
                 .trailersTooLarge),
    ]

    static let fields: [Malformed] = [
        .fields("obs-fold with space", "Host: h\r\nX-A: a\r\n b\r\n", .obsFold),
        .fields("obs-fold with tab", "Host: h\r\nX-A: a\r\n\tb\r\n", .obsFold),
        .fields("first field folded", " Host: h\r\n", .obsFold),
        .fields("space before colon", "Host : h\r\n", .spaceBeforeColon),
        .fields("tab before colon", "Host: h\r\nX-A\t: a\r\n", .spaceBeforeColon),
        .withByte("NUL in value", "X-A: a", 0x00, "b", .badHeaderValue),
        .withByte("CR in value", "X-A: a", 0x0D, "b", .bareCR),
        .withByte("CR before the CRLF", "X-A: a", 0x0D, "", .bareCR),
        .withByte("DEL in value", "X-A: a", 0x7F, "b", .badHeaderValue),
        .withByte("SOH in value", "X-A: a", 0x01, "b", .badHeaderValue),
        .withByte("VT in value", "X-A: a", 0x0B, "b", .badHeaderValue),
        .withByte("ESC in value", "X-A: a", 0x1B, "b", .badHeaderValue),
        .withByte("NUL in name", "X", 0x00, "A: a", .badHeaderName),
        .withByte("CR in name", "X", 0x0D, "A: a", .badHeaderName),
        .withByte("DEL in name", "X", 0x7F, "A: a", .badHeaderName),
        .withByte("SOH in name", "X", 0x01, "A: a", .badHeaderName),
        .withByte("non-ASCII in name", "X", 0xC3, "A: a", .badHeaderName),
        .withByte("separator in name", "X", 0x28, "A: a", .badHeaderName),
        .withByte("CR starting a line", "", 0x0D, "X-A: a", .badHeaderName),
        .fields("empty name", "Host: h\r\n: a\r\n", .badHeaderName),
        .fields("no colon", "Host: h\r\nNoColon\r\n", .badHeaderName),
        .fields("HTTP/1.1 without Host", "Content-Length: 0\r\n", .missingHost),
        .fields("two Host", "Host: a\r\nHost: a\r\n", .duplicateHost),
        .fields("Host a b", "Host: a b\r\n", .badHost),
        .fields("Host a/b", "Host: a/b\r\n", .badHost),
        .fields("Host a@b", "Host: a@b\r\n", .badHost),
        .fields("Host a?b", "Host: a?b\r\n", .badHost),
        .fields("Host unclosed IPv6", "Host: [::1\r\n", .badHost),
        .fields("Expect other than 100-continue", "Host: h\r\nExpect: 101-continue\r\n", .expectationFailed, 417),
        .fields("Expect with a list", "Host: h\r\nExpect: 100-continue, x\r\n", .expectationFailed, 417),
        .fields("Expect empty", "Host: h\r\nExpect:\r\n", .expectationFailed, 417),
        .fields("too many headers", "Host: h\r\n" + String(repeating: "X-N: n\r\n", count: Limits.headers), .tooManyHeaders, 431),
        .fields("header block too large", "Host: h\r\nX-Pad: " + String(repeating: "p", count: Limits.headerBytes) + "\r\n",
                .headersTooLarge, 431),
    ]

    static let lines: [Malformed] = [
        .line("HTTP/2.0", "GET / HTTP/2.0", .versionNotSupported, 505),
        .line("HTTP/1.2", "GET / HTTP/1.2", .versionNotSupported, 505),
        .line("HTTP/0.9", "GET / HTTP/0.9", .versionNotSupported, 505),
        .line("HTTP/1.10", "GET / HTTP/1.10", .badVersion),
        .line("lowercase http/1.1", "GET / http/1.1", .badVersion),
        .line("HTTP/1", "GET / HTTP/1", .badVersion),
        .line("HTTP/1.1 with a trailing space", "GET / HTTP/1.1 ", .badVersion),
        .line("HTTP/a.1", "GET / HTTP/a.1", .badVersion),
        .line("HTTPS/1.1", "GET / HTTPS/1.1", .badVersion),
        .line("request line too long", "GET /" + String(repeating: "a", count: Limits.firstLine) + " HTTP/1.1", .uriTooLong, 414),
        .line("CONNECT", "CONNECT h:443 HTTP/1.1", .methodNotImplemented, 501),
        .line("asterisk-form with GET", "GET * HTTP/1.1", .badTarget),
        .line("space in target", "GET /a b HTTP/1.1", .badVersion),
        .line("two spaces before target", "GET  / HTTP/1.1", .badTarget),
        .line("tab in target", "GET /a\tb HTTP/1.1", .badTarget),
        .line("control byte in target", "GET /a\u{1}b HTTP/1.1", .badTarget),
        .line("DEL in target", "GET /a\u{7F}b HTTP/1.1", .badTarget),
        .line("absolute-form, empty authority", "GET http:///x HTTP/1.1", .badTarget),
        .line("absolute-form, only a query", "GET http://?q HTTP/1.1", .badTarget),
        .line("absolute-form, nothing after scheme", "GET http:// HTTP/1.1", .badTarget),
        .line("absolute-form with userinfo", "GET http://u@h/ HTTP/1.1", .badTarget),
        .line("unknown scheme", "GET ftp://h/ HTTP/1.1", .badTarget),
        .line("relative target", "GET h/x HTTP/1.1", .badTarget),
        .line("separator in method", "G@T / HTTP/1.1", .badMethod),
        .line("tab after method", "GET\t/ HTTP/1.1", .badMethod),
        .line("space before method", " GET / HTTP/1.1", .badRequestLine),
        .line("bare CR in target", "GET /a\rb HTTP/1.1", .badTarget),
        Malformed("non-ASCII byte in target", b("GET /a") + [0x80] + b(" HTTP/1.1\r\nHost: h\r\n\r\n"), .badTarget),
        Malformed("two leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", .badRequestLine),
        Malformed("bare LF ending the request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", .bareLF),
        Malformed("bare LF ending a field", "GET / HTTP/1.1\r\nHost: h\n\r\n", .bareLF),
        Malformed("bare LF as the blank line", "GET / HTTP/1.1\r\nHost: h\r\n\n", .bareLF),
        Malformed("bare LF before the request", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", .bareLF),
    ]

    static let all = framing + chunks + fields + lines
}

@Suite("Malformed requests")
struct MalformedRequestTests {
    @Test("Refused with the right error and status", arguments: MalformedCorpus.all)
    func refused(_ c: Malformed) {
        let whole = RequestStream.run(c.bytes)
        #expect(whole.error == c.error)
        #expect(whole.error?.status == c.status)
        #expect(whole.messages.allSatisfy { !$0.complete }, "nothing before the error is a finished request")
        #expect(whole.violations == [])
        // The same error when the bytes trickle in (the size limits fire before the line ends).
        let slow = RequestStream.run(c.bytes, cuts: byteByByte(c.bytes.count))
        #expect(slow.error == c.error, "byte by byte")
    }

    @Test("Chunked framing errors come from the decoder alone", arguments: MalformedCorpus.chunks)
    func chunkedDecoderAlone(_ c: Malformed) throws {
        let head = b("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        let body = Array(c.bytes[head.count...])
        #expect(decodeChunked(body).error == c.error)
        #expect(decodeChunked(body, cuts: byteByByte(body.count)).error == c.error)
    }

    @Test("Status and code of every error")
    func statusTable() {
        let table: [(HTTPError, Int)] = [
            (.uriTooLong, 414), (.headersTooLarge, 431), (.tooManyHeaders, 431), (.versionNotSupported, 505),
            (.unsupportedTransferEncoding, 501), (.methodNotImplemented, 501), (.expectationFailed, 417),
            (.badRequestLine, 400), (.bareLF, 400), (.badChunk, 400), (.chunkTooLarge, 400), (.missingHost, 400),
        ]
        for (e, status) in table { #expect(e.status == status, "\(e)") }
        var n: UInt8 = 0
        while let e = HTTPError(rawValue: n) {
            #expect(e.code.utf8CodeUnitCount > 0)
            n += 1
        }
        #expect(n == HTTPError.badStatus.rawValue + 1)
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// Connection options (RFC 9110 §7.6.1): named fields are dropped at this hop, except the framing
/// and routing fields the gateway relies on; close and keep-alive decide connection reuse.
@Suite("Connection options")
struct ConnectionOptionsTests {
    private func request(_ fields: String, version: String = "1.1") throws -> HeadSummary {
        try parseRequest(b("GET / HTTP/\(version)\r\nHost: h\r\n" + fields + "\r\n")).get()
    }

    @Test("close plus a field name drops that field and closes")
    func closeAndDrop() throws {
        let h = try request("X-Foo: 1\r\nConnection: close, X-Foo\r\nX-Bar: 2\r\n")
        #expect(h.close)
        #expect(!h.keepAlive10)
        #expect(h.field("X-Foo")?.dropped == true)
        #expect(h.field("X-Bar")?.dropped == false)
        #expect(h.field("Connection")?.kind == .connection)
    }

    @Test("Options match names case-insensitively, across several Connection fields")
    func severalFields() throws {
        let h = try request("x-foo: 1\r\nX-BAR: 2\r\nX-Baz: 3\r\nConnection: X-FOO\r\nconnection: ,x-bar ,\r\n")
        #expect(!h.close)
        #expect(h.fields.filter(\.dropped).map(\.name) == ["x-foo", "X-BAR"])
    }

    @Test("Every field with a named name is dropped, not just the first")
    func repeatedField() throws {
        let h = try request("X-Foo: 1\r\nX-Foo: 2\r\nConnection: x-foo\r\n")
        #expect(h.fields.filter(\.dropped).count == 2)
    }

    @Test("Framing and routing fields survive being named", arguments: [
        "content-length", "Content-Length", "transfer-encoding", "host", "connection", "x-request-id", "expect",
    ])
    func protectedFields(_ name: String) throws {
        let h = try parseRequest(b("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Request-Id: r1\r\nConnection: \(name)\r\n\r\n")).get()
        #expect(h.fields.allSatisfy { !$0.dropped })
        #expect(h.framing == .length(3))
        #expect(h.host == "h")
        #expect(h.requestID == "r1")
    }

    @Test("Keep-Alive and Upgrade fields are hop-by-hop by kind, not by Connection")
    func hopByHopKinds() throws {
        let h = try request("Keep-Alive: timeout=5\r\nUpgrade: h2c\r\nTE: trailers\r\nProxy-Connection: x\r\n")
        #expect(h.fields.map(\.kind) == [.host, .keepAlive, .upgrade, .te, .proxyConnection])
        #expect(h.fields.dropFirst().allSatisfy { $0.kind.isHopByHop })
        #expect(!HeaderKind.host.isHopByHop && !HeaderKind.contentLength.isHopByHop)
    }

    @Test("HTTP/1.0 closes by default; keep-alive keeps it open")
    func http10() throws {
        let plain = try request("", version: "1.0")
        #expect(plain.close && !plain.keepAlive10)
        let kept = try request("Connection: keep-alive\r\n", version: "1.0")
        #expect(!kept.close && kept.keepAlive10)
        let both = try request("Connection: keep-alive, close\r\n", version: "1.0")
        #expect(both.close && !both.keepAlive10)
    }

    @Test("HTTP/1.1 stays open by default; keep-alive is not a 1.0 flag there")
    func http11() throws {
        let plain = try request("")
        #expect(!plain.close && !plain.keepAlive10)
        let kept = try request("Connection: Keep-Alive\r\n")
        #expect(!kept.close && !kept.keepAlive10)
        let closed = try request("Connection: CLOSE\r\n")
        #expect(closed.close)
        // "closed" and "close-ish" are other options, not close.
        let other = try request("Connection: closed, close-ish\r\n")
        #expect(!other.close)
    }

    @Test("Responses drop named fields too")
    func response() throws {
        let r = try parseResponse(b("HTTP/1.1 200 OK\r\nX-Up: 1\r\nContent-Length: 0\r\nConnection: close, x-up, content-length\r\n\r\n")).get()
        #expect(r.close)
        #expect(r.field("X-Up")?.dropped == true)
        #expect(r.field("Content-Length")?.dropped == false)
        #expect(r.framing == .none)
    }

    @Test("Known header names classify in any case", arguments: [
        ("HOST", HeaderKind.host), ("content-LENGTH", .contentLength), ("Transfer-Encoding", .transferEncoding),
        ("x-forwarded-for", .xForwardedFor), ("X-Forwarded-Proto", .xForwardedProto), ("x-forwarded-host", .xForwardedHost),
        ("Via", .via), ("X-Request-ID", .xRequestID), ("Trailer", .trailer), ("te", .te), ("Expect", .expect),
        ("hosts", .other), ("content_length", .other), ("X-Forwarded-Fo", .other), ("", .other),
    ])
    func classify(_ name: String, _ kind: HeaderKind) {
        let bytes = b(name)
        let got = bytes.withUnsafeBufferPointer { HeaderKind.classify($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, bytes.count) }
        #expect(got == kind)
    }

    static let requestIDs: [(String, String?)] = [
        ("X-Request-Id: abc-1.2_3:4+5/6=7~8\r\n", "abc-1.2_3:4+5/6=7~8"),
        ("X-Request-Id: a b\r\n", nil),
        ("X-Request-Id: a\r\nx-request-id: b\r\n", nil),
        ("X-Request-Id:\r\n", nil),
        ("X-Request-Id: a;b\r\n", nil),
        ("X-Request-Id: " + String(repeating: "r", count: 128) + "\r\n", String(repeating: "r", count: 128)),
        ("X-Request-Id: " + String(repeating: "r", count: 129) + "\r\n", nil),
    ]

    @Test("X-Request-Id is kept only when single and well-formed", arguments: requestIDs)
    func requestID(_ field: String, _ kept: String?) throws {
        #expect(try request(field).requestID == kept)
    }
}

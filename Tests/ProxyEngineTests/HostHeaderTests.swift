@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// Host values (RFC 9110 §7.2): name, optional port of digits, IPv6 literals in brackets.
@Suite("Host header")
struct HostHeaderTests {
    @Test(arguments: [
        ("example.com", "example.com"), ("example.com:8080", "example.com"), ("[::1]", "[::1]"),
        ("[::1]:443", "[::1]"), ("a.b.c:", "a.b.c"), ("127.0.0.1:80", "127.0.0.1"),
    ])
    func accepted(value: String, name: String) throws {
        let r = parseRequest(b("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n"))
        let h = try r.get()
        #expect(h.hostName == name)
    }

    @Test(arguments: [":80", "[::1]x", "[::1", "::1", "a:b", "a:8a", "]a", "a]b:1", "a[b"])
    func refused(value: String) {
        let r = parseRequest(b("GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n"))
        #expect(throws: HTTPError.badHost) { try r.get() }
    }
}

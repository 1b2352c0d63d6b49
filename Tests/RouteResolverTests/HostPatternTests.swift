import Testing
@testable import RouteResolver

@Suite("Host patterns")
struct HostPatternTests {
    @Test("Exact and wildcard patterns parse lowercased")
    func parses() {
        #expect(HostPattern("example.com") == .exact(Array("example.com".utf8)))
        #expect(HostPattern("Example.COM") == .exact(Array("example.com".utf8)))
        #expect(HostPattern("*.Example.com") == .suffix(Array(".example.com".utf8)))
        #expect(HostPattern("127.0.0.1") == .exact(Array("127.0.0.1".utf8)))
        #expect(HostPattern("[::1]") == .exact(Array("[::1]".utf8)))
    }

    @Test("Malformed patterns are rejected", arguments: [
        "", "*", "*.", "a*b", "*a.com", "a.*.com", "*.a*", "**.a", "a/b", "*.a/b", "a b", "a\tb", " a", "a\u{7F}",
        "ex\u{E4}mple.com", "\u{130}.com",
    ])
    func rejects(_ text: String) {
        #expect(HostPattern(text) == nil)
    }

    private func matches(_ pattern: String, _ host: String) -> Bool {
        let p = HostPattern(pattern)!
        return Array(host.utf8).withUnsafeBytes { p.matches($0) }
    }

    @Test("Exact names match in any case and nothing else", arguments: [
        ("example.com", true), ("EXAMPLE.com", true), ("Example.Com", true), ("example.com.", false),
        ("xexample.com", false), ("example.co", false), ("a.example.com", false), ("", false), ("example.con", false),
    ])
    func exact(_ host: String, _ expected: Bool) {
        #expect(matches("Example.com", host) == expected)
    }

    @Test("Wildcards match one or more labels below the name, never the name itself", arguments: [
        ("a.example.com", true), ("A.B.Example.COM", true), ("x-y.example.com", true),
        ("example.com", false), (".example.com", false), ("aexample.com", false),
        ("example.com.evil", false), ("a.example.co", false), ("", false),
    ])
    func wildcard(_ host: String, _ expected: Bool) {
        #expect(matches("*.example.com", host) == expected)
    }
}

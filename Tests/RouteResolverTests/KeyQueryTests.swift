import Testing
@testable import RouteResolver

@Suite("Key from a query parameter")
struct KeyQueryTests {
    static let userId = Array("userId".utf8)

    @Test("The first parameter with the exact name is the key", arguments: [
        ("/api?userId=u1", KeyOutcome.key("u1")), ("/api?a=1&userId=u1&b", .key("u1")), ("?userId=u1", .key("u1")),
        ("/api?userId=u1&userId=u2", .key("u1")), ("/api?xuserId=1&userId=2", .key("2")),
        ("/api?userId2=1&userId=3", .key("3")), ("/api?UserId=1&userId=4", .key("4")),
        ("/api?userId=u1#frag", .key("u1")), ("/api?userId=u1#&userId=u2", .key("u1")),
        ("/api?a=?&userId=x", .key("x")), ("/api?&&userId=u1&&", .key("u1")),
        ("/api?userId=u1&", .key("u1")), ("/api?a=b=c&userId=u", .key("u")), ("/api?a&userId=u5", .key("u5")),
        ("/api?a=userId&userId=u6", .key("u6")), ("/api?userId=\(longestKey)", .key(longestKey)),
        ("/api/fun-ai/workspace/files?path=/src&userId=Ab_-9", .key("Ab_-9")),
    ])
    func found(_ target: String, _ expected: KeyOutcome) {
        #expect(keyOutcome(target) { KeyExtractor.fromQuery($0, name: Self.userId) } == expected)
    }

    @Test("No parameter with the name means no key", arguments: [
        "/api", "", "/api?", "/api?&", "/api?&&&", "/api?#userId=u1", "/api#?userId=u1", "/api#x?userId=u1",
        "/api?a=1&b=2", "/api?xuserId=1", "/api?userId2=1", "/api?UserId=1", "/api?userid=1", "/api?user%49d=1",
        "/api?=u1", "/api?%75serId=u1", "/userId=u1", "/api/userId/u1", "/api?a=1;userId=u1", "/api? userId=u1", "/api??userId=q",
    ])
    func missing(_ target: String) {
        #expect(keyOutcome(target) { KeyExtractor.fromQuery($0, name: Self.userId) } == .missing)
    }

    @Test("A present but malformed value is invalid, and the first occurrence still decides", arguments: [
        "/api?userId=", "/api?userId", "/api?userId#f", "/api?userId=#f", "/api?a=1&userId", "/api?userId&userId=u2",
        "/api?userId=&userId=u2", "/api?userId=a%20b&userId=u2", "/api?userId=a%20b", "/api?userId=%75", "/api?userId=a+b",
        "/api?userId=u.1", "/api?userId=~", "/api?userId==u1", "/api?userId=u1=", "/api?userId=\(overlongKey)",
        "/api?userId=é", "/api?userId=u1;x=1", "/api?userId= u1", "/api?userId=u1 ", "/api?userId=u1/", "/api?userId=u1?",
        "/api?userId=\"u1\"",
    ])
    func invalid(_ target: String) {
        #expect(keyOutcome(target) { KeyExtractor.fromQuery($0, name: Self.userId) } == .invalid)
    }

    static let rawCases: [([UInt8], KeyOutcome)] = [
        (keyBytes("/api?userId=", [0xFF]), .invalid),
        (keyBytes("/api?userId=u", [0x80, 0x31]), .invalid),
        (keyBytes("/api?a=", [0xFF, 0xFE], "&userId=u1"), .key("u1")),
        (keyBytes("/", [0xFF], "x?userId=u2"), .key("u2")),
        (keyBytes("/api?userId", [0xC3], "=u3"), .missing),
    ]

    @Test("Bytes that are not UTF-8 in the value are invalid; elsewhere they are ignored", arguments: rawCases)
    func rawBytes(_ target: [UInt8], _ expected: KeyOutcome) {
        #expect(keyOutcome(target) { KeyExtractor.fromQuery($0, name: Self.userId) } == expected)
    }

    @Test("A single-byte name is matched whole, not as a suffix or prefix", arguments: [
        ("/x?id=1&d=2", KeyOutcome.key("2")), ("/x?dd=1", .missing), ("/x?d", .invalid), ("/x?d=3&d=4", .key("3")),
    ])
    func shortName(_ target: String, _ expected: KeyOutcome) {
        let d = Array("d".utf8)
        #expect(keyOutcome(target) { KeyExtractor.fromQuery($0, name: d) } == expected)
    }
}

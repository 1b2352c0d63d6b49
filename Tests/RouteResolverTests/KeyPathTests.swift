import Testing
@testable import RouteResolver

@Suite("Key from a path segment")
struct KeyPathTests {
    static let ws = Array("/ws/".utf8)

    @Test("The segment after the prefix is the key", arguments: [
        ("/ws/abc", KeyOutcome.key("abc")), ("/ws/abc/", .key("abc")), ("/ws/abc/x?y", .key("abc")),
        ("/ws/abc?y", .key("abc")), ("/ws/abc?", .key("abc")), ("/ws/abc#f", .key("abc")),
        ("/ws/abc/def/ghi", .key("abc")), ("/ws/u1/@vite/client", .key("u1")), ("/ws/A-b_9", .key("A-b_9")),
        ("/ws/-", .key("-")), ("/ws/_", .key("_")), ("/ws/u1/..", .key("u1")), ("/ws/u1/%2e%2e", .key("u1")),
        ("/ws/u1?next=/ws/u2", .key("u1")), ("/ws/\(longestKey)", .key(longestKey)),
        ("/ws/\(longestKey)/x", .key(longestKey)), ("/ws/\(longestKey)?q", .key(longestKey)),
    ])
    func found(_ target: String, _ expected: KeyOutcome) {
        #expect(keyOutcome(target) { KeyExtractor.fromPath($0, prefix: Self.ws) } == expected)
    }

    @Test("A target outside the prefix has no key", arguments: [
        "/ws", "/ws?x=1", "/ws#f", "/wsx/abc", "/ws-abc", "/other", "/", "", "*", "/w", "/WS/abc", "/Ws/abc",
        "/x/ws/abc", "ws/abc", "//ws/abc", "/%77s/abc", "/api?next=/ws/abc",
    ])
    func missing(_ target: String) {
        #expect(keyOutcome(target) { KeyExtractor.fromPath($0, prefix: Self.ws) } == .missing)
    }

    @Test("A malformed segment is invalid, never a guess", arguments: [
        "/ws/", "/ws//x", "/ws//", "/ws/?q", "/ws/#f", "/ws/a%20b", "/ws/%41", "/ws/abc%", "/ws/a.b", "/ws/.",
        "/ws/..", "/ws/../admin", "/ws/~u", "/ws/a~", "/ws/a b", "/ws/a+b", "/ws/a;x=1", "/ws/a:b", "/ws/a@b",
        "/ws/a,b", "/ws/é", "/ws/u\u{0}", "/ws/\(overlongKey)", "/ws/\(overlongKey)/x", "/ws/\(overlongKey)?q",
    ])
    func invalid(_ target: String) {
        #expect(keyOutcome(target) { KeyExtractor.fromPath($0, prefix: Self.ws) } == .invalid)
    }

    @Test("Bytes that are not UTF-8 in the segment are invalid", arguments: [
        [0xFF] as [UInt8], [0x80], [0x75, 0xC3], [0x00], [0x75, 0x7F],
    ])
    func rawBytes(_ segment: [UInt8]) {
        #expect(keyOutcome(Self.ws + segment + Array("/x".utf8)) { KeyExtractor.fromPath($0, prefix: Self.ws) } == .invalid)
    }

    @Test("Other prefixes: the key starts right where the prefix ends", arguments: [
        ("/", "/abc/x", KeyOutcome.key("abc")), ("/", "/", .invalid), ("/", "/@vite/client", .invalid),
        ("/api/v1/apps/", "/api/v1/apps/app_1/logs", .key("app_1")), ("/api/v1/apps/", "/api/v1/apps", .missing),
        ("/app/u-", "/app/u-42/x", .key("42")), ("/app/u-", "/app/u-/x", .invalid), ("/app/u-", "/app/v-42", .missing),
        ("/ws", "/ws/abc", .invalid), ("/ws", "/wsabc", .key("abc")),
    ])
    func otherPrefixes(_ prefix: String, _ target: String, _ expected: KeyOutcome) {
        let p = Array(prefix.utf8)
        #expect(keyOutcome(target) { KeyExtractor.fromPath($0, prefix: p) } == expected)
    }

    @Test("A key found in a larger buffer has offsets relative to the view passed in")
    func offsetsAreRelative() {
        let buffer = Array("GET /ws/u1/x HTTP/1.1\r\n".utf8)
        let lookup = buffer.withUnsafeBytes { raw in
            KeyExtractor.fromPath(UnsafeRawBufferPointer(rebasing: raw[4..<12]), prefix: Self.ws)
        }
        #expect(lookup == .found(start: 4, count: 2))
    }
}

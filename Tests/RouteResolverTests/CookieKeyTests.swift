import Testing
@testable import RouteResolver

@Suite("Key from a Cookie header field")
struct CookieKeyTests {
    static let wsUid = Array("ws_uid".utf8)

    /// About 10 KB of other cookies, the size a busy site's Cookie header reaches.
    static let manyCookies = (0..<200).map { "c\($0)=\(String(repeating: "v", count: 40))" }.joined(separator: "; ")

    @Test("The first pair with the exact name is the key", arguments: [
        ("ws_uid=u1", KeyOutcome.key("u1")), ("a=1; ws_uid=u1; b=2", .key("u1")), ("a=1;ws_uid=u1;b=2", .key("u1")),
        ("a=1;\tws_uid=u1\t;b=2", .key("u1")), ("  ws_uid=u1  ", .key("u1")), ("ws_uid = u1", .key("u1")),
        ("ws_uid=\t u1", .key("u1")), ("ws_uid=u1;", .key("u1")), (";;ws_uid=u5;;", .key("u5")),
        ("ws_uid=\"u1\"", .key("u1")), ("a=1; ws_uid=\"Q-2_x\"; b", .key("Q-2_x")), ("ws_uid= \"u1\" ", .key("u1")),
        ("ws_uid=u1; ws_uid=u2", .key("u1")), ("ws_uid=\"u1\"; ws_uid=u2", .key("u1")),
        ("xws_uid=1; ws_uid=u2", .key("u2")), ("ws_uid2=1; ws_uid=u3", .key("u3")), ("WS_UID=1; ws_uid=u7", .key("u7")),
        ("ws_uid; ws_uid=u4", .key("u4")), ("a=b=c; ws_uid=u6", .key("u6")), ("a=ws_uid=1; ws_uid=u8", .key("u8")),
        ("a=\"x;y\"; ws_uid=u9", .key("u9")), ("junk\u{1}; ws_uid=uA", .key("uA")), ("a=é; ws_uid=uB", .key("uB")),
        ("é=1; ws_uid=uC", .key("uC")), ("=; =x; ws_uid=uD", .key("uD")), ("ws_uid=\(longestKey)", .key(longestKey)),
        ("ws_uid=\"\(longestKey)\"", .key(longestKey)), ("\(manyCookies); ws_uid=uE", .key("uE")),
        ("ws_uid=uF; \(manyCookies)", .key("uF")), ("\(manyCookies); ws_uid=uG; \(manyCookies)", .key("uG")),
    ])
    func found(_ cookie: String, _ expected: KeyOutcome) {
        #expect(keyOutcome(cookie) { KeyExtractor.fromCookie($0, name: Self.wsUid) } == expected)
    }

    @Test("No pair with the name means no key", arguments: [
        "", " ", ";", ";;", " ; ; ", "ws_uid", "ws_uid;", "ws_uid ; b=1", "a=1; b=2", "xws_uid=1", "ws_uid2=1",
        "WS_UID=1", "Ws_uid=1", "=ws_uid", "a=ws_uid=1", "ws_ uid=1", "ws_uid\u{A0}=1", "\"ws_uid\"=u1", "ws_uid,a=1",
        "a=1, ws_uid=u1", "ws-uid=u1", manyCookies,
    ])
    func missing(_ cookie: String) {
        #expect(keyOutcome(cookie) { KeyExtractor.fromCookie($0, name: Self.wsUid) } == .missing)
    }

    @Test("A present but malformed value is invalid, and the first pair still decides", arguments: [
        "ws_uid=", "ws_uid=;b=1", "ws_uid=  ", "ws_uid=\t", "ws_uid=\"\"", "ws_uid=\"", "ws_uid=\"u1", "ws_uid=u1\"",
        "ws_uid= \"u1", "ws_uid=\"u1\"\"", "ws_uid=\"\"u1\"\"", "ws_uid=\"u\"1\"", "ws_uid=a=b", "ws_uid==u1", "ws_uid=u 1",
        "ws_uid=\" u1\"", "ws_uid=\"u1 \"", "ws_uid=é", "ws_uid=a%20b", "ws_uid=a.b", "ws_uid=~", "ws_uid=u1,u2",
        "ws_uid=u1\u{0}", "ws_uid='u1'", "ws_uid=\(overlongKey)", "ws_uid=\"\(overlongKey)\"", "ws_uid=; ws_uid=u2",
        "ws_uid=bad!; ws_uid=u2", "a=1; ws_uid=\"u1; ws_uid=u2", "\(manyCookies); ws_uid=a b",
    ])
    func invalid(_ cookie: String) {
        #expect(keyOutcome(cookie) { KeyExtractor.fromCookie($0, name: Self.wsUid) } == .invalid)
    }

    static let rawCases: [([UInt8], KeyOutcome)] = [
        (keyBytes("ws_uid=", [0xFF]), .invalid),
        (keyBytes("ws_uid=\"u", [0x80], "\""), .invalid),
        (keyBytes("", [0xFF, 0xFE, 0x3D, 0x80], "; ws_uid=u1"), .key("u1")),
        (keyBytes("ws_uid", [0xC3], "=u1"), .missing),
        (keyBytes("a=", [0x00, 0x0D, 0x0A], ";ws_uid=u2"), .key("u2")),
    ]

    @Test("Bytes that are not UTF-8 break only the pair they stand in", arguments: rawCases)
    func rawBytes(_ cookie: [UInt8], _ expected: KeyOutcome) {
        #expect(keyOutcome(cookie) { KeyExtractor.fromCookie($0, name: Self.wsUid) } == expected)
    }

    @Test("A quoted key's offsets point inside the quotes")
    func quotedOffsets() {
        let lookup = Array("a=1; ws_uid=\"u1\"".utf8).withUnsafeBytes { KeyExtractor.fromCookie($0, name: Self.wsUid) }
        #expect(lookup == .found(start: 13, count: 2))
    }

    @Test("Several Cookie fields: the first field that is not missing decides", arguments: [
        (["a=1", "ws_uid=u1"], KeyOutcome.key("u1")), (["ws_uid=u1", "ws_uid=u2"], .key("u1")),
        (["ws_uid=", "ws_uid=u2"], .invalid), (["b=2", "c=3"], .missing), ([], .missing),
        (["", "ws_uid=\"u3\"; d=4"], .key("u3")),
    ])
    func severalFields(_ fields: [String], _ expected: KeyOutcome) {
        // The engine's rule, restated here so the per-field results are checked in combination.
        var outcome = KeyOutcome.missing
        for field in fields {
            outcome = keyOutcome(field) { KeyExtractor.fromCookie($0, name: Self.wsUid) }
            if outcome != .missing { break }
        }
        #expect(outcome == expected)
    }
}

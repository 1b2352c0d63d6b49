import Testing
@testable import RouteResolver

@Suite("Key from a header value")
struct KeyHeaderTests {
    @Test("A header value is the key whole", arguments: [
        ("u1", KeyOutcome.key("u1")), ("User_42-x", .key("User_42-x")), (longestKey, .key(longestKey)),
        // The engine trims OWS; a caller that forgot still gets the key (RFC 9110 §5.5).
        (" u1", .key("u1")), ("u1 ", .key("u1")), ("\t u1 \t", .key("u1")),
        ("", .missing), (" ", .missing), ("\t \t", .missing),
        ("u 1", .invalid), ("u1,u2", .invalid), ("u1, u1", .invalid), ("\"u1\"", .invalid), ("u1;", .invalid),
        ("a.b", .invalid), ("a%20b", .invalid), ("~", .invalid), (overlongKey, .invalid), ("é", .invalid),
        ("u1\r", .invalid), ("ws_uid=u1", .invalid),
    ])
    func header(_ value: String, _ expected: KeyOutcome) {
        #expect(keyOutcome(value) { KeyExtractor.fromHeaderValue($0) } == expected)
    }

    @Test("Bytes that are not UTF-8 are invalid, not a crash", arguments: [
        [0xFF] as [UInt8], [0x75, 0x80], [0xC3], [0x00], [0x75, 0x31, 0xFE, 0x20],
    ])
    func rawBytes(_ value: [UInt8]) {
        #expect(keyOutcome(value) { KeyExtractor.fromHeaderValue($0) } == .invalid)
    }
}

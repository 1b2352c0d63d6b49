import Testing
@testable import RouteResolver

@Suite("Key validity")
struct KeyValidityTests {
    @Test("Keys are [A-Za-z0-9_-]{1,64}", arguments: [
        ("a", true), ("Z", true), ("0", true), ("_", true), ("-", true), ("u1", true), ("User_42-x", true),
        ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", true), (longestKey, true),
        ("", false), (overlongKey, false), ("a.b", false), (".", false), ("..", false), ("~u", false),
        ("a%20b", false), ("a b", false), ("a+b", false), ("a/b", false), ("a:b", false), ("a@b", false),
        ("\"a\"", false), ("a;", false), ("a=", false), ("a\t", false), ("\u{0}", false), ("\u{7F}", false),
        ("é", false), ("ü1", false), ("\u{FF21}", false),
    ])
    func validity(_ key: String, _ valid: Bool) {
        let bytes = Array(key.utf8)
        #expect(bytes.withUnsafeBytes { KeyExtractor.isValidKey($0) } == valid)
    }

    @Test("Every byte outside the alphabet makes a key invalid, wherever it stands")
    func everyByte() {
        let alphabet = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".utf8)
        var accepted = 0
        for b in UInt8.min...UInt8.max {
            for key in [[b], [0x61, b], [b, 0x61], [0x61, b, 0x61]] {
                let valid = key.withUnsafeBytes { KeyExtractor.isValidKey($0) }
                #expect(valid == alphabet.contains(b), "byte \(b) in \(key)")
            }
            if alphabet.contains(b) { accepted += 1 }
        }
        #expect(accepted == 64)
    }

    @Test("A found lookup exposes its range; others have none")
    func range() {
        #expect(KeyLookup.found(start: 4, count: 3).range == 4..<7)
        #expect(KeyLookup.missing.range == nil)
        #expect(KeyLookup.invalid.range == nil)
    }
}

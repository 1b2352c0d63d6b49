import Testing
@testable import RouteResolver

/// What a key lookup should yield. A found key is spelled out, so a table row checks the
/// offsets as well as the verdict.
enum KeyOutcome: Sendable, Equatable, CustomTestStringConvertible {
    case key(String)
    case missing
    case invalid
    /// A found range that does not lie inside the input: never expected, always a failure.
    case outside(start: Int, count: Int)

    var testDescription: String {
        switch self {
        case .key(let k): return "key \"\(k)\""
        case .missing: return "missing"
        case .invalid: return "invalid"
        case .outside(let s, let c): return "outside(\(s), \(c))"
        }
    }
}

/// Runs `lookup` over `input` as the engine does (a raw byte view) and reads the key back out of
/// the input through the returned offsets.
func keyOutcome(_ input: [UInt8], _ lookup: (UnsafeRawBufferPointer) -> KeyLookup) -> KeyOutcome {
    switch input.withUnsafeBytes(lookup) {
    case .missing:
        return .missing
    case .invalid:
        return .invalid
    case .found(let start, let count):
        guard start >= 0, count >= 0, start + count <= input.count else { return .outside(start: start, count: count) }
        return .key(String(decoding: input[start..<(start + count)], as: UTF8.self))
    }
}

func keyOutcome(_ input: String, _ lookup: (UnsafeRawBufferPointer) -> KeyLookup) -> KeyOutcome {
    keyOutcome(Array(input.utf8), lookup)
}

/// The longest valid key and one byte more, for the length boundary rows.
let longestKey = String(repeating: "a", count: 60) + "Z9_-"
let overlongKey = longestKey + "b"

/// `head`, then raw bytes (often not UTF-8), then `tail`: inputs a String literal cannot spell.
func keyBytes(_ head: String, _ raw: [UInt8], _ tail: String = "") -> [UInt8] {
    Array(head.utf8) + raw + Array(tail.utf8)
}

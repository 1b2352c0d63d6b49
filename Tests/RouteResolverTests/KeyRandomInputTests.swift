import Testing
@testable import RouteResolver

/// SplitMix64: a tiny, seedable generator, so a failing input can be reproduced from its seed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Reference models written with plain collection operations (split, firstIndex, trimming
/// slices), independent of the byte loops under test. Slices keep their base indices, so the
/// offsets they report are offsets into the input, as the real functions' are.
private enum Reference {
    static let alphabet = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".utf8)
    static let slash = UInt8(ascii: "/"), question = UInt8(ascii: "?"), hash = UInt8(ascii: "#")

    static func verdict(_ key: ArraySlice<UInt8>) -> KeyLookup {
        guard (1...64).contains(key.count), key.allSatisfy(alphabet.contains) else { return .invalid }
        return .found(start: key.startIndex, count: key.count)
    }

    static func trim(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = s
        while let f = s.first, f == 0x20 || f == 0x09 { s.removeFirst() }
        while let l = s.last, l == 0x20 || l == 0x09 { s.removeLast() }
        return s
    }

    static func path(_ input: [UInt8], _ prefix: [UInt8]) -> KeyLookup {
        guard input.starts(with: prefix) else { return .missing }
        let rest = input[prefix.count...]
        let end = rest.firstIndex { $0 == slash || $0 == question || $0 == hash } ?? input.endIndex
        return verdict(input[prefix.count..<end])
    }

    static func query(_ input: [UInt8], _ name: [UInt8]) -> KeyLookup {
        let beforeHash = input.prefix { $0 != hash }
        guard let q = beforeHash.firstIndex(of: question) else { return .missing }
        for param in beforeHash[(q + 1)...].split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
            let parts = param.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard parts[0].elementsEqual(name) else { continue }
            return parts.count == 2 ? verdict(parts[1]) : .invalid
        }
        return .missing
    }

    static func cookie(_ input: [UInt8], _ name: [UInt8]) -> KeyLookup {
        for pair in input.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false) {
            guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
            guard trim(pair[..<eq]).elementsEqual(name) else { continue }
            var value = trim(pair[(eq + 1)...])
            if value.count >= 2, value.first == 0x22, value.last == 0x22 { value = value.dropFirst().dropLast() }
            return verdict(value)
        }
        return .missing
    }

    static func header(_ input: [UInt8]) -> KeyLookup {
        let value = trim(input[...])
        return value.isEmpty ? .missing : verdict(value)
    }
}

@Suite("Key extraction on random input")
struct KeyRandomInputTests {
    /// Pieces that make the parsers branch: separators, quotes, whitespace, the names and prefixes
    /// being looked for and near misses of them, key bytes and bytes that are never in a key.
    static let tokens: [[UInt8]] = [
        "/", "?", "#", "&", "=", ";", " ", "\t", "\"", "%", ".", "~", "+", ",", "ws_uid", "xws_uid", "ws_uid2",
        "userId", "xuserId", "userId2", "/ws/", "/ws", "ws", "u1", "A", "z9", "_", "-", "abcdefghijklmnopqrstuvwxyz0123456789",
    ].map { Array($0.utf8) } + [[0x00], [0x7F], [0x80], [0xC3, 0xA9], [0xFF], [0x0D, 0x0A]]

    fileprivate static func randomInput(_ rng: inout SplitMix64) -> [UInt8] {
        var input: [UInt8] = []
        let pieces = Int.random(in: 0...24, using: &rng)
        for _ in 0..<pieces {
            if Int.random(in: 0..<8, using: &rng) == 0 {
                input.append(UInt8.random(in: .min ... .max, using: &rng))
            } else {
                input += tokens.randomElement(using: &rng)!
            }
        }
        return input
    }

    /// Checks that a result lies inside the input, that a found key passes `isValidKey`, and
    /// that the result matches the reference model.
    static func check(_ input: [UInt8], _ actual: KeyLookup, _ expected: KeyLookup, _ what: String) {
        let shown = String(decoding: input, as: UTF8.self)
        if case .found(let start, let count) = actual {
            let inside = start >= 0 && count >= 0 && start + count <= input.count
            #expect(inside, "\(what): range \(start), \(count) outside \(input.count) bytes of \(input)")
            if inside {
                let valid = input.withUnsafeBytes { KeyExtractor.isValidKey(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)])) }
                #expect(valid, "\(what): found an invalid key in \(shown)")
            }
        }
        #expect(actual == expected, "\(what) of \(input) \"\(shown)\"")
    }

    @Test("Results stay inside the input, found keys are valid and agree with a reference model",
          arguments: [1, 42, 0x5EED, 0xDEAD_BEEF] as [UInt64])
    func randomInputs(seed: UInt64) {
        var rng = SplitMix64(state: seed)
        let prefixes = ["/ws/", "/", "/ws"].map { Array($0.utf8) }
        let names = ["ws_uid", "userId", "u1"].map { Array($0.utf8) }
        for _ in 0..<3_000 {
            let input = Self.randomInput(&rng)
            input.withUnsafeBytes { raw in
                for p in prefixes {
                    Self.check(input, KeyExtractor.fromPath(raw, prefix: p), Reference.path(input, p), "path")
                }
                for n in names {
                    Self.check(input, KeyExtractor.fromQuery(raw, name: n), Reference.query(input, n), "query")
                    Self.check(input, KeyExtractor.fromCookie(raw, name: n), Reference.cookie(input, n), "cookie")
                }
                Self.check(input, KeyExtractor.fromHeaderValue(raw), Reference.header(input), "header")
            }
        }
    }
}

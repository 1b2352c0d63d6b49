/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
/// a 64-bit counter passed through a mixing function. Tiny, seedable and the same on every
/// platform, so a failing fuzz case is reproduced from its seed alone.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<n` (n > 0). The modulo bias is irrelevant at these sizes.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// Byte-level mutations of a valid message, biased toward the bytes HTTP/1 framing cares about.
struct Mutator {
    /// Delimiters, digits, hex, whitespace and the control and high bytes the codec must refuse.
    static let interesting: [UInt8] = [
        0x00, 0x01, 0x09, 0x0A, 0x0B, 0x0D, 0x1F, 0x20, 0x22, 0x2B, 0x2C, 0x2D, 0x2F, 0x30, 0x31,
        0x39, 0x3A, 0x3B, 0x3F, 0x40, 0x41, 0x46, 0x47, 0x5B, 0x5D, 0x61, 0x66, 0x67, 0x7F, 0x80, 0xFF,
    ]
    /// Multi-byte fragments that change framing when spliced in.
    static let fragments: [[UInt8]] = [
        Array("\r\n".utf8), Array("\n".utf8), Array("\r".utf8), Array("\r\n\r\n".utf8),
        Array("Content-Length: 5\r\n".utf8), Array("Transfer-Encoding: chunked\r\n".utf8),
        Array("Host: h\r\n".utf8), Array("Connection: close\r\n".utf8), Array("Expect: 100-continue\r\n".utf8),
        Array(" chunked".utf8), Array("0\r\n\r\n".utf8), Array("ffffffffffffffff".utf8), Array("HTTP/1.0".utf8),
        Array(";x=\"y\"".utf8), Array(", ".utf8), Array("99999999999999999999".utf8),
    ]

    var rng: SplitMix64

    /// Applies one to four random edits to a copy of `input`; one edit is the most likely, so
    /// many mutants stay close enough to valid to get past the start line.
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var m = input
        var edits = 1
        while edits < 4 && rng.chance(35) { edits += 1 }
        for _ in 0..<edits { edit(&m) }
        return m
    }

    private mutating func byte() -> UInt8 {
        rng.chance(60) ? Self.interesting[rng.below(Self.interesting.count)] : UInt8(truncatingIfNeeded: rng.next())
    }

    private mutating func edit(_ m: inout [UInt8]) {
        if m.isEmpty { m.append(byte()); return }
        let at = rng.below(m.count)
        switch rng.below(8) {
        case 0:  // flip one bit
            m[at] ^= 1 << UInt8(rng.below(8))
        case 1:  // overwrite a byte
            m[at] = byte()
        case 2:  // insert a byte
            m.insert(byte(), at: rng.below(m.count + 1))
        case 3:  // delete a short run
            m.removeSubrange(at..<min(m.count, at + 1 + rng.below(4)))
        case 4:  // duplicate a run somewhere else (repeated headers, repeated chunks)
            let n = 1 + rng.below(min(32, m.count - at))
            let run = Array(m[at..<(at + n)])
            m.insert(contentsOf: run, at: rng.below(m.count + 1))
        case 5:  // splice in a framing fragment
            m.insert(contentsOf: Self.fragments[rng.below(Self.fragments.count)], at: rng.below(m.count + 1))
        case 6:  // truncate
            m.removeSubrange(at...)
        default:  // swap two bytes
            m.swapAt(at, rng.below(m.count))
        }
    }
}

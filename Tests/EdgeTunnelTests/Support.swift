import EdgeTunnel

/// Bytes from a hex literal (whitespace ignored). Test data only: traps on a bad digit.
func hex(_ s: String) -> [UInt8] {
    let digits = s.utf8.filter { $0 > 0x20 }.map { d -> UInt8 in
        switch d {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return d - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return d - UInt8(ascii: "a") + 10
        default: fatalError("bad hex digit \(d)")
        }
    }
    precondition(digits.count % 2 == 0)
    return stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

/// Feeds `input` to `parser` (a fresh one by default) cut at the offsets `splits` (ascending),
/// one feed per piece, and returns the last step.
func parse(_ input: [UInt8], splits: [Int] = [], parser: ClientHelloParser = ClientHelloParser()) -> ClientHelloParser.Step {
    var p = parser
    var step = ClientHelloParser.Step.needMore
    var from = 0
    input.withUnsafeBytes { all in
        for cut in splits + [input.count] {
            let to = max(from, min(cut, input.count))
            step = p.feed(UnsafeRawBufferPointer(rebasing: all[from..<to]))
            from = to
        }
    }
    return step
}

/// Feeds `input` one byte per call until a step other than needMore; returns it and how many
/// bytes it took.
func parseByteByByte(_ input: [UInt8]) -> (step: ClientHelloParser.Step, at: Int) {
    var p = ClientHelloParser()
    for i in input.indices {
        let s = withUnsafeBytes(of: input[i]) { p.feed($0) }
        if s != .needMore { return (s, i + 1) }
    }
    return (.needMore, input.count)
}

/// The handshake bytes of a stream of handshake records (their headers removed).
func handshakeBytes(_ records: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var at = 0
    while at + 5 <= records.count {
        let length = Int(records[at + 3]) << 8 | Int(records[at + 4])
        out += records[(at + 5)..<min(records.count, at + 5 + length)]
        at += 5 + length
    }
    return out
}

/// `handshake` cut into handshake records of the given fragment sizes (cycled), as a sender
/// that fragments differently would put it on the wire (RFC 8446 §5.1).
func records(_ handshake: [UInt8], sizes: [Int], version: UInt16 = 0x0301) -> [UInt8] {
    var out: [UInt8] = []
    var at = 0
    var k = 0
    while at < handshake.count {
        let n = min(sizes[k % sizes.count], handshake.count - at)
        out += [22, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(n >> 8), UInt8(n & 0xFF)]
        out += handshake[at..<(at + n)]
        at += n
        k += 1
    }
    return out
}

/// SplitMix64 (Steele, Lea and Flood, 2014): seedable and the same on every platform, so a
/// failing fuzz case is reproduced from its seed alone. Same idea as ProxyEngineTests' copy.
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

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// A server name the parser may hand out: lowercase LDH labels, no trailing dot, ≤ 255 bytes.
func isValidRoutedName(_ name: String) -> Bool {
    let b = Array(name.utf8)
    guard !b.isEmpty, b.count <= 255, b.first != UInt8(ascii: "."), b.last != UInt8(ascii: ".") else { return false }
    return b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }
        && !name.contains("..")
}

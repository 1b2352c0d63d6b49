import EdgeTunnel
import Testing

/// The parser survives random and mutated hellos (issue 15: "survives a fuzz run in `make
/// test`"). It asserts only what must hold for any input: the parser returns, and a hello it
/// accepts carries a routable server name or none. Seeded, so a failure names its case.
@Suite struct ClientHelloFuzzTests {
    static let seeds: [[UInt8]] = [
        Captured.opensslTLS13, Captured.opensslTLS12, Captured.curl, Captured.opensslNoSNI, Captured.opensslNoALPN,
        HelloBuilder().bytes(),
        records(handshakeBytes(Captured.opensslTLS13), sizes: [7, 100]),
    ]

    /// Feeds `input` in random pieces; checks the result against the whole-input result and
    /// the invariants. Returns the step.
    @discardableResult
    func check(_ input: [UInt8], _ rng: inout SplitMix64, _ label: @autoclosure () -> String) -> ClientHelloParser.Step {
        let whole = parse(input)
        var cuts: [Int] = []
        var at = 0
        while at < input.count && cuts.count < 8 {
            at += 1 + rng.below(max(1, input.count / 3))
            cuts.append(at)
        }
        let pieces = parse(input, splits: cuts)
        #expect(pieces == whole, "\(label()) cuts \(cuts)")
        if case .hello(let h) = whole {
            if let name = h.serverName { #expect(isValidRoutedName(name), "\(label()): \(name)") }
            #expect(h.recordBytes <= input.count && h.recordBytes <= ClientHelloParser().maxWireBytes, "\(label())")
            #expect(h.alpn.allSatisfy { !$0.isEmpty && $0.count <= 255 }, "\(label())")
        }
        return whole
    }

    @Test func randomBytes() {
        var rng = SplitMix64(seed: 0x15_C1_1E_47)
        for i in 0..<20_000 {
            var input = (0..<rng.below(300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Half of them look like a handshake record header, so the noise reaches the body.
            if rng.chance(50) && input.count >= 9 {
                input[0] = 22; input[1] = 3; input[2] = UInt8(rng.below(5))
                let n = input.count - 5
                input[3] = UInt8(n >> 8); input[4] = UInt8(n & 0xFF); input[5] = 1
                input[6] = 0; input[7] = UInt8((n - 4) >> 8); input[8] = UInt8((n - 4) & 0xFF)
            }
            check(input, &rng, "random #\(i)")
        }
    }

    @Test func mutatedHellos() {
        var rng = SplitMix64(seed: 0xED6E)
        let fields = HelloBuilder().wire().lengths
        var outcomes: [String: Int] = [:]
        for i in 0..<30_000 {
            let seedIndex = rng.below(Self.seeds.count)
            var m = Self.seeds[seedIndex]
            var edits = 1
            while edits < 4 && rng.chance(35) { edits += 1 }
            for _ in 0..<edits {
                if seedIndex == 5 && rng.chance(30) {
                    // A length field of the synthetic hello nudged a little or set to an extreme.
                    let f = fields[rng.below(fields.count)]
                    let delta = rng.chance(70) ? rng.below(9) - 4 : Int(truncatingIfNeeded: rng.next())
                    if f.offset + f.width <= m.count { m = m.adjusting(f, by: delta) }
                } else {
                    mutate(&m, &rng)
                }
            }
            let step = check(m, &rng, "mutant #\(i) of seed \(seedIndex)")
            outcomes[label(step), default: 0] += 1
        }
        // The mutants exercise every kind of outcome, not just the first check that fails.
        #expect(outcomes["hello", default: 0] > 100)
        #expect(outcomes["needMore", default: 0] > 100)
        #expect(outcomes.keys.filter { $0.hasPrefix("malformed") }.count >= 10, "\(outcomes)")
    }

    func label(_ s: ClientHelloParser.Step) -> String {
        switch s {
        case .hello: "hello"
        case .needMore: "needMore"
        case .notTLS: "notTLS"
        case .tooLarge: "tooLarge"
        case .malformed(let r): "malformed \(r.rawValue)"
        }
    }

    /// One byte-level edit: bit flip, overwrite, insert, delete a run, duplicate a run, truncate.
    func mutate(_ m: inout [UInt8], _ rng: inout SplitMix64) {
        if m.isEmpty { m.append(UInt8(truncatingIfNeeded: rng.next())); return }
        let at = rng.below(m.count)
        let interesting: [UInt8] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x10, 0x16, 0x20, 0x2B, 0x2E, 0x40, 0x5F, 0x7F, 0x80, 0xFF]
        let byte = rng.chance(50) ? interesting[rng.below(interesting.count)] : UInt8(truncatingIfNeeded: rng.next())
        switch rng.below(6) {
        case 0: m[at] ^= 1 << UInt8(rng.below(8))
        case 1: m[at] = byte
        case 2: m.insert(byte, at: rng.below(m.count + 1))
        case 3: m.removeSubrange(at..<min(m.count, at + 1 + rng.below(4)))
        case 4:
            let run = Array(m[at..<min(m.count, at + 1 + rng.below(32))])
            m.insert(contentsOf: run, at: rng.below(m.count + 1))
        default: m.removeSubrange(at...)
        }
    }
}

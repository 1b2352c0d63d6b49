@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// Seeded mutation fuzzing of the whole HTTP/1 codec (STYLE.md point 10): valid and malformed
/// messages get random byte edits, and every mutant goes through scanner, parser and chunked
/// decoder twice, once whole and once split at a random offset. Nothing may crash or read out of
/// bounds, every accepted head must satisfy `Invariants`, and both feeds must agree.
///
/// Deterministic: a failure names its seed and iteration, and rerunning reproduces it.
@Suite("Codec fuzzing with seeded mutations")
struct CodecFuzzTests {
    static let seeds: [UInt64] = [0x5EED_0001, 0x5EED_0002, 0x5EED_0003, 0x5EED_0004,
                                  0xC0DE_CAFE, 0xBAD_F00D, 0x1234_5678_9ABC, 0xFFFF_FFFF_FFFF]
    /// 8 seeds x 25,000 = 200,000 request mutants (plus responses and chunked bodies).
    static let requestsPerSeed = 25_000
    static let othersPerSeed = 10_000

    /// Seed inputs: valid messages (mutated three times in four) and short malformed ones, which
    /// sit one edit away from valid and so lead the mutator along the edges of the grammar.
    static let requestCorpus = Corpus(
        valid: ValidCorpus.requests.map(\.bytes),
        malformed: MalformedCorpus.all.map(\.bytes).filter { $0.count < 600 })

    static let responseCorpus = Corpus(
        valid: ResponseHeadTests.framed.map(\.bytes)
            + [b("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n")],
        malformed: ResponseHeadTests.bad.map(\.bytes))

    static let chunkedCorpus = Corpus(
        valid: ValidCorpus.chunkedBodies.map(\.bytes),
        malformed: MalformedCorpus.chunks.map(\.bytes).filter { $0.count < 600 })

    @Test("Mutated request streams", arguments: seeds)
    func requests(seed: UInt64) {
        var m = Mutator(rng: SplitMix64(seed: seed))
        var failures = Failures(seed: seed)
        var accepted = 0, bodies = 0
        var errors: Set<HTTPError> = []
        for i in 0..<Self.requestsPerSeed {
            let mutant = m.mutate(Self.requestCorpus.pick(&m.rng))
            let cut = m.rng.below(mutant.count + 1)
            let whole = RequestStream.run(mutant)
            let split = RequestStream.run(mutant, cuts: [cut])
            accepted += whole.messages.isEmpty ? 0 : 1
            bodies += whole.messages.contains { $0.complete && $0.head.framing != .none } ? 1 : 0
            if let e = whole.error { errors.insert(e) }
            failures.check(i, mutant, whole.violations + split.violations)
            if whole.messages != split.messages || (whole.error == nil) != (split.error == nil) {
                failures.record(i, mutant, "whole and split at \(cut) disagree: \(whole.error as Any) vs \(split.error as Any)")
            }
            if let e = whole.error, e == .badStatus || e == .badStatusLine {
                failures.record(i, mutant, "response error \(e) for a request")
            }
        }
        failures.report()
        // The mutants must exercise both sides: many still parse (and carry bodies), many fail,
        // and in many different ways. A mutator that only produced garbage would prove nothing.
        #expect(accepted > Self.requestsPerSeed / 8, "\(accepted) accepted")
        #expect(bodies > Self.requestsPerSeed / 40, "\(bodies) with a complete body")
        #expect(errors.count >= 20, "distinct errors: \(errors.sorted { $0.rawValue < $1.rawValue })")
    }

    @Test("Mutated response heads and bodies", arguments: seeds)
    func responses(seed: UInt64) {
        var m = Mutator(rng: SplitMix64(seed: seed ^ 0x5250))
        var failures = Failures(seed: seed)
        var accepted = 0
        let headers = HeaderTable(capacity: Limits.tableCapacity)
        for i in 0..<Self.othersPerSeed {
            let mutant = m.mutate(Self.responseCorpus.pick(&m.rng))
            let cut = m.rng.below(mutant.count + 1)
            let whole = scan(mutant, with: makeResponseScanner())
            let split = scan(mutant, cuts: [cut], with: makeResponseScanner())
            if !sameOutcome(whole.outcome, split.outcome) || whole.headStart != split.headStart {
                failures.record(i, mutant, "scanner: whole \(whole) vs split at \(cut) \(split)")
            }
            guard case .complete(let length) = whole.outcome else { continue }
            if length > mutant.count || length < 4 { failures.record(i, mutant, "head length \(length)") }
            let method: Method = m.rng.chance(20) ? .head : .get
            let framing = withExactBuffer(mutant[0..<length]) { p, _ -> BodyFraming? in
                do throws(HTTPError) {
                    let h = try ResponseHead.parse(p, start: whole.headStart, end: length, headers: headers, requestMethod: method)
                    failures.check(i, mutant, Invariants.response(h, headers, p, start: whole.headStart, end: length, method: method))
                    accepted += 1
                    return h.framing
                } catch {
                    if error.status != 400 { failures.record(i, mutant, "response error \(error) with status \(error.status)") }
                    return nil
                }
            }
            if framing == .chunked { checkChunked(Array(mutant[length...]), cut: m.rng.below(mutant.count - length + 1), i, &failures) }
        }
        failures.report()
        #expect(accepted > Self.othersPerSeed / 10, "\(accepted) accepted")
    }

    @Test("Mutated chunked bodies", arguments: seeds)
    func chunkedBodies(seed: UInt64) {
        var m = Mutator(rng: SplitMix64(seed: seed ^ 0xC4C4))
        var failures = Failures(seed: seed)
        var done = 0, refused = 0
        for i in 0..<Self.othersPerSeed {
            let mutant = m.mutate(Self.chunkedCorpus.pick(&m.rng))
            let r = checkChunked(mutant, cut: m.rng.below(mutant.count + 1), i, &failures)
            done += r.end == nil ? 0 : 1
            refused += r.error == nil ? 0 : 1
        }
        failures.report()
        #expect(done > Self.othersPerSeed / 5 && refused > Self.othersPerSeed / 5, "\(done) finished, \(refused) refused")
    }

    /// The oracle has teeth: offsets outside the head, untrimmed values and framing that disagrees
    /// with the fields are all reported.
    @Test("Invariants catch broken heads")
    func invariantsCatchBrokenHeads() throws {
        let bytes = b("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
        let headers = HeaderTable(capacity: 4)
        try bytes.withUnsafeBufferPointer { buf throws(HTTPError) in
            let p = buf.baseAddress!
            let good = try RequestHead.parse(p, start: 0, end: bytes.count, headers: headers)
            #expect(Invariants.request(good, headers, p, start: 0, end: bytes.count) == [])
            var bad = good
            bad.pathLength = bytes.count
            bad.framing = .none
            bad.hostNameLength = 5
            let found = Invariants.request(bad, headers, p, start: 0, end: bytes.count).joined(separator: "; ")
            #expect(found.contains("path range") && found.contains("no body") && found.contains("host name longer"))
            headers[1].valueStart -= 1
            headers[1].valueLength += 1
            headers[0].nameLength += 1
            let fields = Invariants.request(good, headers, p, start: 0, end: bytes.count).joined(separator: "; ")
            #expect(fields.contains("field 0: non-token name byte") && fields.contains("field 1: untrimmed value"))
        }
    }

    @discardableResult
    private func checkChunked(_ bytes: [UInt8], cut: Int, _ i: Int, _ failures: inout Failures) -> ChunkedResult {
        let whole = decodeChunked(bytes)
        let split = decodeChunked(bytes, cuts: [cut])
        failures.check(i, bytes, whole.violations + split.violations)
        if whole != split { failures.record(i, bytes, "chunked whole \(whole) vs split at \(cut) \(split)") }
        if let end = whole.end, end > bytes.count || whole.payload.count >= end {
            failures.record(i, bytes, "chunked end \(end), payload \(whole.payload.count) of \(bytes.count)")
        }
        if let e = whole.error, e != .badChunk && e != .chunkTooLarge && e != .trailersTooLarge {
            failures.record(i, bytes, "chunked error \(e)")
        }
        return whole
    }

    /// Failed and complete outcomes must agree on kind and length; the error itself may differ
    /// (a line that is both too long and ends in a bare LF is refused for whichever shows first).
    private func sameOutcome(_ a: HeadScanner.Outcome, _ b: HeadScanner.Outcome) -> Bool {
        switch (a, b) {
        case (.failed, .failed), (.needMore, .needMore): return true
        case (.complete(let x), .complete(let y)): return x == y
        default: return false
        }
    }
}

/// Inputs for the mutator.
struct Corpus {
    var valid: [[UInt8]]
    var malformed: [[UInt8]]

    func pick(_ rng: inout SplitMix64) -> [UInt8] {
        rng.chance(75) ? valid[rng.below(valid.count)] : malformed[rng.below(malformed.count)]
    }
}

/// Collects the first few failures of a fuzz run, with enough to reproduce each.
struct Failures {
    let seed: UInt64
    private(set) var count = 0
    private var first: [String] = []

    init(seed: UInt64) { self.seed = seed }

    mutating func record(_ iteration: Int, _ input: [UInt8], _ what: String) {
        count += 1
        if first.count < 5 {
            let escaped = input.map { c in
                c >= 0x20 && c < 0x7F && c != 0x5C ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
            }.joined()
            first.append("seed \(seed) iteration \(iteration): \(what)\n  input: \(escaped)")
        }
    }

    mutating func check(_ iteration: Int, _ input: [UInt8], _ violations: [String]) {
        if !violations.isEmpty { record(iteration, input, violations.joined(separator: "; ")) }
    }

    func report(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(count == 0, "\(count) failures, first:\n\(first.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }
}

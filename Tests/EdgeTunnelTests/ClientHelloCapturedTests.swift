import EdgeTunnel
import Testing

/// Real clients' hellos, fed whole, split at every byte, re-fragmented into records and
/// truncated at every length (STYLE.md point 2).
@Suite struct ClientHelloCapturedTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        var expected: ClientHelloInfo
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "openssl TLS 1.3", bytes: Captured.opensslTLS13,
             expected: .init(serverName: "node1.edge.test", alpn: [Array("h2".utf8), Array("http/1.1".utf8)],
                             legacyVersion: 0x0303, offersTLS13: true, recordBytes: 339)),
        Case(name: "openssl TLS 1.2 only", bytes: Captured.opensslTLS12,
             expected: .init(serverName: "node1.edge.test", alpn: [Array("h2".utf8), Array("http/1.1".utf8)],
                             legacyVersion: 0x0303, offersTLS13: false, recordBytes: 230)),
        Case(name: "curl", bytes: Captured.curl,
             expected: .init(serverName: "node1.edge.test", alpn: [Array("h2".utf8), Array("http/1.1".utf8)],
                             legacyVersion: 0x0303, offersTLS13: true, recordBytes: 517)),
        Case(name: "openssl without SNI", bytes: Captured.opensslNoSNI,
             expected: .init(serverName: nil, alpn: [Array("h2".utf8)],
                             legacyVersion: 0x0303, offersTLS13: true, recordBytes: 306)),
        Case(name: "openssl without ALPN", bytes: Captured.opensslNoALPN,
             expected: .init(serverName: "node1.edge.test", alpn: [],
                             legacyVersion: 0x0303, offersTLS13: true, recordBytes: 321)),
    ]

    @Test(arguments: cases)
    func wholeHello(_ c: Case) {
        #expect(parse(c.bytes) == .hello(c.expected))
    }

    @Test(arguments: cases)
    func splitAtEveryByteBoundary(_ c: Case) {
        for cut in 0...c.bytes.count {
            #expect(parse(c.bytes, splits: [cut]) == .hello(c.expected), "cut at \(cut)")
        }
        let (step, at) = parseByteByByte(c.bytes)
        #expect(step == .hello(c.expected))
        #expect(at == c.bytes.count)
    }

    @Test(arguments: cases)
    func refragmentedIntoRecords(_ c: Case) {
        let handshake = handshakeBytes(c.bytes)
        var sizes = Array(1...64).map { [$0] }
        sizes += [[100], [200, 1], [1, 300], [3, 7, 11], [handshake.count - 1], [handshake.count]]
        for s in sizes {
            let wire = records(handshake, sizes: s)
            var expected = c.expected
            expected.recordBytes = wire.count
            #expect(parse(wire) == .hello(expected), "fragments of \(s)")
            #expect(parse(wire, splits: [wire.count / 3, wire.count / 2]) == .hello(expected), "fragments of \(s), split")
        }
        // Byte-by-byte over one-byte records: the longest walk through the record layer.
        let tiny = records(handshake, sizes: [1])
        var expected = c.expected
        expected.recordBytes = tiny.count
        #expect(parseByteByByte(tiny).step == .hello(expected))
    }

    @Test(arguments: cases)
    func truncatedAtEveryLengthNeedsMore(_ c: Case) {
        for n in 0..<c.bytes.count {
            #expect(parse(Array(c.bytes[..<n])) == .needMore, "first \(n) bytes")
        }
        let fragmented = records(handshakeBytes(c.bytes), sizes: [5, 50])
        for n in 0..<fragmented.count {
            #expect(parse(Array(fragmented[..<n])) == .needMore, "first \(n) bytes of 5/50-byte records")
        }
    }

    /// The bytes after the hello (a TLS 1.3 client's early data, say) are not the parser's:
    /// it stops at the hello's last record, and `recordBytes` says where that is.
    @Test(arguments: cases)
    func followingRecordsAreLeftAlone(_ c: Case) {
        let earlyData: [UInt8] = [23, 3, 3, 0, 3, 1, 2, 3]
        #expect(parse(c.bytes + earlyData) == .hello(c.expected))
    }

    @Test func stepRepeatsOnceDone() {
        var p = ClientHelloParser()
        let first = Captured.opensslTLS13.withUnsafeBytes { p.feed($0) }
        #expect(p.state == .done)
        let again = [UInt8](repeating: 0xFF, count: 10).withUnsafeBytes { p.feed($0) }
        #expect(again == first)
        #expect(([] as [UInt8]).withUnsafeBytes { p.feed($0) } == first)
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// The chunked decoder reports the same payload and the same end however its input is split, and
/// never consumes the bytes of the message after the body.
@Suite("Chunked bodies split at every read boundary")
struct ChunkedBoundaryTests {
    @Test("Same payload and end at every split", arguments: ValidCorpus.chunkedBodies)
    func agreesAtEverySplit(_ c: ChunkedCase) {
        let whole = decodeChunked(c.bytes)
        #expect(whole == ChunkedResult(payload: c.payload, end: c.encoded.count))
        for cuts in everySplit(c.bytes.count) {
            #expect(decodeChunked(c.bytes, cuts: cuts) == whole, "first read of \(cuts[0]) bytes")
        }
        #expect(decodeChunked(c.bytes, cuts: byteByByte(c.bytes.count)) == whole, "byte by byte")
    }

    @Test("A body cut short stays unfinished with the payload so far")
    func truncatedBodyWaits() {
        let c = ValidCorpus.chunkedBodies[2]
        for n in 0..<c.encoded.count {
            let r = decodeChunked(Array(c.encoded[0..<n]))
            #expect(r.error == nil && r.end == nil, "prefix of \(n) bytes")
            #expect(c.payload.starts(with: r.payload), "prefix of \(n) bytes")
        }
    }

    @Test("Payload and framing runs never mix")
    func runsAreHomogeneous() throws {
        let bytes = ValidCorpus.chunkedBodies[2].encoded
        var decoder = ChunkedDecoder()
        var kinds: [(ChunkedDecoder.Kind, String)] = []
        var position = 0
        try bytes.withUnsafeBufferPointer { buf in
            while !decoder.isDone {
                let step = try decoder.step(buf.baseAddress! + position, bytes.count - position)
                kinds.append((step.kind, text(bytes[position..<(position + step.count)])))
                position += step.count
            }
        }
        #expect(kinds.filter { $0.0 == .payload }.map(\.1) == ["hello", "abc"])
        #expect(kinds.map(\.1).joined() == text(bytes))
        #expect(decoder.state == .done)
    }

    /// Random payloads, chunk sizes and spellings: de-chunking gives back exactly the payload.
    @Test("Round trip of random bodies", arguments: [1, 2, 3, 5, 8, 13, 21, 34] as [UInt64])
    func roundTrip(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<40 {
            let payload = (0..<rng.below(600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let sizes = (0..<1 + rng.below(4)).map { _ in 1 + rng.below(rng.chance(50) ? 8 : 300) }
            let ext = rng.chance(50) ? [";a=1", " ;b=\"x;y\"", "", ";c"] : []
            let trailers = rng.chance(50) ? ["X-Sum: \(rng.below(1000))", "X-More:  v "] : []
            let encoded = encodeChunked(payload, sizes: sizes, upperHex: rng.chance(50),
                                        leadingZeros: rng.below(3), extensions: ext, trailers: trailers)
            let whole = decodeChunked(encoded)
            #expect(whole == ChunkedResult(payload: payload, end: encoded.count))
            let cuts = (0..<3).map { _ in rng.below(encoded.count + 1) }.sorted()
            #expect(decodeChunked(encoded, cuts: cuts) == whole, "cuts \(cuts)")
        }
        var small = SplitMix64(seed: seed ^ 0xFF)
        let payload = (0..<50).map { _ in UInt8(truncatingIfNeeded: small.next()) }
        let encoded = encodeChunked(payload, sizes: [1, 7, 3], extensions: [";k=v"], trailers: ["T: 1"])
        #expect(decodeChunked(encoded, cuts: byteByByte(encoded.count)) == ChunkedResult(payload: payload, end: encoded.count))
    }
}

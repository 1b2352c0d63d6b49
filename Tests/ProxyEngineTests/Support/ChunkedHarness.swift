@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine

/// What a chunked decoder made of a byte stream: the payload runs concatenated, where the body
/// ended (nil while unfinished) and the error that stopped it.
struct ChunkedResult: Equatable {
    var payload: [UInt8] = []
    var end: Int?
    var error: HTTPError?
    /// Broken promises of `step` itself (empty or oversized runs); must stay empty.
    var violations: [String] = []
}

/// Runs a fresh decoder over `bytes`, which arrive in reads ending at each cut and then at the end.
/// Each `step` sees only the unread part of what has arrived, in its own exact-size copy.
func decodeChunked(_ bytes: [UInt8], cuts: [Int] = []) -> ChunkedResult {
    var decoder = ChunkedDecoder()
    var r = ChunkedResult()
    var position = 0
    for available in cuts + [bytes.count] where available >= position {
        while position < available && !decoder.isDone {
            let step = withExactBuffer(bytes[position..<available]) { p, n -> Result<(Int, ChunkedDecoder.Kind), HTTPError> in
                do throws(HTTPError) {
                    let s = try decoder.step(p, n)
                    return .success((s.count, s.kind))
                } catch {
                    return .failure(error)
                }
            }
            switch step {
            case .failure(let e):
                r.error = e
                return r
            case .success(let (count, kind)):
                guard count > 0 && count <= available - position else {
                    r.violations.append("step returned \(count) of \(available - position) at \(position)")
                    return r
                }
                if kind == .payload { r.payload += bytes[position..<(position + count)] }
                position += count
            }
        }
        if decoder.isDone {
            r.end = position
            return r
        }
    }
    return r
}

/// Chunks `payload` into `sizes` (cycled), with optional extensions, hex spelling and trailers.
/// This is the encoder the round-trip tests check the decoder against.
func encodeChunked(_ payload: [UInt8], sizes: [Int], upperHex: Bool = false, leadingZeros: Int = 0,
                   extensions: [String] = [], trailers: [String] = []) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0, k = 0
    func sizeLine(_ n: Int) {
        var hex = String(n, radix: 16, uppercase: upperHex)
        hex = String(repeating: "0", count: leadingZeros) + hex
        out += b(hex)
        if !extensions.isEmpty { out += b(extensions[k % extensions.count]) }
        out += b("\r\n")
    }
    while i < payload.count {
        let n = min(max(sizes[k % sizes.count], 1), payload.count - i)
        sizeLine(n)
        out += payload[i..<(i + n)]
        out += b("\r\n")
        i += n
        k += 1
    }
    sizeLine(0)
    for t in trailers { out += b(t + "\r\n") }
    out += b("\r\n")
    return out
}

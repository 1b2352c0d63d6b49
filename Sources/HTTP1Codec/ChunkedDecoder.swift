/// Incremental validator and decoder of the chunked transfer coding (RFC 9112 §7.1).
///
/// The proxy forwards chunked bodies byte for byte; this machine walks alongside and refuses bad
/// framing (bad or overflowing sizes, bare LF, missing CRLF after data, oversized chunk lines or
/// trailers). Each `step` reports one run of bytes and whether they are payload, so a caller can
/// forward everything (raw mode) or only the payload (de-chunking for an HTTP/1.0 client).
public struct ChunkedDecoder: Sendable {
    public enum State: Equatable, Sendable {
        /// Reading the hex digits of a chunk size.
        case size
        /// After the size: optional BWS, then ';' extensions or CR.
        case sizeTail
        /// Inside chunk extensions, until CR.
        case extensions
        /// CR seen at the end of the size line; LF must follow.
        case sizeLF
        /// `remaining` bytes of chunk data to go.
        case data
        /// After data: CR, then LF.
        case dataCR, dataLF
        /// At the start of a trailer line (or the final blank line).
        case trailerLineStart
        case trailerLine
        case trailerLF
        /// The final CR of the blank line was seen; LF must follow.
        case finalLF
        case done
    }

    public enum Kind: Equatable, Sendable { case framing, payload }

    public private(set) var state: State = .size
    private var remaining: UInt64 = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    private var trailerLineEmpty = true

    public static let maxLineBytes = 4096
    public static let maxTrailerBytes = 32 * 1024

    public init() {}

    public var isDone: Bool { state == .done }

    /// Examines `p[0..<n]` and returns how many bytes form the next run and whether that run is
    /// payload or framing. Throws on malformed framing. A run never mixes the two kinds.
    public mutating func step(_ p: UnsafePointer<UInt8>, _ n: Int) throws(HTTPError) -> (count: Int, kind: Kind) {
        if state == .data {
            let take = UInt64(n) < remaining ? n : Int(remaining)
            remaining -= UInt64(take)
            if remaining == 0 { state = .dataCR }
            return (take, .payload)
        }
        var i = 0
        while i < n && state != .data && state != .done {
            let b = p[i]
            i += 1
            switch state {
            case .size:
                if ByteClass.isHex(b) {
                    digits += 1
                    // 15 hex digits = 2^60: more than any body we will ever see.
                    if digits > 15 { throw .chunkTooLarge }
                    remaining = remaining << 4 | ByteClass.hexValue(b)
                } else {
                    if digits == 0 { throw .badChunk }
                    try sizeTail(b)
                }
            case .sizeTail:
                try sizeTail(b)
            case .extensions:
                lineBytes += 1
                if lineBytes > Self.maxLineBytes { throw .badChunk }
                if b == 0x0D { state = .sizeLF } else if b == 0x0A || !ByteClass.isFieldValue(b) { throw .badChunk }
            case .sizeLF:
                guard b == 0x0A else { throw .badChunk }
                digits = 0
                lineBytes = 0
                state = remaining == 0 ? .trailerLineStart : .data
            case .dataCR:
                guard b == 0x0D else { throw .badChunk }
                state = .dataLF
            case .dataLF:
                guard b == 0x0A else { throw .badChunk }
                state = .size
            case .trailerLineStart:
                if b == 0x0D { state = .finalLF; continue }
                if b == 0x20 || b == 0x09 || !ByteClass.isToken(b) { throw .badChunk }
                try countTrailer()
                state = .trailerLine
            case .trailerLine:
                try countTrailer()
                if b == 0x0D { state = .trailerLF } else if b == 0x0A || !ByteClass.isFieldValue(b) && b != 0x3A { throw .badChunk }
            case .trailerLF:
                guard b == 0x0A else { throw .badChunk }
                state = .trailerLineStart
            case .finalLF:
                guard b == 0x0A else { throw .badChunk }
                state = .done
            case .data, .done:
                break
            }
        }
        return (i, .framing)
    }

    private mutating func sizeTail(_ b: UInt8) throws(HTTPError) {
        lineBytes += 1
        switch b {
        case 0x0D: state = .sizeLF
        case 0x3B: state = .extensions  // ';'
        case 0x20, 0x09: state = .sizeTail  // BWS before ';' (RFC 9112 §7.1.1)
        default: throw .badChunk
        }
        if lineBytes > Self.maxLineBytes { throw .badChunk }
    }

    private mutating func countTrailer() throws(HTTPError) {
        trailerBytes += 1
        if trailerBytes > Self.maxTrailerBytes { throw .trailersTooLarge }
    }
}

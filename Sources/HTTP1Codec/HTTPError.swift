/// Why a message was refused. Each case knows its status and its short JSON code; a request
/// error always closes the connection afterwards, because framing is in doubt (RFC 9112 §11.2).
public enum HTTPError: UInt8, Error, Sendable {
    case badRequestLine, badMethod, badTarget, uriTooLong, badVersion, versionNotSupported
    case badHeaderName, badHeaderValue, obsFold, spaceBeforeColon, bareLF, bareCR
    case headersTooLarge, tooManyHeaders, missingHost, duplicateHost, badHost
    case badContentLength, duplicateContentLength, contentLengthWithTransferEncoding
    case badTransferEncoding, unsupportedTransferEncoding, transferEncodingInHTTP10, badChunk, chunkTooLarge, trailersTooLarge
    case expectationFailed, methodNotImplemented
    // Upstream side
    case badStatusLine, badStatus

    /// The HTTP status a client gets for this error in a request.
    public var status: Int {
        switch self {
        case .uriTooLong: return 414
        case .headersTooLarge, .tooManyHeaders: return 431
        case .versionNotSupported: return 505
        case .unsupportedTransferEncoding, .methodNotImplemented: return 501
        case .expectationFailed: return 417
        default: return 400
        }
    }

    /// Short machine-readable reason, used in the JSON error body and the error log.
    public var code: StaticString {
        switch self {
        case .badRequestLine: return "malformed request line"
        case .badMethod: return "malformed method"
        case .badTarget: return "malformed request target"
        case .uriTooLong: return "request line too long"
        case .badVersion: return "malformed HTTP version"
        case .versionNotSupported: return "HTTP version not supported"
        case .badHeaderName: return "malformed header name"
        case .badHeaderValue: return "invalid character in header value"
        case .obsFold: return "obsolete line folding"
        case .spaceBeforeColon: return "whitespace before header colon"
        case .bareLF: return "bare LF in message framing"
        case .bareCR: return "bare CR in message"
        case .headersTooLarge: return "header block too large"
        case .tooManyHeaders: return "too many header fields"
        case .missingHost: return "missing Host header"
        case .duplicateHost: return "more than one Host header"
        case .badHost: return "malformed Host header"
        case .badContentLength: return "invalid Content-Length"
        case .duplicateContentLength: return "more than one Content-Length"
        case .contentLengthWithTransferEncoding: return "both Content-Length and Transfer-Encoding"
        case .badTransferEncoding: return "Transfer-Encoding must end in a single chunked"
        case .unsupportedTransferEncoding: return "unsupported Transfer-Encoding"
        case .transferEncodingInHTTP10: return "Transfer-Encoding in HTTP/1.0"
        case .badChunk: return "malformed chunked framing"
        case .chunkTooLarge: return "chunk size overflow"
        case .trailersTooLarge: return "trailer section too large"
        case .expectationFailed: return "unsupported expectation"
        case .methodNotImplemented: return "method not implemented"
        case .badStatusLine: return "malformed status line"
        case .badStatus: return "invalid status code"
        }
    }
}

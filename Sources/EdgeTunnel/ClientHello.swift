/// What a ClientHello tells the listener before any TLS library sees the connection: the name
/// to route by (SNI), the protocols offered (ALPN) and how many bytes the hello occupied.
public struct ClientHelloInfo: Equatable, Sendable {
    /// The `host_name` of the server_name extension (RFC 6066 §3), lowercased, without a
    /// trailing dot, validated as a DNS name; nil when the client sent no server_name.
    public var serverName: String?
    /// The ALPN protocol names in the client's order (RFC 7301 §3.1); empty when the extension
    /// is absent (a present but empty list is malformed). Bytes, not Strings: a protocol name is
    /// an opaque octet string and need not be UTF-8.
    public var alpn: [[UInt8]]
    /// `legacy_version` of the hello body (0x0303 for TLS 1.2 and 1.3 clients, RFC 8446 §4.1.2).
    public var legacyVersion: UInt16
    /// supported_versions lists 0x0304 (RFC 8446 §4.2.1).
    public var offersTLS13: Bool
    /// Wire bytes of the TLS records that carried the hello, record headers included: the
    /// caller's buffer holds exactly this much of the hello, to be handed on unchanged.
    public var recordBytes: Int

    public init(serverName: String?, alpn: [[UInt8]], legacyVersion: UInt16, offersTLS13: Bool, recordBytes: Int) {
        self.serverName = serverName
        self.alpn = alpn
        self.legacyVersion = legacyVersion
        self.offersTLS13 = offersTLS13
        self.recordBytes = recordBytes
    }

    /// The ALPN names decoded for logs and tests (a non-UTF-8 byte becomes U+FFFD).
    public var alpnNames: [String] { alpn.map { String(decoding: $0, as: UTF8.self) } }

    /// Whether the client offered `name` (compared byte for byte, RFC 7301 §3.1).
    public func offers(_ name: String) -> Bool { alpn.contains { $0.elementsEqual(name.utf8) } }
}

/// Why a ClientHello was refused. The raw value is a metrics label.
public enum ClientHelloMalformed: String, Error, Equatable, Sendable, CaseIterable {
    /// A later record of the hello is not a handshake record (RFC 8446 §5.1: no interleaving).
    case recordType = "record_type"
    /// A record's legacy_record_version is outside 0x0300...0x0304.
    case recordVersion = "record_version"
    /// A zero-length handshake record (RFC 8446 §5.1 forbids them).
    case emptyRecord = "empty_record"
    /// A record longer than 2^14 bytes (RFC 8446 §5.1: record_overflow).
    case recordOverflow = "record_overflow"
    /// The first handshake message is not client_hello(1).
    case handshakeType = "handshake_type"
    /// The hello's last record carries bytes after the hello (RFC 8446 §5.1: a message before a
    /// key change, as a ClientHello with early data is, ends on a record boundary).
    case trailingRecordBytes = "trailing_record_bytes"
    /// legacy_version's major byte is not 3.
    case legacyVersion = "legacy_version"
    /// A field runs past the end of what encloses it.
    case truncated
    /// session_id longer than 32 bytes.
    case sessionID = "session_id"
    /// cipher_suites empty or of odd length.
    case cipherSuites = "cipher_suites"
    /// No compression method.
    case compressionMethods = "compression_methods"
    /// The extensions block's length does not match the bytes that follow the methods.
    case extensionsLength = "extensions_length"
    /// The same extension type twice (RFC 8446 §4.2).
    case duplicateExtension = "duplicate_extension"
    /// server_name's list is mis-sized, or holds no or several host_names (RFC 6066 §3).
    case serverNameList = "server_name_list"
    /// The host_name is not a DNS name: empty, too long, an empty or over-long label, or a
    /// byte outside [A-Za-z0-9.-].
    case hostName = "host_name"
    /// ALPN list mis-sized, empty, or with an empty protocol name (RFC 7301 §3.1).
    case alpn
    /// supported_versions mis-sized, empty or of odd length (RFC 8446 §4.2.1).
    case supportedVersions = "supported_versions"
}

extension ClientHelloParser {
    /// What one `feed` decided.
    public enum Step: Equatable, Sendable {
        /// The hello is not complete yet; feed more bytes when they arrive.
        case needMore
        /// A well-formed ClientHello. Terminal.
        case hello(ClientHelloInfo)
        /// The first byte is not a handshake record's content type (22): plain HTTP on a TLS
        /// port, SSLv2-format hellos, noise. Terminal.
        case notTLS
        /// Broken framing or a field that breaks its RFC. Terminal; count it and close.
        case malformed(ClientHelloMalformed)
        /// Well-formed so far but over this parser's bounds (`maxBodyBytes`, `maxWireBytes`).
        /// Terminal.
        case tooLarge
    }
}

/// What a `TLSContext` negotiates. TLS 1.2 and 1.3 only; ECDHE with AEAD ciphers only in 1.2
/// (which also satisfies HTTP/2's cipher requirements, RFC 9113 §9.2.2).
public struct TLSSettings: Sendable {
    /// ALPN protocol names in server preference order, e.g. `["http/1.1"]`, later
    /// `["h2", "http/1.1"]`. The server's first choice that the client offers wins; with no
    /// overlap (or no ALPN from the client) the handshake goes on without ALPN and the caller
    /// speaks HTTP/1.1. Empty: ALPN is not answered at all.
    public var alpn: [String]
    /// Session tickets: nil turns them off (every handshake is a full one).
    public var ticketKeys: TicketKeys?
    /// TLS 1.3 tickets sent after each full handshake (or after a resumption whose ticket was
    /// renewed). Each costs an AES encryption, an HMAC and one more algorithm fetch in OpenSSL
    /// 3.0; clients use one ticket per new connection and fall back to a full handshake.
    public var ticketsPerHandshake: Int
    /// TLS 1.2 cipher list in OpenSSL syntax (Mozilla "intermediate" without DHE). The client's
    /// order decides (no SSL_OP_CIPHER_SERVER_PREFERENCE), so clients without AES hardware can
    /// pick ChaCha20.
    public var ciphers: String
    /// TLS 1.3 cipher suites.
    public var cipherSuites: String
    /// Key-exchange groups, preferred first.
    public var groups: String

    public init(alpn: [String] = ["http/1.1"], ticketKeys: TicketKeys? = nil, ticketsPerHandshake: Int = 1,
                ciphers: String = TLSSettings.defaultCiphers, cipherSuites: String = TLSSettings.defaultCipherSuites,
                groups: String = "X25519:P-256:P-384") {
        self.alpn = alpn
        self.ticketKeys = ticketKeys
        self.ticketsPerHandshake = ticketsPerHandshake
        self.ciphers = ciphers
        self.cipherSuites = cipherSuites
        self.groups = groups
    }

    public static let defaultCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    public static let defaultCipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    /// The ALPN list in wire format (length-prefixed names), or nil when a name is empty or
    /// longer than 255 bytes.
    var alpnWire: [UInt8]? {
        var out: [UInt8] = []
        for p in alpn {
            let b = Array(p.utf8)
            guard !b.isEmpty && b.count <= 255 else { return nil }
            out.append(UInt8(b.count))
            out += b
        }
        return out
    }
}

/// A `TLSContext` could not be built: which step failed and OpenSSL's reason.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public let step: String
    public let reason: String
    public var description: String { "TLS setup: \(step): \(reason)" }
}

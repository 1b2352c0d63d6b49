import COpenSSL

/// The kind of private key behind a certificate. One `Certificate` holds at most one pair per
/// kind; OpenSSL picks among them by the signature algorithms the client offers.
public enum KeyType: String, Sendable, Comparable {
    case ecdsa, rsa, rsaPSS = "rsa-pss", ed25519, ed448, other

    init(kind: Int32) {
        switch kind {
        case 1: self = .ecdsa
        case 2: self = .rsa
        case 3: self = .rsaPSS
        case 4: self = .ed25519
        case 5: self = .ed448
        default: self = .other
        }
    }

    public static func < (a: KeyType, b: KeyType) -> Bool { a.rawValue < b.rawValue }
}

/// One certificate identity: a set of DNS names served with one or more key pairs (for example
/// an ECDSA and an RSA certificate for the same names). Immutable, shared by every worker; each
/// worker builds its own SSL_CTX from the DER kept here (see `TLSContext`).
public final class Certificate: Sendable, CustomStringConvertible {
    /// Position in `CertificateSet.certificates`; a worker's SSL_CTX for it has the same index.
    public let index: Int
    /// Lowercased DNS names without a trailing dot; wildcards keep their `*.` prefix.
    public let names: [String]
    /// The certificate files, one per key pair, in `keyTypes` order.
    public let files: [String]
    public let keyTypes: [KeyType]
    /// The latest notBefore and the earliest notAfter over the pairs (Unix seconds).
    public let notBefore: Int64
    public let notAfter: Int64
    let pairs: [KeyPair]
    /// The names as lowercase bytes, for allocation-free matching.
    let nameBytes: [[UInt8]]

    init(index: Int, names: [String], pairs: [KeyPair]) {
        self.index = index
        self.names = names
        self.pairs = pairs
        self.files = pairs.map(\.certificateFile)
        self.keyTypes = pairs.map(\.keyType)
        self.notBefore = pairs.map(\.notBefore).max() ?? 0
        self.notAfter = pairs.map(\.notAfter).min() ?? 0
        self.nameBytes = names.map { Array($0.utf8) }
    }

    public var description: String {
        "\(names.joined(separator: ",")) [\(keyTypes.map(\.rawValue).joined(separator: "+"))] from \(files.joined(separator: ", "))"
    }

    /// Whether a request for `host` (no port, any case, optional trailing dot) may be served under
    /// this certificate: an exact name, or a wildcard `*.example.com` covering exactly one label
    /// (RFC 6125 §6.4.3). Used to answer 421 Misdirected Request (RFC 9110 §15.5.20) when the
    /// Host header names a site that the SNI-chosen certificate does not cover.
    public func covers(_ host: String) -> Bool {
        var h = host
        return h.withUTF8 { covers(UnsafeRawBufferPointer($0)) }
    }

    /// `covers(_:)` on bytes, e.g. a Host header range in the receive buffer.
    public func covers(_ host: UnsafeRawBufferPointer) -> Bool {
        guard let h = HostName.trimmed(host) else { return false }
        for name in nameBytes where HostName.matches(pattern: name, host: h) { return true }
        return false
    }
}

/// One certificate chain with its private key, as loaded from disk and kept as DER.
struct KeyPair: Sendable {
    let certificateFile: String
    let keyFile: String
    let keyType: KeyType
    /// Leaf first, then the chain in file order.
    let chainDER: [[UInt8]]
    let key: KeyMaterial
    let notBefore: Int64
    let notAfter: Int64
}

/// Private key DER in memory that is wiped when the last reference goes.
final class KeyMaterial: @unchecked Sendable {
    // Immutable after init; only read (and wiped in deinit, when no one else can hold it).
    let bytes: UnsafeMutableRawBufferPointer

    init(copying p: UnsafeRawPointer, count: Int) {
        bytes = .allocate(byteCount: count, alignment: 1)
        bytes.copyMemory(from: UnsafeRawBufferPointer(start: p, count: count))
    }

    deinit {
        OPENSSL_cleanse(bytes.baseAddress, bytes.count)
        bytes.deallocate()
    }
}

/// Host name bytes: trimming and matching without allocating.
enum HostName {
    /// Drops one trailing dot; nil when empty or longer than a DNS name can be (253 + dot).
    @inline(__always)
    static func trimmed(_ h: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var n = h.count
        if n > 0 && h[n - 1] == UInt8(ascii: ".") { n -= 1 }
        guard n > 0 && n <= 253 else { return nil }
        return UnsafeRawBufferPointer(rebasing: h[0..<n])
    }

    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
    }

    /// `pattern` is lowercase; `host` any case.
    static func equal(_ pattern: UnsafeRawBufferPointer, _ host: UnsafeRawBufferPointer) -> Bool {
        guard pattern.count == host.count else { return false }
        for i in 0..<host.count where pattern[i] != lower(host[i]) { return false }
        return true
    }

    /// Exact match, or `*.rest` against a host whose first label is non-empty and whose
    /// remainder after the first dot equals `rest`.
    static func matches(pattern: [UInt8], host: UnsafeRawBufferPointer) -> Bool {
        pattern.withUnsafeBytes { p in
            if p.count > 2 && p[0] == UInt8(ascii: "*") && p[1] == UInt8(ascii: ".") {
                guard let rest = afterFirstLabel(host) else { return false }
                return equal(UnsafeRawBufferPointer(rebasing: p[2...]), rest)
            }
            return equal(p, host)
        }
    }

    /// The bytes after the first dot, when the first label is non-empty and something follows.
    static func afterFirstLabel(_ host: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let dot = host.firstIndex(of: UInt8(ascii: ".")), dot > 0, dot + 1 < host.count else { return nil }
        return UnsafeRawBufferPointer(rebasing: host[(dot + 1)...])
    }

    /// Lowercases and drops a trailing dot; "" for names that cannot match anything.
    static func normalized(_ name: String) -> String {
        var s = name.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}

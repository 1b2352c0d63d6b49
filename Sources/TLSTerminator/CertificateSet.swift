import Glibc

/// Every certificate in one directory, validated, with the name index SNI selection uses.
/// Immutable and shared by all workers; a reload loads a new set and each worker builds a new
/// `TLSContext` from it (connections already open keep the context they started with).
///
/// Directory layout: `NAME.crt` (or `NAME.pem`) holds the leaf certificate first, then its chain;
/// `NAME.key` holds the private key (a `NAME.pem` may carry its key itself when no `NAME.key`
/// exists). Hidden files, other extensions and `.key` files without a certificate are ignored
/// (ACME clients keep account keys next to certificates). Pairs whose certificates carry the same
/// set of names are one `Certificate` with several key types, e.g. `site.crt` (ECDSA) and
/// `site-rsa.crt` (RSA); given two pairs of the same key type and names, the one expiring later
/// is used.
public final class CertificateSet: Sendable {
    /// Groups in the order of their first file (alphabetical).
    public let certificates: [Certificate]
    /// Served when the client sends no SNI or a name nothing covers.
    public let defaultCertificate: Certificate
    public let directory: String
    private let exact: NameIndex
    /// Wildcards keyed by what follows `*.`.
    private let wildcard: NameIndex

    init(directory: String, certificates: [Certificate], defaultIndex: Int) {
        self.directory = directory
        self.certificates = certificates
        self.defaultCertificate = certificates[defaultIndex]
        var exactRows: [(key: [UInt8], target: Int)] = []
        var wildRows: [(key: [UInt8], target: Int)] = []
        for c in certificates {
            for name in c.nameBytes {
                if name.count > 2 && name[0] == UInt8(ascii: "*") && name[1] == UInt8(ascii: ".") {
                    wildRows.append((Array(name[2...]), c.index))
                } else {
                    exactRows.append((name, c.index))
                }
            }
        }
        exact = NameIndex(exactRows)
        wildcard = NameIndex(wildRows)
    }

    /// The certificate for a ClientHello's server name: an exact name, else a wildcard covering
    /// it (one label), else the default. Case-insensitive; a trailing dot is ignored.
    public func lookup(serverName: String?) -> Certificate {
        guard var name = serverName else { return defaultCertificate }
        return name.withUTF8 { lookup(serverName: UnsafeRawBufferPointer($0)) }
    }

    /// `lookup(serverName:)` on bytes (as SSL_get_servername returns them).
    public func lookup(serverName: UnsafeRawBufferPointer) -> Certificate {
        guard let i = match(serverName) else { return defaultCertificate }
        return certificates[i]
    }

    /// The index of the certificate an exact or wildcard name gives, nil when only the default
    /// would apply. Allocation-free: the SNI callback runs it in every handshake.
    func match(_ serverName: UnsafeRawBufferPointer) -> Int? {
        guard let host = HostName.trimmed(serverName) else { return nil }
        if let i = exact.find(host) { return i }
        if let rest = HostName.afterFirstLabel(host), let i = wildcard.find(rest) { return i }
        return nil
    }

    /// Loads and validates every pair in `directory` (see the type's documentation).
    ///
    /// - Parameters:
    ///   - defaultCertificate: the configuration's `default_certificate`: a file name without
    ///     extension (`site` for `site.crt`), or else a DNS name one of the certificates covers.
    ///     Nil: the certificate of the first file in alphabetical order.
    ///   - now: Unix seconds to check validity against (tests); the wall clock when nil.
    /// - Throws: the first problem found, in file order, naming the file.
    public static func load(directory: String, defaultCertificate: String? = nil,
                            now: Int64? = nil) throws(CertificateError) -> CertificateSet {
        let now = now ?? Int64(time(nil))
        let files = try listDirectory(directory)
        let present = Set(files)
        let base = directory.hasSuffix("/") ? directory : directory + "/"

        var loaded: [LoadedPair] = []
        for file in files {
            let stem: Substring
            if file.hasSuffix(".crt") {
                stem = file.dropLast(4)
            } else if file.hasSuffix(".pem") {
                stem = file.dropLast(4)
                // NAME.crt wins over NAME.pem (often a copy of the chain next to it).
                if present.contains(stem + ".crt") { continue }
            } else {
                continue
            }
            guard !stem.isEmpty else { continue }
            let pair = try loadPair(stem: String(stem), certificatePath: base + file,
                                    keyPath: base + stem + ".key", combinedPEM: file.hasSuffix(".pem"), now: now)
            loaded.append(pair)
        }
        guard !loaded.isEmpty else { throw CertificateError(file: directory, reason: .noCertificates) }

        // Group pairs with identical name sets; one pair per key type, the later notAfter wins.
        var groups: [(names: [String], pairs: [KeyPair], stems: [String])] = []
        var groupOf: [[String]: Int] = [:]
        for p in loaded {
            let key = p.names.sorted()
            guard let g = groupOf[key] else {
                groupOf[key] = groups.count
                groups.append((p.names, [p.pair], [p.stem]))
                continue
            }
            groups[g].stems.append(p.stem)
            if let k = groups[g].pairs.firstIndex(where: { $0.keyType == p.pair.keyType }) {
                if p.pair.notAfter > groups[g].pairs[k].notAfter { groups[g].pairs[k] = p.pair }
            } else {
                groups[g].pairs.append(p.pair)
            }
        }
        let certificates = groups.enumerated().map { i, g in Certificate(index: i, names: g.names, pairs: g.pairs) }

        var defaultIndex = 0
        if let wanted = defaultCertificate {
            if let g = groups.firstIndex(where: { $0.stems.contains(wanted) }) {
                defaultIndex = g
            } else {
                let probe = CertificateSet(directory: directory, certificates: certificates, defaultIndex: 0)
                var w = wanted
                guard let i = w.withUTF8({ probe.match(UnsafeRawBufferPointer($0)) }) else {
                    throw CertificateError(file: directory, reason: .unknownDefault(wanted))
                }
                defaultIndex = i
            }
        }
        return CertificateSet(directory: directory, certificates: certificates, defaultIndex: defaultIndex)
    }
}

/// File names in a directory, sorted; hidden entries skipped.
private func listDirectory(_ path: String) throws(CertificateError) -> [String] {
    guard let dir = opendir(path) else {
        let e = errno
        throw CertificateError(file: path, reason: e == ENOENT ? .missing : .unreadable(errno: e))
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        if !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted()
}

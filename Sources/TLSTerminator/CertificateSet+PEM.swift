import COpenSSL
import Glibc

/// One validated pair before grouping.
struct LoadedPair {
    let stem: String
    let names: [String]
    let pair: KeyPair
}

/// PEM files larger than this are not certificates (a full chain is a few KiB).
private let maxFileSize = 1 << 20

extension CertificateSet {
    /// Reads, parses and validates one certificate file and its key.
    static func loadPair(stem: String, certificatePath: String, keyPath: String, combinedPEM: Bool,
                         now: Int64) throws(CertificateError) -> LoadedPair {
        let certBytes = try readFile(certificatePath)
        let chain = try parseCertificates(certBytes, file: certificatePath)
        defer { for x in chain { X509_free(x) } }
        let leaf = chain[0]

        // The key: NAME.key, or for NAME.pem a key block inside the same file.
        var keyFile = keyPath
        var keyBytes: [UInt8]
        do throws(CertificateError) {
            keyBytes = try readFile(keyPath)
        } catch {
            guard error.reason == .missing, combinedPEM, containsKeyBlock(certBytes) else { throw error }
            keyFile = certificatePath
            keyBytes = certBytes
        }
        defer { keyBytes.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        let key = try parseKey(keyBytes, file: keyFile)
        defer { EVP_PKEY_free(key) }

        guard X509_check_private_key(leaf, key) == 1 else {
            ERR_clear_error()
            throw CertificateError(file: keyFile, reason: .keyMismatch(certificate: certificatePath))
        }
        var notBefore: Int64 = 0, notAfter: Int64 = 0
        guard cossl_asn1_time_to_unix(X509_get0_notBefore(leaf), &notBefore) == 1,
              cossl_asn1_time_to_unix(X509_get0_notAfter(leaf), &notAfter) == 1 else {
            throw CertificateError(file: certificatePath, reason: .invalid("unreadable validity dates"))
        }
        if now < notBefore { throw CertificateError(file: certificatePath, reason: .notYetValid(notBefore: notBefore)) }
        if now > notAfter { throw CertificateError(file: certificatePath, reason: .expired(notAfter: notAfter)) }

        let names = dnsNames(leaf)
        guard !names.isEmpty else { throw CertificateError(file: certificatePath, reason: .noNames) }

        var ders: [[UInt8]] = []
        for x in chain {
            var p: UnsafeMutablePointer<UInt8>?
            let n = cossl_x509_to_der(x, &p)
            guard n > 0, let p else { throw CertificateError(file: certificatePath, reason: .invalid(OpenSSLErrors.drain())) }
            ders.append(Array(UnsafeBufferPointer(start: p, count: Int(n))))
            cossl_free(p)
        }
        var kp: UnsafeMutablePointer<UInt8>?
        let kn = cossl_pkey_to_der(key, &kp)
        guard kn > 0, let kp else { throw CertificateError(file: keyFile, reason: .invalid(OpenSSLErrors.drain())) }
        let material = KeyMaterial(copying: kp, count: Int(kn))
        cossl_clear_free(kp, Int(kn))

        let pair = KeyPair(certificateFile: certificatePath, keyFile: keyFile,
                           keyType: KeyType(kind: cossl_pkey_kind(key)), chainDER: ders, key: material,
                           notBefore: notBefore, notAfter: notAfter)
        return LoadedPair(stem: stem, names: names, pair: pair)
    }

    /// Every CERTIFICATE block, leaf first. Caller frees each X509.
    static func parseCertificates(_ bytes: [UInt8], file: String) throws(CertificateError) -> [OpaquePointer] {
        ERR_clear_error()
        var certs: [OpaquePointer] = []
        var failure: String?
        bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return }
            defer { BIO_free(bio) }
            while let x = cossl_read_x509(bio) { certs.append(x) }
            // The loop ends at "no start line" (no more blocks) or at a block that does not decode.
            let e = ERR_peek_last_error()
            if e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && cossl_error_reason(e) == PEM_R_NO_START_LINE) {
                failure = OpenSSLErrors.drain()
            }
            ERR_clear_error()
        }
        if let failure {
            for x in certs { X509_free(x) }
            throw CertificateError(file: file, reason: .invalid(failure))
        }
        if certs.isEmpty {
            throw CertificateError(file: file, reason: hasBeginLine(bytes) ? .invalid("no CERTIFICATE block") : .notPEM)
        }
        return certs
    }

    /// The first private key block (PKCS#8, or traditional RSA/EC). Caller frees the EVP_PKEY.
    static func parseKey(_ bytes: [UInt8], file: String) throws(CertificateError) -> OpaquePointer {
        ERR_clear_error()
        let key: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return cossl_read_private_key(bio)
        }
        if let key { return key }
        let why = OpenSSLErrors.drain()
        if contains(bytes, "ENCRYPTED") { throw CertificateError(file: file, reason: .encryptedKey) }
        if !containsKeyBlock(bytes) { throw CertificateError(file: file, reason: .notPEM) }
        throw CertificateError(file: file, reason: .invalid(why))
    }

    /// subjectAltName dNSNames, or the subject commonName when there are none; lowercased,
    /// without a trailing dot, deduplicated, in certificate order.
    static func dnsNames(_ x: OpaquePointer) -> [String] {
        var names: [String] = []
        func add(_ p: UnsafePointer<UInt8>, _ n: Int) {
            let bytes = UnsafeBufferPointer(start: p, count: n)
            // A DNS name is printable ASCII without spaces; anything else cannot match an SNI.
            guard n > 0, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return }
            let name = HostName.normalized(String(decoding: bytes, as: UTF8.self))
            if !name.isEmpty && !names.contains(name) { names.append(name) }
        }
        if let san = cossl_x509_san(x) {
            defer { cossl_general_names_free(san) }
            for i in 0..<cossl_general_names_count(san) {
                var p: UnsafePointer<UInt8>?
                let n = cossl_general_name_dns(san, i, &p)
                if n > 0, let p { add(p, Int(n)) }
            }
        }
        if names.isEmpty {
            var p: UnsafeMutablePointer<UInt8>?
            let n = cossl_x509_common_name(x, &p)
            if n > 0, let p { add(p, Int(n)) }
            if let p { cossl_free(p) }
        }
        ERR_clear_error()
        return names
    }

    static func readFile(_ path: String) throws(CertificateError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            throw CertificateError(file: path, reason: e == ENOENT ? .missing : .unreadable(errno: e))
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw CertificateError(file: path, reason: .unreadable(errno: e))
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > maxFileSize { throw CertificateError(file: path, reason: .invalid("larger than 1 MiB")) }
        }
        chunk.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
        return out
    }

    private static func hasBeginLine(_ bytes: [UInt8]) -> Bool { contains(bytes, "-----BEGIN ") }

    static func containsKeyBlock(_ bytes: [UInt8]) -> Bool { contains(bytes, "PRIVATE KEY-----") }

    private static func contains(_ bytes: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard bytes.count >= n.count else { return false }
        for i in 0...(bytes.count - n.count) where bytes[i] == n[0] && bytes[i..<(i + n.count)].elementsEqual(n) {
            return true
        }
        return false
    }
}

/// The thread's OpenSSL error queue.
enum OpenSSLErrors {
    /// Empties the queue; returns the oldest error's reason ("no shared cipher"), or a generic text.
    static func drain() -> String {
        let first = ERR_get_error()
        ERR_clear_error()
        guard first != 0 else { return "unknown OpenSSL error" }
        if let r = ERR_reason_error_string(first) { return String(cString: r) }
        return "OpenSSL error 0x\(String(first, radix: 16))"
    }
}

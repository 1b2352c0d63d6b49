import Glibc

/// Why a certificate directory could not be loaded, and which file is at fault. A reload that
/// throws this keeps the previous `CertificateSet` in service; the message is for the operator.
public struct CertificateError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Reason: Equatable, Sendable {
        /// The file (or the directory) does not exist. For a certificate without its key this
        /// names the `.key` file that was expected.
        case missing
        /// open/read failed for another reason (permissions, a directory where a file should be).
        case unreadable(errno: Int32)
        /// No PEM block of the expected kind (CERTIFICATE, or a PRIVATE KEY) in the file.
        case notPEM
        /// PEM, but OpenSSL could not decode it; the reason is OpenSSL's.
        case invalid(String)
        /// The private key is encrypted; a gateway cannot prompt for a passphrase.
        case encryptedKey
        /// The private key does not belong to the certificate (the certificate's file is given).
        case keyMismatch(certificate: String)
        /// notAfter (Unix seconds) is in the past.
        case expired(notAfter: Int64)
        /// notBefore (Unix seconds) is in the future.
        case notYetValid(notBefore: Int64)
        /// Neither a subjectAltName dNSName nor a subject commonName.
        case noNames
        /// The directory holds no `.crt` or `.pem` file.
        case noCertificates
        /// The configured `default_certificate` matches no file name and no certificate name.
        case unknownDefault(String)
    }

    /// The path of the file at fault (the directory for `.noCertificates` and `.unknownDefault`).
    public let file: String
    public let reason: Reason

    public init(file: String, reason: Reason) {
        self.file = file
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .missing: return "\(file): no such file"
        case .unreadable(let e): return "\(file): cannot read: \(String(cString: strerror(e))) (errno \(e))"
        case .notPEM: return "\(file): not PEM (no BEGIN line of the expected kind)"
        case .invalid(let why): return "\(file): invalid PEM content: \(why)"
        case .encryptedKey: return "\(file): private key is encrypted (passphrases are not supported)"
        case .keyMismatch(let cert): return "\(file): private key does not match certificate \(cert)"
        case .expired(let t): return "\(file): certificate expired at \(utcString(t))"
        case .notYetValid(let t): return "\(file): certificate not valid before \(utcString(t))"
        case .noNames: return "\(file): certificate has no DNS subjectAltName and no commonName"
        case .noCertificates: return "\(file): no .crt or .pem files"
        case .unknownDefault(let name): return "\(file): default certificate \"\(name)\" matches no file or name"
        }
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days; no Foundation, no time zone).
func utcString(_ t: Int64) -> String {
    let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
    let secs = t - days * 86_400
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3_600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
}

import Testing
@testable import TLSTerminator

@Suite("Certificate loading")
struct CertificateLoadTests {
    let pki = TestPKI.shared

    /// Loads `dir` expecting failure; returns the error.
    private func loadError(_ dir: String, default name: String? = nil, now: Int64? = nil) -> CertificateError? {
        do {
            _ = try CertificateSet.load(directory: dir, defaultCertificate: name, now: now)
            return nil
        } catch {
            return error
        }
    }

    @Test func loadsTheStandardDirectoryGroupingECDSAAndRSA() throws {
        let set = try CertificateSet.load(directory: pki.certs)
        // a-ecdsa + a-rsa share their names: one certificate, two key types.
        #expect(set.certificates.count == 5)
        let a = set.certificates[0]
        #expect(a.names == ["a.example.com", "www.a.example.com"])
        #expect(a.keyTypes == [.ecdsa, .rsa])
        #expect(a.files.map { $0.split(separator: "/").last! } == ["a-ecdsa.crt", "a-rsa.crt"])
        #expect(a.pairs.allSatisfy { $0.chainDER.count == 2 })  // leaf + intermediate
        #expect(set.defaultCertificate === a)  // first file alphabetically
        #expect(a.notAfter > a.notBefore)
    }

    @Test func commonNameIsUsedOnlyWithoutSubjectAltName() throws {
        let set = try CertificateSet.load(directory: pki.certs)
        #expect(set.lookup(serverName: "legacy.example.com").names == ["legacy.example.com"])
        // With a subjectAltName present the commonName is not a name of the certificate.
        let dir = pki.directory("cnsan")
        pki.copy(pki.pool + "/cnsan.crt", to: dir, as: "cnsan.crt")
        pki.copy(pki.pool + "/cnsan.key", to: dir, as: "cnsan.key")
        #expect(try CertificateSet.load(directory: dir).defaultCertificate.names == ["san.example.com"])
    }

    @Test func missingKeyNamesTheKeyFile() {
        let dir = pki.directory("missing")
        pki.copy(pki.certs + "/b.crt", to: dir, as: "b.crt")
        let e = loadError(dir)
        #expect(e == CertificateError(file: dir + "/b.key", reason: .missing))
        #expect(e?.description == "\(dir)/b.key: no such file")
    }

    @Test func mismatchedKeyNamesBothFiles() {
        let dir = pki.directory("mismatch")
        pki.copy(pki.certs + "/b.crt", to: dir, as: "b.crt")
        pki.copy(pki.certs + "/a-ecdsa.key", to: dir, as: "b.key")
        let e = loadError(dir)
        #expect(e == CertificateError(file: dir + "/b.key", reason: .keyMismatch(certificate: dir + "/b.crt")))
        #expect(e?.description.contains("does not match certificate \(dir)/b.crt") == true)
    }

    @Test func expiredCertificateIsRejectedWithItsDate() {
        let dir = pki.directory("expired")
        pki.copy(pki.pool + "/expired.crt", to: dir, as: "old.crt")
        pki.copy(pki.pool + "/expired.key", to: dir, as: "old.key")
        let e = loadError(dir)
        #expect(e == CertificateError(file: dir + "/old.crt", reason: .expired(notAfter: 1_580_515_200)))
        #expect(e?.description == "\(dir)/old.crt: certificate expired at 2020-02-01T00:00:00Z")
    }

    @Test func notYetValidCertificateIsRejected() {
        let dir = pki.directory("future")
        pki.copy(pki.pool + "/future.crt", to: dir, as: "new.crt")
        pki.copy(pki.pool + "/future.key", to: dir, as: "new.key")
        let e = loadError(dir)
        #expect(e == CertificateError(file: dir + "/new.crt", reason: .notYetValid(notBefore: 4_070_908_800)))
        // The same files load when checked at a time inside their validity.
        #expect(loadError(dir, now: 4_070_908_800 + 86_400) == nil)
    }

    @Test func validityIsCheckedAgainstTheGivenClock() {
        let e = loadError(pki.certs, now: 4_102_444_800)  // 2100-01-01
        #expect(e?.file == pki.certs + "/a-ecdsa.crt")
        if case .expired = e?.reason {} else { Issue.record("expected expired, got \(String(describing: e))") }
    }

    @Test func garbageCertificateIsNotPEM() {
        let dir = pki.directory("garbage")
        pki.write("hello, this is not a certificate\n", to: dir, as: "junk.crt")
        pki.copy(pki.certs + "/b.key", to: dir, as: "junk.key")
        #expect(loadError(dir) == CertificateError(file: dir + "/junk.crt", reason: .notPEM))
    }

    @Test func garbageKeyIsNotPEM() {
        let dir = pki.directory("garbagekey")
        pki.copy(pki.certs + "/b.crt", to: dir, as: "b.crt")
        pki.write("not a key\n", to: dir, as: "b.key")
        #expect(loadError(dir) == CertificateError(file: dir + "/b.key", reason: .notPEM))
    }

    @Test func corruptPEMBlockIsInvalidWithOpenSSLsReason() {
        let dir = pki.directory("corrupt")
        pki.write("-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n", to: dir, as: "x.crt")
        pki.copy(pki.certs + "/b.key", to: dir, as: "x.key")
        let e = loadError(dir)
        #expect(e?.file == dir + "/x.crt")
        if case .invalid(let why) = e?.reason { #expect(!why.isEmpty) } else { Issue.record("got \(String(describing: e))") }
    }

    @Test func encryptedKeyIsReportedAsSuch() {
        let dir = pki.directory("encrypted")
        pki.copy(pki.pool + "/c.crt", to: dir, as: "c.crt")
        pki.copy(pki.pool + "/encrypted.key", to: dir, as: "c.key")
        #expect(loadError(dir) == CertificateError(file: dir + "/c.key", reason: .encryptedKey))
    }

    @Test func certificateWithoutNamesIsRejected() {
        let dir = pki.directory("nameless")
        pki.copy(pki.pool + "/nameless.crt", to: dir, as: "n.crt")
        pki.copy(pki.pool + "/nameless.key", to: dir, as: "n.key")
        #expect(loadError(dir) == CertificateError(file: dir + "/n.crt", reason: .noNames))
    }

    @Test func directoryProblems() {
        let missing = pki.root + "/does-not-exist"
        #expect(loadError(missing) == CertificateError(file: missing, reason: .missing))
        let empty = pki.directory("empty")
        pki.copy(pki.certs + "/b.key", to: empty, as: "orphan.key")  // keys alone are ignored
        #expect(loadError(empty) == CertificateError(file: empty, reason: .noCertificates))
    }

    @Test func combinedPEMCarriesItsOwnKey() throws {
        let dir = pki.directory("combined")
        let text = try String(contentsOfFile: pki.certs + "/b.crt", encoding: .utf8)
            + String(contentsOfFile: pki.certs + "/b.key", encoding: .utf8)
        pki.write(text, to: dir, as: "b.pem")
        let set = try CertificateSet.load(directory: dir)
        #expect(set.defaultCertificate.names == ["b.example.com"])
        #expect(set.defaultCertificate.pairs[0].keyFile == dir + "/b.pem")
    }

    @Test func samePairKindAndNamesKeepsTheLaterExpiry() throws {
        let dir = pki.directory("twins")
        pki.copy(pki.certs + "/b.crt", to: dir, as: "b.crt")
        pki.copy(pki.certs + "/b.key", to: dir, as: "b.key")
        pki.copy(pki.pool + "/b-later.crt", to: dir, as: "b-later.crt")
        pki.copy(pki.pool + "/b-later.key", to: dir, as: "b-later.key")
        // A .pem next to a .crt of the same name is ignored (often a copy of the chain).
        pki.write("not even PEM", to: dir, as: "b.pem")
        let set = try CertificateSet.load(directory: dir)
        #expect(set.certificates.count == 1)
        #expect(set.defaultCertificate.files == [dir + "/b-later.crt"])
        #expect(set.defaultCertificate.notAfter == 4_102_358_400)  // 2099-12-31
    }

    @Test func defaultCertificateByFileOrByName() throws {
        #expect(try CertificateSet.load(directory: pki.certs, defaultCertificate: "b").defaultCertificate.names == ["b.example.com"])
        #expect(try CertificateSet.load(directory: pki.certs, defaultCertificate: "x.apps.example.com")
            .defaultCertificate.names == ["*.apps.example.com"])
        #expect(loadError(pki.certs, default: "nothing.example.org")
            == CertificateError(file: pki.certs, reason: .unknownDefault("nothing.example.org")))
    }

    @Test func reloadingGivesAnIndependentEqualSet() throws {
        let one = try CertificateSet.load(directory: pki.certs)
        let two = try CertificateSet.load(directory: pki.certs)
        #expect(one !== two)
        #expect(one.certificates.map(\.names) == two.certificates.map(\.names))
    }

    @Test func utcFormatting() {
        #expect(utcString(0) == "1970-01-01T00:00:00Z")
        #expect(utcString(951_782_400) == "2000-02-29T00:00:00Z")
        #expect(utcString(4_102_444_799) == "2099-12-31T23:59:59Z")
        #expect(utcString(-1) == "1969-12-31T23:59:59Z")
    }
}

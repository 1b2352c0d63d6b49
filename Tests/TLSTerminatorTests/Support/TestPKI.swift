import Foundation

/// A throwaway PKI made with the `openssl` CLI once per test process: a root CA, an
/// intermediate, and leaf certificates (leaf + intermediate in each `.crt`). `certs` is the
/// standard directory; `pool` holds extra pairs (expired, not yet valid, nameless, encrypted)
/// that tests copy into directories of their own.
final class TestPKI: Sendable {
    static let shared: TestPKI = {
        do {
            let pki = try TestPKI()
            atexit { try? FileManager.default.removeItem(atPath: TestPKI.shared.root) }
            return pki
        } catch {
            fatalError("test PKI: \(error)")
        }
    }()

    let root: String
    let ca: String
    /// The standard set: a-ecdsa + a-rsa (a.example.com, www.a.example.com), apps
    /// (*.apps.example.com), special (special.apps.example.com), b (b.example.com), legacy (CN only).
    let certs: String
    let pool: String
    var rootCertificate: String { ca + "/root.crt" }

    private init() throws {
        root = NSTemporaryDirectory() + "switchyard-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ca = root + "/ca"
        certs = root + "/certs"
        pool = root + "/pool"
        let fm = FileManager.default
        for d in [ca, ca + "/newcerts", certs, pool] { try fm.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "".write(toFile: ca + "/index.txt", atomically: true, encoding: .utf8)
        try "01\n".write(toFile: ca + "/serial", atomically: true, encoding: .utf8)
        try """
        [ ca ]
        default_ca = test
        [ test ]
        dir = \(ca)
        database = \(ca)/index.txt
        new_certs_dir = \(ca)/newcerts
        serial = \(ca)/serial
        default_md = sha256
        policy = any
        copy_extensions = copy
        unique_subject = no
        [ any ]
        commonName = optional
        organizationName = optional
        [ v3_intermediate ]
        basicConstraints = critical, CA:true
        keyUsage = critical, keyCertSign, cRLSign
        [ v3_leaf ]
        basicConstraints = CA:false

        """.write(toFile: ca + "/ca.cnf", atomically: true, encoding: .utf8)

        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", ca + "/root.key", "-out", ca + "/root.crt", "-subj", "/CN=Switchyard Test Root", "-days", "3"])
        try request(key: .ecdsa, subject: "/CN=Switchyard Test Intermediate", sans: [], keyOut: ca + "/int.key", csr: ca + "/int.csr")
        try sign(csr: ca + "/int.csr", out: ca + "/int.crt", issuer: "root", extensions: "v3_intermediate")

        try issue("a-ecdsa", .ecdsa, "/CN=a.example.com", ["a.example.com", "www.a.example.com"], into: certs)
        try issue("a-rsa", .rsa, "/CN=a.example.com", ["a.example.com", "www.a.example.com"], into: certs)
        try issue("apps", .ecdsa, "/CN=*.apps.example.com", ["*.apps.example.com"], into: certs)
        try issue("special", .ecdsa, "/CN=special.apps.example.com", ["special.apps.example.com"], into: certs)
        try issue("b", .ecdsa, "/CN=b.example.com", ["b.example.com"], into: certs)
        try issue("legacy", .rsa, "/CN=legacy.example.com", [], into: certs)

        try issue("expired", .ecdsa, "/CN=old.example.com", ["old.example.com"], into: pool,
                  start: "20200101000000Z", end: "20200201000000Z")
        try issue("future", .ecdsa, "/CN=new.example.com", ["new.example.com"], into: pool,
                  start: "20990101000000Z", end: "20990201000000Z")
        try issue("nameless", .ecdsa, "/O=Nameless Ltd", [], into: pool)
        try issue("cnsan", .ecdsa, "/CN=cn-only.example.com", ["san.example.com"], into: pool)
        try issue("b-later", .ecdsa, "/CN=b.example.com", ["b.example.com"], into: pool, end: "20991231000000Z")
        try issue("c", .rsa, "/CN=c.example.com", ["c.example.com"], into: pool)
        try openssl(["pkey", "-in", pool + "/c.key", "-aes256", "-passout", "pass:secret", "-out", pool + "/encrypted.key"])
    }

    enum Key { case ecdsa, rsa }

    /// `stem.crt` (leaf then intermediate) and `stem.key` in `dir`.
    func issue(_ stem: String, _ key: Key, _ subject: String, _ sans: [String], into dir: String,
               start: String? = nil, end: String? = nil) throws {
        let work = ca + "/" + stem
        try request(key: key, subject: subject, sans: sans, keyOut: dir + "/\(stem).key", csr: work + ".csr")
        try sign(csr: work + ".csr", out: work + ".leaf", issuer: "int", extensions: "v3_leaf", start: start, end: end)
        let chain = try String(contentsOfFile: work + ".leaf", encoding: .utf8)
            + String(contentsOfFile: ca + "/int.crt", encoding: .utf8)
        try chain.write(toFile: dir + "/\(stem).crt", atomically: true, encoding: .utf8)
    }

    private func request(key: Key, subject: String, sans: [String], keyOut: String, csr: String) throws {
        var args = ["req", "-new", "-nodes", "-keyout", keyOut, "-out", csr, "-subj", subject]
        switch key {
        case .ecdsa: args += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        case .rsa: args += ["-newkey", "rsa:2048"]
        }
        if !sans.isEmpty { args += ["-addext", "subjectAltName=" + sans.map { "DNS:" + $0 }.joined(separator: ",")] }
        try openssl(args)
    }

    private func sign(csr: String, out: String, issuer: String, extensions: String,
                      start: String? = nil, end: String? = nil) throws {
        var args = ["ca", "-batch", "-config", ca + "/ca.cnf", "-cert", ca + "/\(issuer).crt", "-keyfile", ca + "/\(issuer).key",
                    "-in", csr, "-out", out, "-extensions", extensions, "-notext", "-rand_serial", "-preserveDN"]
        if let start { args += ["-startdate", start] }  // default: now
        if let end { args += ["-enddate", end] } else { args += ["-days", "3"] }
        try openssl(args)
    }

    struct CommandFailed: Error, CustomStringConvertible {
        let description: String
    }

    private func openssl(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            throw CommandFailed(description: "openssl \(args.joined(separator: " ")): \(String(decoding: text, as: UTF8.self))")
        }
    }

    /// A fresh empty directory under the PKI root.
    func directory(_ name: String) -> String {
        let d = root + "/t-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Copies `from` (a path) to `dir/name`.
    func copy(_ from: String, to dir: String, as name: String) {
        try? FileManager.default.copyItem(atPath: from, toPath: dir + "/" + name)
    }

    func write(_ text: String, to dir: String, as name: String) {
        try? text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
    }
}

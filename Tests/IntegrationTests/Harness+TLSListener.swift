// The TLS listener tests' side of the harness: a throwaway PKI made with the `openssl` CLI once
// per test process, `openssl s_client` as the handshake probe (certificate, ALPN, protocol,
// resumption), and starting a gateway from YAML written by the test (or watching it refuse to).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - PKI

/// A root CA, an intermediate, and leaf pairs signed by the intermediate (each `.crt` holds the
/// leaf then the intermediate, so a client that trusts only the root verifies the chain the
/// gateway sends). Every leaf's subject carries `OU=<stem>`, which is how a test tells which
/// certificate a handshake got. Made once per process; tests copy pairs into their own directory.
final class ListenerPKI: Sendable {
    private static let made: Result<ListenerPKI, HarnessError> = {
        do {
            let pki = try ListenerPKI()
            atexit { if case .success(let p) = ListenerPKI.made { try? FileManager.default.removeItem(atPath: p.root) } }
            return .success(pki)
        } catch let e as HarnessError {
            return .failure(e)
        } catch {
            return .failure(HarnessError("test PKI: \(error)"))
        }
    }()

    static func shared() throws -> ListenerPKI { try made.get() }

    let root: String
    let ca: String
    /// `<stem>.crt` + `<stem>.key` for every leaf below.
    let pool: String
    var rootCertificate: String { ca + "/root.crt" }

    /// (stem, key type, DNS names). `default-v2`/`-v3` stand in for renewed certificates.
    static let leaves: [(String, Bool, [String])] = [
        ("default", false, ["default.test"]),
        ("default-v2", false, ["default.test"]),
        ("default-v3", false, ["default.test"]),
        ("exact", false, ["exact.apps.test"]),
        ("wild", false, ["*.apps.test"]),
        ("site-ecdsa", false, ["site.test", "www.site.test"]),
        ("site-rsa", true, ["site.test", "www.site.test"]),
        // An edge node's own certificate (the origin behind an edge agent terminates with it).
        ("edge-origin", false, ["node1.edge.test", "*.node1.edge.test"]),
    ]

    private init() throws {
        root = NSTemporaryDirectory() + "switchyard-it-pki-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ca = root + "/ca"
        pool = root + "/pool"
        let fm = FileManager.default
        for d in [ca, ca + "/db", pool] { try fm.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "".write(toFile: ca + "/db/index.txt", atomically: true, encoding: .utf8)
        try "01\n".write(toFile: ca + "/db/serial", atomically: true, encoding: .utf8)
        // `openssl ca` only for the dated leaves: `x509 -req` cannot backdate in OpenSSL 3.0.
        try """
        [ ca ]
        default_ca = test
        [ test ]
        database = \(ca)/db/index.txt
        new_certs_dir = \(ca)/db
        serial = \(ca)/db/serial
        default_md = sha256
        policy = any
        copy_extensions = copy
        unique_subject = no
        [ any ]
        commonName = optional
        organizationName = optional
        organizationalUnitName = optional
        [ leaf ]
        basicConstraints = CA:false

        """.write(toFile: ca + "/ca.cnf", atomically: true, encoding: .utf8)
        try "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n"
            .write(toFile: ca + "/int.ext", atomically: true, encoding: .utf8)

        try Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", ca + "/root.key", "-out", ca + "/root.crt", "-subj", "/CN=Switchyard IT Root", "-days", "3"])
        try Self.openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", ca + "/int.key", "-out", ca + "/int.csr", "-subj", "/CN=Switchyard IT Intermediate"])
        try Self.openssl(["x509", "-req", "-in", ca + "/int.csr", "-CA", ca + "/root.crt", "-CAkey", ca + "/root.key",
                          "-set_serial", "2", "-days", "3", "-extfile", ca + "/int.ext", "-out", ca + "/int.crt"])
        for (stem, rsa, names) in Self.leaves { try issue(stem, rsa: rsa, names: names) }
        try issue("expired", rsa: false, names: ["old.test"], dates: ("20200101000000Z", "20200201000000Z"))
        try issue("future", rsa: false, names: ["new.test"], dates: ("20990101000000Z", "20990201000000Z"))
    }

    private func issue(_ stem: String, rsa: Bool, names: [String], dates: (String, String)? = nil) throws {
        let csr = ca + "/\(stem).csr", leaf = ca + "/\(stem).leaf"
        var req = ["req", "-new", "-nodes", "-keyout", pool + "/\(stem).key", "-out", csr,
                   "-subj", "/O=Switchyard IT/OU=\(stem)/CN=\(names[0])"]
        req += rsa ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        let san = "subjectAltName=" + names.map { "DNS:" + $0 }.joined(separator: ",")
        if let dates {
            req += ["-addext", san]
            try Self.openssl(req)
            try Self.openssl(["ca", "-batch", "-config", ca + "/ca.cnf", "-cert", ca + "/int.crt", "-keyfile", ca + "/int.key",
                              "-in", csr, "-out", leaf, "-extensions", "leaf", "-notext", "-rand_serial", "-preserveDN",
                              "-startdate", dates.0, "-enddate", dates.1])
        } else {
            try Self.openssl(req)
            let ext = ca + "/\(stem).ext"
            try "basicConstraints=CA:false\n\(san)\n".write(toFile: ext, atomically: true, encoding: .utf8)
            try Self.openssl(["x509", "-req", "-in", csr, "-CA", ca + "/int.crt", "-CAkey", ca + "/int.key",
                              "-set_serial", "0x" + String(UInt64.random(in: 1...UInt64.max >> 1), radix: 16),
                              "-days", "3", "-extfile", ext, "-out", leaf])
        }
        let chain = try String(contentsOfFile: leaf, encoding: .utf8) + String(contentsOfFile: ca + "/int.crt", encoding: .utf8)
        try chain.write(toFile: pool + "/\(stem).crt", atomically: true, encoding: .utf8)
    }

    private static func openssl(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.which("openssl") ?? "/usr/bin/openssl")
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw HarnessError("openssl \(args.joined(separator: " ")): \(String(decoding: text, as: UTF8.self))")
        }
    }

    func certificate(_ stem: String) throws -> String { try String(contentsOfFile: pool + "/\(stem).crt", encoding: .utf8) }
    func key(_ stem: String) throws -> String { try String(contentsOfFile: pool + "/\(stem).key", encoding: .utf8) }

    /// Copies pairs into `dir` (created if needed): `stems` as they are, `renamed` as (pool stem, name in dir).
    func install(_ stems: [String], renamed: [(String, String)] = [], into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (from, to) in stems.map({ ($0, $0) }) + renamed {
            for ext in ["crt", "key"] {
                try Data(contentsOf: URL(fileURLWithPath: pool + "/\(from).\(ext)"))
                    .write(to: URL(fileURLWithPath: dir + "/\(to).\(ext)"))
            }
        }
    }

    /// Replaces `dir/name` the way the documentation asks: write a hidden temporary file in the
    /// same directory, then rename it into place (the watcher ignores dot files).
    static func replace(_ dir: String, _ name: String, with text: String) throws {
        let tmp = dir + "/.\(name).tmp-\(UUID().uuidString.prefix(6))"
        try Data(text.utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, dir + "/" + name) == 0 else { throw HarnessError("rename \(tmp): errno \(errno)") }
    }
}

// MARK: - Handshake probe

/// What `openssl s_client` reported about one connection.
struct TLSProbe: CustomStringConvertible {
    let exitCode: Int32
    let output: String

    private func line(_ prefix: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// `subject=O = Switchyard IT, OU = exact, CN = exact.apps.test`
    var subject: String? { line("subject=") }
    /// The OU of the server certificate's subject: the pool stem it was issued as.
    var ou: String? {
        guard let s = subject, let r = s.range(of: "OU = ") else { return nil }
        return String(s[r.upperBound...].prefix { $0 != "," })
    }
    /// "http/1.1", nil when the output says "No ALPN negotiated".
    var alpn: String? { line("ALPN protocol: ") }
    var noALPN: Bool { output.contains("\nNo ALPN negotiated") }
    /// "New, TLSv1.3, Cipher is ..." or "Reused, ...".
    var sessionLine: String? {
        output.split(separator: "\n").first { $0.hasPrefix("New, ") || $0.hasPrefix("Reused, ") }.map(String.init)
    }
    var reused: Bool { sessionLine?.hasPrefix("Reused, ") == true }
    /// "TLSv1.3" / "TLSv1.2" from the session line; nil without a handshake.
    var version: String? {
        guard let s = sessionLine, !s.contains("(NONE)") else { return nil }
        return s.split(separator: ",").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces) }
    }
    var peerSignatureType: String? { line("Peer signature type: ") }
    /// "Server public key is 2048 bit" → 2048.
    var serverKeyBits: Int? { line("Server public key is ").flatMap { Int($0.prefix { $0.isNumber }) } }
    var verified: Bool { output.contains("Verify return code: 0 (ok)") }
    var handshakeDone: Bool { version != nil && subject != nil || reused }

    var description: String {
        "s_client exit \(exitCode): subject \(subject ?? "none"), \(sessionLine ?? "no session line"), "
            + "ALPN \(alpn ?? "none"), output tail \(output.suffix(700).debugDescription)"
    }
}

extension Scope {
    /// Runs a program with `input` on its stdin (from a file in the test's directory).
    func run(_ executable: String, _ arguments: [String], input: String, timeout: Double = 20) throws -> RunResult {
        let name = "stdin-\(UUID().uuidString.prefix(8))"
        let inPath = try write(name, input)
        guard let handle = FileHandle(forReadingAtPath: inPath) else { throw HarnessError("cannot open \(inPath)") }
        defer { try? handle.close(); try? FileManager.default.removeItem(atPath: inPath) }
        let child = try spawn("run-\(name)", executable, arguments, stdin: handle)
        let status = child.wait(timeout: timeout)
        if status == nil { child.stop(grace: 1) }
        let out = (try? Data(contentsOf: child.stdoutURL)) ?? Data()
        let err = child.stderr
        try? FileManager.default.removeItem(at: child.stdoutURL)
        try? FileManager.default.removeItem(at: child.stderrURL)
        return RunResult(status: status ?? -1, timedOut: status == nil, stdout: out, stderr: err)
    }

    /// One `openssl s_client` handshake to 127.0.0.1:port, verified against the test root (and
    /// the host name `verify`, when given). `serverName` nil sends no SNI. `input` is sent after
    /// the handshake; s_client then waits for the gateway to close (`-ign_eof`), so a request
    /// with `Connection: close` reads its whole answer (and, in TLS 1.3, the session ticket).
    func sClient(port: Int, serverName: String?, verify: String? = nil, _ extra: [String] = [],
                 input: String? = nil) throws -> TLSProbe {
        guard let openssl = Paths.which("openssl") else { throw HarnessError("openssl not found on PATH") }
        let pki = try ListenerPKI.shared()
        var args = ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", pki.rootCertificate]
        args += serverName.map { ["-servername", $0] } ?? ["-noservername"]
        if let verify { args += ["-verify_hostname", verify] }
        let r: RunResult
        if let input {
            r = try run(openssl, args + ["-ign_eof"] + extra, input: input)
        } else {
            r = try run(openssl, args + extra, timeout: 20)
        }
        return TLSProbe(exitCode: r.status, output: r.stdoutText + "\n" + r.stderr)
    }

    /// Polls new handshakes until one gets the certificate `ou`; returns the last probe.
    func waitForCertificate(port: Int, serverName: String?, ou: String, timeout: Double = 10) throws -> TLSProbe {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let p = try sClient(port: port, serverName: serverName)
            if p.ou == ou || Date() > deadline { return p }
            usleep(100_000)
        }
    }

    /// `startGateway(yaml:port:)`, then waits until every other port in `ports` accepts too.
    func startGateway(yaml: String, ports: [Int], name: String = "gateway") throws -> Gateway {
        let gw = try startGateway(yaml: yaml, port: ports[0], name: name)
        for p in ports.dropFirst() { try Ports.waitUntilOpen(p, child: gw.child) }
        return gw
    }

    /// Starts the gateway with `yaml` expecting it to refuse: its exit status (nil if it kept
    /// running for 15 s, then it is stopped) and stderr.
    func failedStart(yaml: String, name: String) throws -> (status: Int32?, stderr: String) {
        let configPath = try write("\(name).yaml", yaml)
        let child = try spawn(name, try gatewayBinary(), ["serve", "--config", configPath])
        let status = child.wait(timeout: 15)
        if status == nil { child.stop() }
        return (status, child.stderr)
    }

    /// Runs tlsclient.py's `hold` scenario in the background (see the script).
    func startHoldClient(port: Int, name: String, go: String, rounds: Int) throws -> Child {
        let pki = try ListenerPKI.shared()
        return try spawn("hold-\(UUID().uuidString.prefix(6))", try venvPython(),
                         [Paths.tlsClientScript, "hold", "--port", "\(port)", "--name", name, "--cafile", pki.rootCertificate,
                          "--go", go, "--rounds", "\(rounds)"])
    }
}

extension Paths {
    static var tlsClientScript: String { peer("tlsclient.py") }
}

extension Child {
    /// stdout's JSON lines so far (one object each).
    var jsonLines: [JSONValue] {
        stdout.split(separator: "\n").map { JSONValue(data: Data($0.utf8)) }
    }

    /// Polls until stdout has `count` JSON lines (or the child exits); returns them.
    func waitForLines(_ count: Int, timeout: Double = 20) -> [JSONValue] {
        let deadline = Date().addingTimeInterval(timeout)
        while jsonLines.count < count && isRunning && Date() < deadline { usleep(20_000) }
        return jsonLines
    }

    /// Polls stderr until a line contains every string of `all`; returns that line.
    func waitForStderrLine(containing all: [String], after skip: Int = 0, timeout: Double = 10) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let lines = stderr.split(separator: "\n").dropFirst(skip)
            if let l = lines.first(where: { line in all.allSatisfy { line.contains($0) } }) { return String(l) }
            if Date() > deadline { return nil }
            usleep(50_000)
        }
    }

    var stderrLineCount: Int { stderr.split(separator: "\n").count }
}

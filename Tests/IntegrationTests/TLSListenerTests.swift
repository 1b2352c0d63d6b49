// TLS listeners end to end: the built gateway terminating HTTP/1.1 over TLS (OpenSSL) in front
// of the Python upstream, probed with curl, `openssl s_client`, Python's ssl module and
// `websockets` over wss. Certificates come from a throwaway PKI (Harness+TLSListener.swift).
//
// What is covered: proxying with X-Forwarded-Proto and HSTS (RFC 6797 §6.1), keep-alive over one
// TLS connection, SNI selection (RFC 6066 §3: exact, then wildcard, then default), ALPN (RFC 7301:
// h2 preferred, then http/1.1), ECDSA and RSA certificates side by side, reload on file change and on
// SIGHUP with open connections untouched, refused reloads, start-up refusals, WebSocket over TLS,
// non-TLS and TLS 1.1 clients refused, and session resumption with tickets.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("TLS listeners")
struct TLSListenerTests {
    /// The ports of `standard`'s listeners.
    struct Ports3 {
        /// TLS, `default_certificate: default`, HSTS one year.
        let secure: Int
        /// TLS, `default_certificate: www.site.test` (by DNS name), HSTS off, tickets off.
        let other: Int
        /// Plain HTTP.
        let plain: Int
    }

    /// default, exact, wild, site-ecdsa and site-rsa in one directory; three listeners (see
    /// `Ports3`) routing everything to `upstream`.
    private func standard(_ scope: Scope, upstream: String, workers: Int = 2) throws -> (Gateway, Ports3, String) {
        let pki = try ListenerPKI.shared()
        let dir = scope.path("certs")
        try pki.install(["default", "exact", "wild", "site-ecdsa", "site-rsa"], into: dir)
        let ports = Ports3(secure: try Ports.free(), other: try Ports.free(), plain: try Ports.free())
        let yaml = """
        workers: \(workers)
        listeners:
          - name: secure
            address: 127.0.0.1:\(ports.secure)
            tls: {certificates: \(dir), default_certificate: default, hsts: 365d}
          - name: other
            address: 127.0.0.1:\(ports.other)
            tls: {certificates: \(dir), default_certificate: www.site.test, hsts: off, session_tickets: false}
          - name: plain
            address: 127.0.0.1:\(ports.plain)
        logging: {access: stdout, error: stderr}
        admin: {address: "off"}
        routes:
          - upstreams: ["\(upstream)"]

        """
        let gw = try scope.startGateway(yaml: yaml, ports: [ports.secure, ports.other, ports.plain])
        return (gw, ports, dir)
    }

    /// One TLS listener on `dir` (default certificate `default`), routing to `upstream`.
    private func single(_ scope: Scope, dir: String, upstream: String, workers: Int = 2) throws -> Gateway {
        let port = try Ports.free()
        let yaml = """
        workers: \(workers)
        listeners:
          - name: secure
            address: 127.0.0.1:\(port)
            tls: {certificates: \(dir), default_certificate: default}
        logging: {access: stdout, error: stderr}
        admin: {address: "off"}
        routes:
          - upstreams: ["\(upstream)"]

        """
        return try scope.startGateway(yaml: yaml, port: port)
    }

    /// curl options for `https://NAME:port/` through the test root and 127.0.0.1.
    private func tlsCurl(_ name: String, _ port: Int) throws -> [String] {
        ["--http1.1", "--cacert", try ListenerPKI.shared().rootCertificate, "--resolve", "\(name):\(port):127.0.0.1"]
    }

    // MARK: - Proxying

    @Test("curl over TLS: bodies intact both ways, X-Forwarded-Proto https (a client's own value replaced), HSTS only where configured")
    func proxies() throws {
        let scope = try Scope("tls-proxy")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, ports, _) = try standard(scope, upstream: up.addresses[0])
        let base = "https://site.test:\(ports.secure)"
        let opts = try tlsCurl("site.test", ports.secure)

        let r = try scope.curl(opts + ["-H", "X-Forwarded-Proto: http", base + "/echo?q=1"])
        #expect(r.exitCode == 0 && r.status == 200, "\(r.summary)")
        let echo = Echo.decode(r.body)
        #expect(echo?.target == "/echo?q=1", "\(r.summary)")
        #expect(echo?.values("X-Forwarded-Proto") == ["https"], "what the upstream saw: \(String(describing: echo?.headers))")
        #expect(r.header("Strict-Transport-Security") == "max-age=31536000", "\(r.headers)")

        // A request body (1 MiB + 7) and a response body (3 MB, then chunked) pass intact.
        let payload = try scope.makePayload("up.bin", size: (1 << 20) + 7)
        let post = try scope.curl(opts + ["--data-binary", "@" + payload, "-H", "Content-Type: application/octet-stream", base + "/echo"])
        let posted = Echo.decode(post.body)
        #expect(post.status == 200 && posted?.body_length == (1 << 20) + 7, "\(post.summary)")
        #expect(posted?.body_sha256 == (try scope.sha256(ofFile: payload)), "\(post.summary)")
        for query in ["", "?chunked=1"] {
            let file = scope.path("down\(query.isEmpty ? "" : "-chunked").bin")
            let down = try scope.curl(opts + [base + "/bytes/3000000" + query], bodyFile: file)
            #expect(down.exitCode == 0 && down.status == 200, "\(down.summary)")
            #expect(down.header("X-Body-SHA256") == (try scope.sha256(ofFile: file)), "/bytes/3000000\(query): \(down.headers)")
            #expect(down.header("Strict-Transport-Security") == "max-age=31536000", "\(down.headers)")
        }

        // The second listener sets no HSTS; the plain one neither, and says http upstream.
        let other = try scope.curl(try tlsCurl("www.site.test", ports.other) + ["https://www.site.test:\(ports.other)/echo"])
        #expect(other.exitCode == 0 && other.status == 200, "\(other.summary)")
        #expect(other.header("Strict-Transport-Security") == nil, "\(other.headers)")
        #expect(Echo.decode(other.body)?.values("X-Forwarded-Proto") == ["https"], "\(other.summary)")
        let plain = try scope.curl(["-H", "X-Forwarded-Proto: https", "http://127.0.0.1:\(ports.plain)/echo"])
        #expect(plain.status == 200 && plain.header("Strict-Transport-Security") == nil, "\(plain.summary) \(plain.headers)")
        #expect(Echo.decode(plain.body)?.values("X-Forwarded-Proto") == ["http"], "\(plain.summary)")
    }

    @Test("two requests from curl share one TLS connection (keep-alive)")
    func keepAlive() throws {
        let scope = try Scope("tls-keepalive")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, ports, _) = try standard(scope, upstream: up.addresses[0])
        let base = "https://site.test:\(ports.secure)"
        guard let curl = Paths.which("curl") else { throw HarnessError("curl not found") }
        let r = try scope.run(curl, ["-q", "-s", "-S", "--noproxy", "*", "--max-time", "20"] + (try tlsCurl("site.test", ports.secure))
                              + ["-w", "%{num_connects} %{http_code} %{local_port}\n",
                                 "-o", scope.path("b1"), base + "/echo?n=1", "-o", scope.path("b2"), base + "/echo?n=2"])
        let lines = r.stdoutText.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(r.status == 0 && lines.count == 2, "curl: \(r.stdoutText) \(r.stderr)")
        guard lines.count == 2, lines.allSatisfy({ $0.count == 3 }) else { return }
        #expect(lines[0][0] == "1" && lines[1][0] == "0", "new connections per request (1 then 0 = reused): \(lines)")
        #expect(lines[0][1] == "200" && lines[1][1] == "200", "\(lines)")
        #expect(lines[0][2] == lines[1][2], "local ports differ: \(lines)")
        let second = Echo.decode((try? Data(contentsOf: URL(fileURLWithPath: scope.path("b2")))) ?? Data())
        #expect(second?.target == "/echo?n=2" && second?.values("X-Forwarded-Proto") == ["https"], "\(String(describing: second))")
    }

    // MARK: - Handshake

    @Test("SNI picks the exact name, then a one-label wildcard, then the default; ALPN prefers h2, then http/1.1")
    func sniAndALPN() throws {
        let scope = try Scope("tls-sni")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, ports, _) = try standard(scope, upstream: up.addresses[0])
        // (SNI sent, certificate expected, a name it covers to verify against)
        let cases: [(String?, String, String)] = [
            ("exact.apps.test", "exact", "exact.apps.test"),
            ("EXACT.Apps.Test", "exact", "exact.apps.test"),
            ("foo.apps.test", "wild", "foo.apps.test"),
            ("a.b.apps.test", "default", "default.test"),
            ("apps.test", "default", "default.test"),
            ("unknown.test", "default", "default.test"),
            ("www.site.test", "site-ecdsa", "www.site.test"),
            (nil, "default", "default.test"),
        ]
        for (name, expected, covered) in cases {
            let p = try scope.sClient(port: ports.secure, serverName: name, verify: covered)
            #expect(p.ou == expected, "SNI \(name ?? "(none)"): \(p)")
            #expect(p.verified, "SNI \(name ?? "(none)"): chain or name did not verify: \(p)")
        }
        // The second listener's default is given as a DNS name.
        for name in [nil, "unknown.test"] as [String?] {
            let p = try scope.sClient(port: ports.other, serverName: name, verify: "www.site.test")
            #expect(p.ou == "site-ecdsa" && p.verified, "other listener, SNI \(name ?? "(none)"): \(p)")
        }
        let exactOnOther = try scope.sClient(port: ports.other, serverName: "exact.apps.test")
        #expect(exactOnOther.ou == "exact", "\(exactOnOther)")

        // ALPN: the server's preference (h2, then http/1.1) among what the client offers.
        for version in ["-tls1_3", "-tls1_2"] {
            let both = try scope.sClient(port: ports.secure, serverName: "site.test", ["-alpn", "http/1.1,h2", version])
            #expect(both.alpn == "h2", "\(version): \(both)")
            let h1 = try scope.sClient(port: ports.secure, serverName: "site.test", ["-alpn", "http/1.1", version])
            #expect(h1.alpn == "http/1.1", "\(version): \(h1)")
        }
        // Only protocols we do not speak: no ALPN at all (not an alert), and HTTP/1.1 works.
        let foreign = try scope.sClient(port: ports.secure, serverName: "site.test", ["-alpn", "spdy/3.1"],
                                        input: "GET /echo HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
        #expect(foreign.noALPN && foreign.alpn == nil && foreign.handshakeDone, "\(foreign)")
        #expect(foreign.output.contains("HTTP/1.1 200 OK"), "\(foreign)")
        let none = try scope.sClient(port: ports.secure, serverName: "site.test")
        #expect(none.noALPN && none.handshakeDone, "\(none)")
    }

    @Test("ECDSA and RSA certificates for the same names: the client's signature algorithms pick")
    func ecdsaAndRSA() throws {
        let scope = try Scope("tls-keytypes")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, ports, _) = try standard(scope, upstream: up.addresses[0])
        // (extra s_client options, certificate, peer signature type, key bits)
        let cases: [([String], String, String, Int)] = [
            ([], "site-ecdsa", "ECDSA", 256),
            (["-sigalgs", "RSA-PSS+SHA256"], "site-rsa", "RSA-PSS", 2048),
            (["-tls1_2"], "site-ecdsa", "ECDSA", 256),
            (["-tls1_2", "-sigalgs", "RSA+SHA256"], "site-rsa", "RSA", 2048),
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "site-rsa", "RSA-PSS", 2048),
        ]
        for (extra, expected, signature, bits) in cases {
            let p = try scope.sClient(port: ports.secure, serverName: "site.test", verify: "site.test", extra)
            #expect(p.ou == expected && p.verified, "\(extra): \(p)")
            #expect(p.peerSignatureType == signature && p.serverKeyBits == bits, "\(extra): \(p)")
        }
        // An RSA-only client gets a whole answer, too.
        let rsa = try scope.sClient(port: ports.secure, serverName: "www.site.test", verify: "www.site.test",
                                    ["-sigalgs", "RSA-PSS+SHA256"],
                                    input: "GET /echo HTTP/1.1\r\nHost: www.site.test\r\nConnection: close\r\n\r\n")
        #expect(rsa.ou == "site-rsa" && rsa.output.contains("HTTP/1.1 200 OK") && rsa.output.contains("\"X-Forwarded-Proto\", \"https\""),
                "\(rsa)")
    }

    // MARK: - Reload

    @Test("renamed-in files reload within seconds for new handshakes; a held connection keeps serving; bad sets are refused and the current one stays")
    func reloadOnChange() throws {
        let scope = try Scope("tls-reload")
        defer { scope.close() }
        let pki = try ListenerPKI.shared()
        let up = try scope.startUpstreams(1)
        let dir = scope.path("certs")
        try pki.install(["default", "exact"], into: dir)
        let gw = try single(scope, dir: dir, upstream: up.addresses[0])
        let go = scope.path("go")
        let hold = try scope.startHoldClient(port: gw.port, name: "default.test", go: go, rounds: 3)
        let first = hold.waitForLines(1)
        #expect(first.first?["ou"].string == "default" && first.first?["status"].int == 200, "held connection: \(first) \(hold.stderr)")

        // Renewal: key then certificate, each written aside and renamed into place.
        try ListenerPKI.replace(dir, "default.key", with: try pki.key("default-v2"))
        try ListenerPKI.replace(dir, "default.crt", with: try pki.certificate("default-v2"))
        let renewed = try scope.waitForCertificate(port: gw.port, serverName: "default.test", ou: "default-v2")
        #expect(renewed.ou == "default-v2", "new handshakes never saw the renewed certificate: \(renewed)\n\(gw.child.stderr.suffix(1500))")
        #expect(gw.child.waitForStderrLine(containing: ["event=\"certificates reloaded\"", "listener=secure"], timeout: 1) != nil,
                "no reload line: \(gw.child.stderr.suffix(1500))")
        // Every worker switched (a few handshakes land on both), and the other name is still there.
        for _ in 0..<4 {
            let p = try scope.sClient(port: gw.port, serverName: nil)
            #expect(p.ou == "default-v2", "\(p)")
        }
        #expect(try scope.sClient(port: gw.port, serverName: "exact.apps.test").ou == "exact")
        try scope.write("go.1", "")
        let afterRenewal = hold.waitForLines(2)
        #expect(afterRenewal.count >= 2 && afterRenewal[1]["status"].int == 200 && afterRenewal[1]["ou"].string == "default"
                && afterRenewal[1]["local_port"].int == afterRenewal[0]["local_port"].int,
                "held connection after the reload: \(afterRenewal) \(hold.stderr)")

        // Garbage instead of a certificate: refused, the renewed set stays.
        var skip = gw.child.stderrLineCount
        try ListenerPKI.replace(dir, "default.crt", with: "this is not a certificate\n")
        let garbage = gw.child.waitForStderrLine(containing: ["event=\"certificate reload refused\"", "listener=secure",
                                                             dir + "/default.crt", "not PEM", "kept=current"], after: skip)
        #expect(garbage != nil, "no refusal for a garbage certificate: \(gw.child.stderr.suffix(1500))")
        #expect(try scope.sClient(port: gw.port, serverName: "default.test").ou == "default-v2")

        // A certificate with someone else's key: refused as a mismatch.
        skip = gw.child.stderrLineCount
        try ListenerPKI.replace(dir, "default.key", with: try pki.key("exact"))
        try ListenerPKI.replace(dir, "default.crt", with: try pki.certificate("default-v3"))
        let mismatch = gw.child.waitForStderrLine(containing: ["event=\"certificate reload refused\"", dir + "/default.key",
                                                              "does not match", "kept=current"], after: skip)
        #expect(mismatch != nil, "no refusal for a mismatched key: \(gw.child.stderr.suffix(1500))")
        for _ in 0..<3 {
            let p = try scope.sClient(port: gw.port, serverName: "default.test", verify: "default.test")
            #expect(p.ou == "default-v2" && p.verified, "after a refused reload: \(p)")
        }
        try scope.write("go.2", "")
        let afterRefusal = hold.waitForLines(3)
        #expect(afterRefusal.count >= 3 && afterRefusal[2]["status"].int == 200 && afterRefusal[2]["forwarded_proto"][0].string == "https",
                "held connection after the refusals: \(afterRefusal) \(hold.stderr)")

        // Fixing the files is picked up again: the refusals did not stop the watcher.
        try ListenerPKI.replace(dir, "default.key", with: try pki.key("default-v3"))
        let fixed = try scope.waitForCertificate(port: gw.port, serverName: "default.test", ou: "default-v3")
        #expect(fixed.ou == "default-v3", "\(fixed)\n\(gw.child.stderr.suffix(1500))")

        try scope.write("go.3", "")
        let all = hold.waitForLines(5)
        #expect(all.count == 5 && all[3]["status"].int == 200 && all[3]["ou"].string == "default"
                && all[4]["done"].bool == true && all[4]["error"].isNull, "\(all) \(hold.stderr)")
        #expect(hold.wait(timeout: 10) == 0)
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    @Test("SIGHUP reloads even when the files' names, sizes, mtimes and inodes did not change")
    func reloadOnSIGHUP() throws {
        let scope = try Scope("tls-sighup")
        defer { scope.close() }
        let pki = try ListenerPKI.shared()
        let up = try scope.startUpstreams(1)
        let dir = scope.path("certs")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Both versions padded to the same sizes (text after the PEM blocks is ignored), so
        // rewriting in place and restoring the mtime leaves the watcher's signature as it was.
        func padded(_ text: String, _ size: Int) -> String { text + String(repeating: "\n", count: max(0, size - text.utf8.count)) }
        let crtSize = 4096, keySize = 2048
        try padded(try pki.certificate("default"), crtSize).write(toFile: dir + "/default.crt", atomically: false, encoding: .utf8)
        try padded(try pki.key("default"), keySize).write(toFile: dir + "/default.key", atomically: false, encoding: .utf8)
        let gw = try single(scope, dir: dir, upstream: up.addresses[0], workers: 2)
        #expect(try scope.sClient(port: gw.port, serverName: "default.test").ou == "default")

        try Self.overwriteKeepingMetadata(dir + "/default.key", padded(try pki.key("default-v2"), keySize))
        try Self.overwriteKeepingMetadata(dir + "/default.crt", padded(try pki.certificate("default-v2"), crtSize))
        // Past one watcher period (2 s): nothing it can see changed, so nothing reloads.
        usleep(2_600_000)
        let unseen = try scope.sClient(port: gw.port, serverName: "default.test")
        #expect(unseen.ou == "default", "the watcher reloaded though the signature did not change: \(unseen)")

        let skip = gw.child.stderrLineCount
        gw.child.signal(SIGHUP)
        let reloaded = try scope.waitForCertificate(port: gw.port, serverName: "default.test", ou: "default-v2", timeout: 5)
        #expect(reloaded.ou == "default-v2" && reloaded.output.contains("Verify return code: 0 (ok)"),
                "SIGHUP did not reload: \(reloaded)\n\(gw.child.stderr.suffix(1500))")
        #expect(gw.child.waitForStderrLine(containing: ["certificates reloaded", "listener=secure"], after: skip, timeout: 2) != nil,
                "\(gw.child.stderr.suffix(1500))")
        let r = try scope.curl(try tlsCurl("default.test", gw.port) + ["https://default.test:\(gw.port)/echo"])
        #expect(r.status == 200 && gw.child.isRunning, "\(r.summary)")
    }

    /// Rewrites a file in place (same inode, no truncation: same size) and puts back its
    /// access and modification times to the nanosecond.
    private static func overwriteKeepingMetadata(_ path: String, _ text: String) throws {
        var before = stat()
        guard stat(path, &before) == 0 else { throw HarnessError("stat \(path): errno \(errno)") }
        let bytes = Array(text.utf8)
        guard bytes.count == Int(before.st_size) else { throw HarnessError("\(path): size \(bytes.count) != \(before.st_size)") }
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw HarnessError("open \(path): errno \(errno)") }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        guard n == bytes.count else { throw HarnessError("pwrite \(path): \(n), errno \(errno)") }
        var times = [before.st_atim, before.st_mtim]
        guard utimensat(AT_FDCWD, path, &times, 0) == 0 else { throw HarnessError("utimensat \(path): errno \(errno)") }
        var after = stat()
        _ = stat(path, &after)
        guard after.st_ino == before.st_ino, after.st_size == before.st_size,
              after.st_mtim.tv_sec == before.st_mtim.tv_sec, after.st_mtim.tv_nsec == before.st_mtim.tv_nsec else {
            throw HarnessError("\(path): metadata changed after the rewrite")
        }
    }

    // MARK: - Start-up refusals

    /// A directory the gateway must refuse to start with: what to put in it, and what stderr
    /// must say after "listener secure: ".
    struct BadDirectory: CustomTestStringConvertible, Sendable {
        let label: String
        /// (pool stem, name in the directory, which files: "crt", "key" or both)
        let files: [(String, String, [String])]
        let garbage: [String]
        /// The reason, with `DIR` for the directory.
        let reason: String
        var testDescription: String { label }

        static let all: [BadDirectory] = [
            BadDirectory(label: "missing key", files: [("default", "default", ["crt"])], garbage: [],
                         reason: "DIR/default.key: no such file"),
            BadDirectory(label: "mismatched key", files: [("default", "default", ["crt"]), ("exact", "default", ["key"])], garbage: [],
                         reason: "DIR/default.key: private key does not match certificate DIR/default.crt"),
            BadDirectory(label: "expired", files: [("default", "default", ["crt", "key"]), ("expired", "expired", ["crt", "key"])],
                         garbage: [], reason: "DIR/expired.crt: certificate expired at 2020-02-01T00:00:00Z"),
            BadDirectory(label: "not yet valid", files: [("future", "default", ["crt", "key"])], garbage: [],
                         reason: "DIR/default.crt: certificate not valid before 2099-01-01T00:00:00Z"),
            BadDirectory(label: "garbage certificate", files: [("default", "default", ["key"])], garbage: ["default.crt"],
                         reason: "DIR/default.crt: not PEM"),
            BadDirectory(label: "no certificates", files: [], garbage: [], reason: "DIR: no .crt or .pem files"),
            BadDirectory(label: "unknown default", files: [("exact", "exact", ["crt", "key"])], garbage: [],
                         reason: "DIR: default certificate \"default\" matches no file or name"),
        ]
    }

    @Test("start-up with a bad certificate directory fails with exit 1, naming the file and the reason", arguments: BadDirectory.all)
    func refusesToStart(bad: BadDirectory) throws {
        let scope = try Scope("tls-badstart")
        defer { scope.close() }
        let pki = try ListenerPKI.shared()
        let dir = scope.path("certs")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (stem, name, exts) in bad.files {
            for ext in exts { try FileManager.default.copyItem(atPath: pki.pool + "/\(stem).\(ext)", toPath: dir + "/\(name).\(ext)") }
        }
        for name in bad.garbage { try scope.write("certs/\(name)", "-- garbage --\n") }
        let port = try Ports.free()
        let yaml = """
        workers: 1
        listeners:
          - name: secure
            address: 127.0.0.1:\(port)
            tls: {certificates: \(dir), default_certificate: default}
        logging: {access: stdout, error: stderr}
        admin: {address: "off"}
        routes:
          - upstreams: ["127.0.0.1:9"]

        """
        let (status, stderr) = try scope.failedStart(yaml: yaml, name: "gateway")
        #expect(status == 1, "exit status \(String(describing: status)); stderr: \(stderr)")
        let expected = "switchyard: cannot load certificates: listener secure: " + bad.reason.replacingOccurrences(of: "DIR", with: dir)
        #expect(stderr.contains(expected), "expected \(expected.debugDescription) in stderr: \(stderr)")
        #expect(Ports.tryConnect(port) != .accepted, "something listens on \(port) after a refused start")
    }

    @Test("a missing certificate directory stops start-up, too")
    func missingDirectory() throws {
        let scope = try Scope("tls-nodir")
        defer { scope.close() }
        let dir = scope.path("nowhere")
        let yaml = """
        listeners:
          - name: secure
            address: 127.0.0.1:\(try Ports.free())
            tls: {certificates: \(dir)}
        admin: {address: "off"}
        routes:
          - upstreams: ["127.0.0.1:9"]

        """
        let (status, stderr) = try scope.failedStart(yaml: yaml, name: "gateway")
        #expect(status == 1, "exit status \(String(describing: status)); stderr: \(stderr)")
        #expect(stderr.contains("switchyard: cannot load certificates: listener secure: \(dir): no such file"), "\(stderr)")
    }

    // MARK: - WebSocket

    @Test("WebSocket over TLS: messages up to 4 MiB echo intact; close codes pass both ways")
    func webSocket() throws {
        let scope = try Scope("tls-ws")
        defer { scope.close() }
        let pki = try ListenerPKI.shared()
        let peer = try scope.startWSPeer(ws: 1, raw: 0)
        let dir = scope.path("certs")
        try pki.install(["default", "site-ecdsa"], into: dir)
        let gw = try single(scope, dir: dir, upstream: peer.wsAddresses[0])
        let r = try scope.run(try scope.venvPython(),
                              [Paths.tlsClientScript, "wss", "--url", "wss://127.0.0.1:\(gw.port)/echo", "--name", "site.test",
                               "--cafile", pki.rootCertificate, "--sizes", "0,1,125,126,65536,\(4 << 20)",
                               "--code", "4001", "--reason", "tls bye"], timeout: 90)
        let report = JSONValue(data: r.stdout)
        #expect(r.status == 0 && report["scenario"].string == "wss", "tlsclient: \(r.stdoutText.prefix(1000)) \(r.stderr.suffix(1000))")
        #expect(report["error"].isNull, "\(report)")
        #expect(report["response_status"].int == 101, "\(report)")
        let echoes = report["echoes"].array
        #expect(echoes.count == 12, "\(report)")
        #expect(echoes.contains { $0["size"].int == 4 << 20 && $0["kind"].string == "binary" }, "\(report)")
        for e in echoes {
            #expect(e["sent_sha256"].string != nil && e["received_sha256"].string == e["sent_sha256"].string
                    && e["received_kind"].string == e["kind"].string, "\(e)")
        }
        // Client-started close: 4001 reaches the upstream and comes back.
        #expect(report["client_close"]["sent"]["code"].int == 4001 && report["client_close"]["rcvd"]["code"].int == 4001, "\(report)")
        #expect(report["upstream_client_close"]["rcvd"]["code"].int == 4001
                && report["upstream_client_close"]["rcvd"]["reason"].string == "tls bye", "\(report)")
        // Server-started close: 4002 reaches the client.
        #expect(report["server_close"]["rcvd"]["code"].int == 4002 && report["server_close"]["rcvd"]["reason"].string == "tls bye",
                "\(report)")
        #expect(report["upstream_server_close"]["sent"]["code"].int == 4002 && report["unexpected"].isNull, "\(report)")
        #expect(gw.child.isRunning)
    }

    // MARK: - Refusals

    @Test("plain HTTP on the TLS port and TLS 1.0/1.1 clients are refused; the gateway goes on serving")
    func refusesNonTLSAndOldVersions() throws {
        let scope = try Scope("tls-refuse")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, ports, _) = try standard(scope, upstream: up.addresses[0])

        let conn = try RawConnection(port: ports.secure)
        conn.send("GET /echo HTTP/1.1\r\nHost: site.test\r\n\r\n")
        let (closed, extra) = conn.waitForClose(timeout: 5)
        #expect(closed, "the gateway kept a plain-HTTP connection to its TLS port open")
        #expect(!String(decoding: extra, as: UTF8.self).contains("HTTP/"), "an HTTP answer on the TLS port: \(extra)")

        // A connection that sends nothing and hangs up costs nothing either.
        _ = Ports.tryConnect(ports.secure)

        for version in ["-tls1_1", "-tls1"] {
            // SECLEVEL=0: OpenSSL 3's client would otherwise refuse to offer these itself.
            let p = try scope.sClient(port: ports.secure, serverName: "site.test", [version, "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(!p.handshakeDone && p.subject == nil, "\(version) handshake completed: \(p)")
            #expect(p.output.contains("alert protocol version"), "\(version) not refused by a protocol_version alert: \(p)")
        }
        let r = try scope.curl(try tlsCurl("site.test", ports.secure) + ["https://site.test:\(ports.secure)/echo"])
        #expect(r.status == 200, "after the refusals: \(r.summary)")
        #expect(gw.child.isRunning)
    }

    @Test("a response after which the gateway closes ends the TLS stream with close_notify (RFC 8446 §6.1, RFC 9112 §9.8)")
    func closeNotify() throws {
        let scope = try Scope("tls-closenotify")
        defer { scope.close() }
        let pki = try ListenerPKI.shared()
        let up = try scope.startUpstreams(1)
        let (_, ports, _) = try standard(scope, upstream: up.addresses[0])
        let r = try scope.run(try scope.venvPython(), [Paths.tlsClientScript, "closing", "--port", "\(ports.secure)",
                                                       "--name", "site.test", "--cafile", pki.rootCertificate], timeout: 60)
        let report = JSONValue(data: r.stdout)
        #expect(report["scenario"].string == "closing" && report["error"].isNull, "\(r.stdoutText) \(r.stderr.suffix(1000))")
        for (label, status) in [("connection_close", 200), ("http10", 200), ("malformed", 400)] {
            let c = report[label]
            #expect(c["status"].int == status, "\(label): \(c)")
            // Without close_notify a client cannot tell a complete close-delimited body from a cut one.
            #expect(c["eof"].string == "close_notify", "\(label): the gateway closed TCP without close_notify: \(c)")
        }
    }

    // MARK: - Resumption

    @Test("session tickets resume TLS 1.2 and 1.3 sessions on any worker; a listener with tickets off never resumes")
    func resumption() throws {
        let scope = try Scope("tls-resume")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gateway, ports, _) = try standard(scope, upstream: up.addresses[0])
        let request = "GET /echo HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n"
        for version in ["-tls1_2", "-tls1_3"] {
            let session = scope.path("session\(version).pem")
            let first = try scope.sClient(port: ports.secure, serverName: "site.test", [version, "-sess_out", session], input: request)
            #expect(first.handshakeDone && !first.reused && first.output.contains("HTTP/1.1 200 OK"), "\(version) first: \(first)")
            #expect(FileManager.default.fileExists(atPath: session), "\(version): no session saved (no ticket?): \(first)")
            // Several times: new connections spread over both workers, which share the ticket keys.
            for i in 0..<4 {
                let again = try scope.sClient(port: ports.secure, serverName: "site.test", [version, "-sess_in", session], input: request)
                #expect(again.reused && again.version == (version == "-tls1_2" ? "TLSv1.2" : "TLSv1.3"), "\(version) resumption \(i): \(again)")
                #expect(again.output.contains("HTTP/1.1 200 OK"), "\(version) resumption \(i): \(again)")
            }
        }
        // A certificate reload keeps the ticket keys: sessions from before still resume.
        let gwChild = gateway.child
        let session = scope.path("session-tls1_3.pem")
        let skip = gwChild.stderrLineCount
        gwChild.signal(SIGHUP)
        #expect(gwChild.waitForStderrLine(containing: ["certificates reloaded", "listener=secure"], after: skip) != nil,
                "\(gwChild.stderr.suffix(1000))")
        let afterReload = try scope.sClient(port: ports.secure, serverName: "site.test", ["-tls1_3", "-sess_in", session], input: request)
        #expect(afterReload.reused && afterReload.output.contains("HTTP/1.1 200 OK"), "after SIGHUP: \(afterReload)")

        // session_tickets: false on the other listener: every handshake is a full one.
        for version in ["-tls1_2", "-tls1_3"] {
            let session = scope.path("off\(version).pem")
            let first = try scope.sClient(port: ports.other, serverName: "site.test", [version, "-sess_out", session], input: request)
            #expect(first.handshakeDone && first.output.contains("HTTP/1.1 200 OK"), "\(first)")
            // No ticket and no session ID (the cache is off): s_client has nothing to save.
            #expect(!first.output.contains("TLS session ticket"), "tickets off, yet \(version) got one: \(first)")
            #expect(!FileManager.default.fileExists(atPath: session), "tickets off, yet a resumable \(version) session: \(first)")
            if FileManager.default.fileExists(atPath: session) {
                let again = try scope.sClient(port: ports.other, serverName: "site.test", [version, "-sess_in", session], input: request)
                #expect(!again.reused && again.handshakeDone, "tickets off, yet \(version) resumed: \(again)")
            }
        }
    }
}

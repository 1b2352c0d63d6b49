// HTTP/2 downstream end to end: the built gateway speaking HTTP/2 to real clients (curl, `openssl
// s_client`, h2load, and Python's `h2` package in peers/h2client.py) over loopback, each stream
// proxied to the HTTP/1.1 upstream peers (upstream.py, wspeer.py).
//
// What is covered: ALPN h2 on TLS listeners and h2c with prior knowledge on plain ones (RFC 9113
// §3.2, §3.3), `http2: false` per listener, request and response bodies beyond one flow-control
// window, a body of unknown length (chunked upstream), cookie crumbs joined (RFC 9113 §8.2.3),
// 421 for a name the connection's certificate does not cover (RFC 9110 §15.5.20), 431 for a
// header list over the limit, the server's SETTINGS, rapid reset (CVE-2023-44487) and
// CONTINUATION floods (CVE-2024-27316) answered with GOAWAY, GOAWAY on a graceful drain with the
// in-flight stream completed (RFC 9113 §6.8), certificate reload under h2load, and WebSocket
// over HTTP/2 by extended CONNECT (RFC 8441).

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("HTTP/2")
struct HTTP2Tests {
    /// The listeners of `start`.
    struct Listeners {
        /// TLS, HTTP/2 on (the default), certificates default (default.test), exact
        /// (exact.apps.test) and wild (*.apps.test), default certificate `default`.
        let secure: Int
        /// Plain, HTTP/2 on: h2c with prior knowledge.
        let plain: Int
        /// TLS with `http2: false`.
        let secureH1: Int
        /// Plain with `http2: false`.
        let plainH1: Int
    }

    /// A gateway with the four `Listeners`, `limits.max_header_bytes` 16384, the top-level
    /// `http2` block `http2` (nothing when nil), routing `/ws/` to `ws` (when given) and
    /// everything else to `upstream`.
    private func start(_ scope: Scope, upstream: String, ws: String? = nil, http2: String? = nil,
                       drain: String = "10s") throws -> (Gateway, Listeners, String) {
        let pki = try ListenerPKI.shared()
        let dir = scope.path("certs")
        try pki.install(["default", "exact", "wild"], into: dir)
        let l = Listeners(secure: try Ports.free(), plain: try Ports.free(), secureH1: try Ports.free(), plainH1: try Ports.free())
        var yaml = """
        workers: 2
        listeners:
          - name: secure
            address: 127.0.0.1:\(l.secure)
            tls: {certificates: \(dir), default_certificate: default}
          - name: plain
            address: 127.0.0.1:\(l.plain)
          - name: secure-h1
            address: 127.0.0.1:\(l.secureH1)
            tls: {certificates: \(dir), default_certificate: default}
            http2: false
          - name: plain-h1
            address: 127.0.0.1:\(l.plainH1)
            http2: false
        limits: {max_request_line: 8192, max_header_bytes: 16384, max_headers: 100}
        timeouts: {drain: \(drain)}
        logging: {access: stdout, error: stderr}
        admin: {address: "off"}

        """
        if let http2 { yaml += "http2: \(http2)\n" }
        yaml += "routes:\n"
        if let ws { yaml += "  - name: ws\n    path_prefix: /ws/\n    upstreams: [\"\(ws)\"]\n" }
        yaml += "  - name: all\n    path_prefix: /\n    upstreams: [\"\(upstream)\"]\n"
        let gw = try scope.startGateway(yaml: yaml, ports: [l.secure, l.plain, l.secureH1, l.plainH1])
        return (gw, l, dir)
    }

    // MARK: - Clients

    /// curl options for `https://NAME:port/` through the test root and 127.0.0.1.
    private func tls(_ name: String, _ port: Int) throws -> [String] {
        ["--cacert", try ListenerPKI.shared().rootCertificate, "--resolve", "\(name):\(port):127.0.0.1"]
    }

    /// One curl run as `Scope.curl` does it, plus the HTTP version it used (`%{http_version}`:
    /// "2", "1.1", or "0" when there was no response). `stdin`: a file fed to curl's stdin.
    private func curl(_ scope: Scope, _ args: [String], maxTime: Double = 15, bodyFile: String? = nil,
                      stdin: String? = nil) throws -> (CurlResult, String) {
        guard let curl = Paths.which("curl") else { throw HarnessError("curl not found on PATH") }
        let tag = UUID().uuidString.prefix(8)
        let headerFile = scope.path("curl-\(tag).headers")
        let out = bodyFile ?? scope.path("curl-\(tag).body")
        let all = ["-q", "-s", "-S", "--noproxy", "*", "--max-time", String(maxTime),
                   "-D", headerFile, "-o", out, "-w", "%{http_code} %{time_total} %{http_version}"] + args
        let r: RunResult
        if let stdin {
            guard let handle = FileHandle(forReadingAtPath: stdin) else { throw HarnessError("cannot open \(stdin)") }
            defer { try? handle.close() }
            let child = try scope.spawn("curl-\(tag)", curl, all, stdin: handle)
            let status = child.wait(timeout: maxTime + 10)
            if status == nil { child.stop(grace: 1) }
            r = RunResult(status: status ?? -1, timedOut: status == nil,
                          stdout: (try? Data(contentsOf: child.stdoutURL)) ?? Data(), stderr: child.stderr)
        } else {
            r = try scope.run(curl, all, timeout: maxTime + 10)
        }
        defer {
            try? FileManager.default.removeItem(atPath: headerFile)
            if bodyFile == nil { try? FileManager.default.removeItem(atPath: out) }
        }
        let w = r.stdoutText.split(separator: " ").map(String.init)
        let raw = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        let body = bodyFile == nil ? ((try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data()) : Data()
        let result = CurlResult(exitCode: r.status, status: w.first.flatMap { Int($0) } ?? 0, headers: Scope.finalHeaders(raw),
                                body: body, timeTotal: w.count > 1 ? Double(w[1]) ?? 0 : 0, stderr: r.stderr)
        return (result, w.count > 2 ? w[2] : "")
    }

    /// peers/h2client.py arguments for a TLS connection with SNI `name` (none when nil).
    private func tlsArgs(_ name: String?) throws -> [String] {
        ["--tls", "--cafile", try ListenerPKI.shared().rootCertificate] + (name.map { ["--name", $0] } ?? [])
    }

    // MARK: - 1. Proxying over TLS

    @Test("curl --http2 over TLS: proxied with X-Forwarded-Proto https; HTTP/1.1 on the same listener still works; cookie crumbs joined")
    func proxiesOverTLS() throws {
        let scope = try Scope("h2-tls")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0])
        let base = "https://exact.apps.test:\(l.secure)"
        let opts = try tls("exact.apps.test", l.secure)

        let (r, version) = try curl(scope, opts + ["--http2", "-H", "X-Forwarded-Proto: http", base + "/echo?via=h2"])
        #expect(r.exitCode == 0 && r.status == 200 && version == "2", "\(r.summary), http_version \(version)")
        let echo = Echo.decode(r.body)
        #expect(echo?.method == "GET" && echo?.target == "/echo?via=h2", "\(r.summary)")
        #expect(echo?.version == "HTTP/1.1", "the upstream should see HTTP/1.1: \(r.summary)")
        #expect(echo?.values("X-Forwarded-Proto") == ["https"], "what the upstream saw: \(String(describing: echo?.headers))")
        #expect(echo?.values("Host") == ["exact.apps.test:\(l.secure)"], "Host from :authority: \(String(describing: echo?.headers))")

        let (h1, h1Version) = try curl(scope, opts + ["--http1.1", base + "/echo?via=h1"])
        #expect(h1.exitCode == 0 && h1.status == 200 && h1Version == "1.1", "\(h1.summary), http_version \(h1Version)")
        #expect(Echo.decode(h1.body)?.values("X-Forwarded-Proto") == ["https"], "\(h1.summary)")

        // Cookie crumbs (RFC 9113 §8.2.3): separate `cookie` fields on the wire (h2client.py sends
        // exactly what it is given), one `Cookie: a=1; b=2` line upstream.
        let crumbs = try scope.h2client("requests", port: l.secure, try tlsArgs("exact.apps.test") + [
            "--plan", Scope.h2Plan([["path": "/echo?cookies=1", "headers": [["cookie", "a=1"], ["cookie", "b=2"]]]]),
        ])
        #expect(crumbs["error"].isNull && crumbs["alpn"].string == "h2", "\(crumbs)")
        let seen = Echo.decode(Data((crumbs["responses"][0]["body"].string ?? "").utf8))
        #expect(crumbs["responses"][0]["status"].int == 200, "\(crumbs)")
        #expect(seen?.values("Cookie") == ["a=1; b=2"], "cookies the upstream saw: \(String(describing: seen?.headers))")
        // curl's two Cookie headers end up the same way.
        let (two, _) = try curl(scope, opts + ["--http2", "-H", "Cookie: a=1", "-H", "Cookie: b=2", base + "/echo?cookies=2"])
        #expect(Echo.decode(two.body)?.values("Cookie") == ["a=1; b=2"], "\(two.summary)")

        // The access log tells the two apart.
        let h2Line = gw.accessLine(containing: "/echo?via=h2")
        #expect(h2Line?.hasSuffix(" proto=h2") == true, "access line of the HTTP/2 request: \(h2Line ?? "none")")
        let h1Line = gw.accessLine(containing: "/echo?via=h1")
        #expect(h1Line != nil && h1Line?.contains("proto=h2") == false, "access line of the HTTP/1.1 request: \(h1Line ?? "none")")
    }

    // MARK: - 2. ALPN

    @Test("ALPN: h2 when offered, http/1.1 when only it is offered; a listener with http2: false answers http/1.1")
    func alpn() throws {
        let scope = try Scope("h2-alpn")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, l, _) = try start(scope, upstream: up.addresses[0])
        for version in ["-tls1_3", "-tls1_2"] {
            let both = try scope.sClient(port: l.secure, serverName: "default.test", verify: "default.test", ["-alpn", "h2,http/1.1", version])
            #expect(both.alpn == "h2" && both.verified, "\(version): \(both)")
            let h1 = try scope.sClient(port: l.secure, serverName: "default.test", ["-alpn", "http/1.1", version])
            #expect(h1.alpn == "http/1.1", "\(version): \(h1)")
            let off = try scope.sClient(port: l.secureH1, serverName: "default.test", ["-alpn", "h2,http/1.1", version])
            #expect(off.alpn == "http/1.1" && off.handshakeDone, "http2: false, \(version): \(off)")
        }
        // curl asking for HTTP/2 on the http2: false listener gets a working HTTP/1.1 exchange.
        let (r, version) = try curl(scope, try tls("default.test", l.secureH1) + ["--http2", "https://default.test:\(l.secureH1)/echo"])
        #expect(r.exitCode == 0 && r.status == 200 && version == "1.1", "\(r.summary), http_version \(version)")
    }

    // MARK: - 3. h2c

    @Test("h2c with prior knowledge on a plain listener; http2: false on a plain listener means no HTTP/2")
    func h2cPriorKnowledge() throws {
        let scope = try Scope("h2-h2c")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, l, _) = try start(scope, upstream: up.addresses[0])
        let (r, version) = try curl(scope, ["--http2-prior-knowledge", "http://127.0.0.1:\(l.plain)/echo?h2c=1"])
        #expect(r.exitCode == 0 && r.status == 200 && version == "2", "\(r.summary), http_version \(version)")
        let echo = Echo.decode(r.body)
        #expect(echo?.target == "/echo?h2c=1" && echo?.values("X-Forwarded-Proto") == ["http"], "\(r.summary)")

        let (off, offVersion) = try curl(scope, ["--http2-prior-knowledge", "http://127.0.0.1:\(l.plainH1)/echo?h2c=off"], maxTime: 10)
        #expect(off.exitCode != 0 || offVersion != "2", "http2: false, yet HTTP/2: \(off.summary), http_version \(offVersion)")
        #expect(off.status != 200, "http2: false, yet the prior-knowledge request was served: \(off.summary)")
        // HTTP/1.1 there is unaffected.
        let (h1, h1Version) = try curl(scope, ["http://127.0.0.1:\(l.plainH1)/echo"])
        #expect(h1.status == 200 && h1Version == "1.1", "\(h1.summary)")
    }

    // MARK: - 4. Bodies

    @Test("bodies over HTTP/2: 1 MiB upload with content-length, upload of unknown length (chunked upstream), 6 MB download",
          arguments: ["tls", "h2c"])
    func bodies(transport: String) throws {
        let scope = try Scope("h2-bodies-\(transport)")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, l, _) = try start(scope, upstream: up.addresses[0])
        let (opts, base): ([String], String) = transport == "tls"
            ? (try tls("default.test", l.secure) + ["--http2"], "https://default.test:\(l.secure)")
            : (["--http2-prior-knowledge"], "http://127.0.0.1:\(l.plain)")
        let size = (1 << 20) + 7  // more than the 64 KiB stream window, many times over
        let payload = try scope.makePayload("up.bin", size: size)
        let digest = try scope.sha256(ofFile: payload)

        // Content-length: the upstream gets the same length and the same bytes.
        let (post, postVersion) = try curl(scope, opts + ["--data-binary", "@" + payload, "-H", "Content-Type: application/octet-stream",
                                                          base + "/echo?upload=cl"], maxTime: 10)
        let posted = Echo.decode(post.body)
        #expect(post.status == 200 && postVersion == "2", "\(post.summary)")
        #expect(posted?.body_length == size && posted?.body_sha256 == digest, "\(post.summary)")
        #expect(posted?.values("Content-Length") == ["\(size)"], "\(String(describing: posted?.headers))")

        // Unknown length (curl -T - reads stdin): chunked upstream, every byte there.
        let (put, putVersion) = try curl(scope, opts + ["-T", "-", base + "/echo?upload=stdin"], maxTime: 8, stdin: payload)
        let streamed = Echo.decode(put.body)
        #expect(put.exitCode == 0 && put.status == 200 && putVersion == "2", "upload of unknown length: \(put.summary)")
        #expect(streamed?.method == "PUT" && streamed?.body_length == size && streamed?.body_sha256 == digest, "\(put.summary)")
        #expect(streamed?.values("Transfer-Encoding") == ["chunked"] && streamed?.values("Content-Length") == [],
                "framing the upstream saw: \(String(describing: streamed?.headers))")

        // The same with the client's END_STREAM on the last DATA frame that carries bytes (raw
        // frames, h2client.py): deterministic, where curl's framing varies from run to run.
        let transportArgs = transport == "tls" ? try tlsArgs("default.test") : [String]()
        let raw = try scope.h2client("upload", port: transport == "tls" ? l.secure : l.plain,
                               transportArgs + ["--path", "/echo?upload=raw", "--size", "60000", "--wait", "5"])
        let rawEcho = Echo.decode(Data((raw["body"].string ?? "").utf8))
        #expect(raw["error"].isNull && raw["status"].int == 200 && raw["stream_ended"].bool == true,
                "POST without content-length, END_STREAM on the last DATA frame: no answer: \(raw)")
        #expect(rawEcho?.body_length == 60000 && rawEcho?.body_sha256 == raw["sha256"].string
                && rawEcho?.values("Transfer-Encoding") == ["chunked"], "\(raw)")

        // A response body of several MiB (many windows), Content-Length and chunked upstream.
        for query in ["", "?chunked=1"] {
            let file = scope.path("down\(query.isEmpty ? "" : "-chunked").bin")
            let (down, downVersion) = try curl(scope, opts + [base + "/bytes/6000000" + query], maxTime: 6, bodyFile: file)
            #expect(down.exitCode == 0 && down.status == 200 && downVersion == "2", "/bytes/6000000\(query): \(down.summary)")
            let got = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int) ?? -1
            #expect(got == 6_000_000, "/bytes/6000000\(query): \(got) bytes arrived")
            #expect(down.header("X-Body-SHA256") == (try scope.sha256(ofFile: file)), "/bytes/6000000\(query): \(down.headers)")
        }
    }

    // MARK: - 5. 421

    @Test("421 with a JSON body for a name the connection's certificate does not cover; covered names get 200")
    func misdirected() throws {
        let scope = try Scope("h2-421")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, l, _) = try start(scope, upstream: up.addresses[0])
        let opts = try tls("exact.apps.test", l.secure) + ["--http2"]
        let url = "https://exact.apps.test:\(l.secure)/echo"

        // SNI exact.apps.test; curl sends its Host header as :authority.
        let (other, otherVersion) = try curl(scope, opts + ["-H", "Host: other.test", url])
        #expect(other.status == 421 && otherVersion == "2", "\(other.summary)")
        #expect(other.header("Content-Type") == "application/json", "\(other.headers)")
        #expect(other.json?["error"] as? String == "misdirected request" && isGeneratedRequestId(other.json?["request_id"] as? String),
                "\(other.summary)")
        let (covered, _) = try curl(scope, opts + [url])
        #expect(covered.status == 200 && Echo.decode(covered.body)?.values("Host") == ["exact.apps.test:\(l.secure)"], "\(covered.summary)")

        // On one connection (h2client.py): a misdirected stream, then a covered one (port
        // ignored), then another name under a wildcard certificate this connection did not get.
        let r = try scope.h2client("requests", port: l.secure, try tlsArgs("exact.apps.test") + [
            "--plan", Scope.h2Plan([["path": "/echo?n=1", "authority": "other.test"],
                            ["path": "/echo?n=2", "authority": "EXACT.apps.test:1234"],
                            ["path": "/echo?n=3", "authority": "foo.apps.test"]]),
        ])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["responses"][0]["status"].int == 421 && r["responses"][0]["body"].string?.contains("misdirected request") == true, "\(r)")
        #expect(r["responses"][1]["status"].int == 200, "\(r)")
        #expect(r["responses"][2]["status"].int == 421, "exact's certificate does not cover foo.apps.test: \(r)")
        #expect(r["goaway"].isNull && r["closed"].bool == false, "\(r)")

        // SNI foo.apps.test picks the wildcard certificate: bar.apps.test is covered by it.
        let wild = try scope.h2client("requests", port: l.secure, try tlsArgs("foo.apps.test") + [
            "--plan", Scope.h2Plan([["path": "/echo", "authority": "bar.apps.test"], ["path": "/echo", "authority": "a.b.apps.test"]]),
        ])
        #expect(wild["responses"][0]["status"].int == 200, "\(wild)")
        #expect(wild["responses"][1]["status"].int == 421, "*.apps.test covers one label only: \(wild)")

        // Without SNI there is nothing to be misdirected from.
        let noSNI = try scope.h2client("requests", port: l.secure, try tlsArgs(nil) + [
            "--plan", Scope.h2Plan([["path": "/echo", "authority": "other.test"]]),
        ])
        #expect(noSNI["responses"][0]["status"].int == 200, "\(noSNI)")
    }

    // MARK: - 6. 431

    @Test("a header list over http2.max_header_list_size gets 431 (JSON); the connection serves the next stream")
    func headerListTooLarge() throws {
        let scope = try Scope("h2-431")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0], http2: "{max_header_list_size: 1024}")
        let big = String(repeating: "b", count: 1500)
        for (port, args) in [(l.secure, try tlsArgs("default.test")), (l.plain, [])] {
            let r = try scope.h2client("requests", port: port, args + [
                "--plan", Scope.h2Plan([["path": "/echo?big=1", "headers": [["x-big", big]]],
                                ["path": "/echo?after=1", "headers": [["x-small", String(repeating: "s", count: 500)]]]]),
            ])
            #expect(r["error"].isNull, "\(r)")
            let refused = r["responses"][0]
            #expect(refused["status"].int == 431, "\(r)")
            let body = JSONValue(data: Data((refused["body"].string ?? "").utf8))
            #expect(body["error"].string == "request header fields too large" && isGeneratedRequestId(body["request_id"].string), "\(refused)")
            if let rid = body["request_id"].string {
                #expect(gw.child.waitForStderrLine(containing: ["event=\"request header fields too large\"", "status=431", "rid=\(rid)"]) != nil,
                        "no error line for \(rid): \(gw.child.stderr.suffix(1000))")
            }
            let next = r["responses"][1]
            #expect(next["status"].int == 200 && next["stream_id"].int == 3, "the next stream on the same connection: \(r)")
            #expect(Echo.decode(Data((next["body"].string ?? "").utf8))?.target == "/echo?after=1", "\(next)")
            #expect(r["goaway"].isNull && r["closed"].bool == false, "\(r)")
        }
        // The refused requests never reached the upstream; the one after did.
        #expect(gw.accessLine(containing: "/echo?after=1") != nil, "\(gw.child.stdout.suffix(1000))")
        let proxiedBig = gw.child.stdout.split(separator: "\n").filter { $0.contains("/echo?big=1") && !$0.contains("upstream=-") }
        #expect(proxiedBig.isEmpty, "a refused request was proxied: \(proxiedBig)")
    }

    // MARK: - 7. Rapid reset

    @Test("rapid reset (CVE-2023-44487): more resets than the burst get a GOAWAY and the close; fewer do not; the gateway serves on")
    func rapidReset() throws {
        let scope = try Scope("h2-rapid-reset")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0], http2: "{stream_resets: {burst: 50, per_second: 10}}")

        for (port, args) in [(l.secure, try tlsArgs("default.test")), (l.plain, [])] {
            // 300 streams opened and cancelled at once, then one more GET.
            let flood = try scope.h2client("rapid-reset", port: port, args + ["--count", "300"])
            #expect(flood["error"].isNull, "\(flood)")
            #expect(!flood["goaway"].isNull, "no GOAWAY after 300 resets (burst 50): \(flood)")
            #expect(flood["goaway"]["error_code"].string != nil && flood["goaway"]["error_code"].string != "NO_ERROR", "\(flood)")
            #expect((flood["goaway"]["last_stream_id"].int ?? Int.max) < 601, "GOAWAY should stop short of the flood's end: \(flood)")
            #expect(flood["closed"].bool == true, "the connection stayed open: \(flood)")
            #expect(flood["final_status"].isNull, "the stream after the flood was served: \(flood)")

            // Under the burst: the connection stays and answers the GET that follows.
            let calm = try scope.h2client("rapid-reset", port: port, args + ["--count", "20"])
            #expect(calm["goaway"].isNull && calm["closed"].bool == false && calm["final_status"].int == 200, "20 resets (burst 50): \(calm)")
        }
        let (r, version) = try curl(scope, try tls("default.test", l.secure) + ["--http2", "https://default.test:\(l.secure)/echo?after=reset"])
        #expect(r.status == 200 && version == "2", "after the floods: \(r.summary)")
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 8. CONTINUATION flood

    @Test("CONTINUATION flood (CVE-2024-27316): more than max_continuations (8) get a GOAWAY and the close; 8 are fine")
    func continuationFlood() throws {
        let scope = try Scope("h2-continuation")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0])
        for (port, args) in [(l.secure, try tlsArgs("default.test")), (l.plain, [])] {
            let ok = try scope.h2client("continuation", port: port, args + ["--frames", "8"])
            #expect(ok["error"].isNull && ok["status"].int == 200 && ok["closed"].bool == false,
                    "HEADERS + 8 CONTINUATION frames (the limit) should be served: \(ok)")

            let flood = try scope.h2client("continuation", port: port, args + ["--frames", "40"])
            #expect(flood["error"].isNull, "\(flood)")
            #expect(flood["status"].isNull, "a header block of 40 CONTINUATION frames was answered: \(flood)")
            #expect(flood["closed"].bool == true, "the connection stayed open: \(flood)")
            #expect(!flood["goaway"].isNull,
                    "the connection was closed without a GOAWAY (RFC 9113 §5.4.1); frame types received, in order: \(flood["frames"]), close: \(flood["close_kind"]); \(flood)")
        }
        let (r, version) = try curl(scope, ["--http2-prior-knowledge", "http://127.0.0.1:\(l.plain)/echo?after=continuations"])
        #expect(r.status == 200 && version == "2", "after the floods: \(r.summary)")
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 9. SETTINGS

    @Test("the server's SETTINGS: MAX_CONCURRENT_STREAMS 128 and MAX_HEADER_LIST_SIZE = limits.max_header_bytes by default, ENABLE_CONNECT_PROTOCOL 1; configured values are sent")
    func settings() throws {
        let scope = try Scope("h2-settings")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (_, l, _) = try start(scope, upstream: up.addresses[0])
        // RFC 9113 §6.5.2 ids: 1 HEADER_TABLE_SIZE, 3 MAX_CONCURRENT_STREAMS, 4 INITIAL_WINDOW_SIZE,
        // 6 MAX_HEADER_LIST_SIZE; RFC 8441 §3: 8 ENABLE_CONNECT_PROTOCOL.
        for (port, args) in [(l.secure, try tlsArgs("default.test")), (l.plain, [])] {
            let r = try scope.h2client("settings", port: port, args)
            #expect(r["error"].isNull && r["first_frame"].string == "SettingsFrame", "\(r)")
            let s = r["settings"]
            #expect(s["3"].int == 128, "MAX_CONCURRENT_STREAMS: \(s)")
            #expect(s["8"].int == 1, "ENABLE_CONNECT_PROTOCOL: \(s)")
            #expect(s["6"].int == 16384, "MAX_HEADER_LIST_SIZE should default to limits.max_header_bytes (16384): \(s)")
        }

        let scope2 = try Scope("h2-settings-set")
        defer { scope2.close() }
        let (_, l2, _) = try start(scope2, upstream: up.addresses[0], http2: """
            {max_concurrent_streams: 64, max_header_list_size: 4096, header_table_size: 2048, initial_window_size: 32768}
            """)
        let r = try scope2.h2client("settings", port: l2.plain, [])
        let s = r["settings"]
        #expect(s["3"].int == 64 && s["6"].int == 4096 && s["1"].int == 2048 && s["4"].int == 32768 && s["8"].int == 1, "\(r)")
    }

    // MARK: - 10. Graceful shutdown

    @Test("SIGTERM: GOAWAY (NO_ERROR) naming the in-flight stream, whose response still arrives whole; then the close and exit 0")
    func gracefulDrain() throws {
        let scope = try Scope("h2-drain")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0])
        let peer = try scope.startPeer("h2client.py", python: try scope.venvPython(),
                                       ["drain", "--port", "\(l.secure)", "--path", "/slow?delay=2"] + (try tlsArgs("default.test")),
                                       name: "h2drain") { String(decoding: $0, as: UTF8.self).hasPrefix("sent") ? true : nil }
        // Ready once a PING sent behind the request was acknowledged: the gateway has the stream.
        #expect(peer.child.isRunning, "the client finished before SIGTERM: \(peer.child.stdout)")
        gw.child.signal(SIGTERM)
        #expect(peer.child.wait(timeout: 20) == 0, "h2client.py: \(peer.child.stderr.suffix(1000))")
        let r = JSONValue(data: Data(peer.child.stdout.utf8))
        #expect(r["error"].isNull && r["first"].int == 200 && r["ping_acked"].bool == true, "\(r)")
        #expect(r["goaway"]["error_code"].string == "NO_ERROR" && (r["goaway"]["last_stream_id"].int ?? 0) >= 3, "\(r)")
        #expect(r["status"].int == 200 && r["stream_ended"].bool == true, "the in-flight stream: \(r)")
        #expect(JSONValue(data: Data((r["body"].string ?? "").utf8))["slept"].value as? Double == 2, "in-flight body: \(r)")
        let events = r["events"].array.compactMap(\.string)
        if let g = events.firstIndex(of: "goaway"), let e = events.firstIndex(of: "end:3") {
            #expect(g < e, "the GOAWAY should come before the in-flight stream ends: \(events)")
        } else {
            Issue.record("events: \(events)")
        }
        #expect(r["closed"].bool == true && events.last == "eof", "the gateway should close the connection after the last stream: \(r)")
        let exit = gw.child.wait(timeout: 15)
        #expect(exit == 0 && gw.child.exitedNormally, "gateway exit: \(exit.map(String.init) ?? "still running"); \(gw.child.stderr.suffix(1000))")
    }

    // MARK: - 11. Reload under load

    /// h2load's summary: (requests total, succeeded, failed, errored, timeout, 2xx); nil without one.
    private func h2loadSummary(_ out: String) -> [String: Int]? {
        var result: [String: Int] = [:]
        func numbers(_ line: Substring, _ keys: [String]) {
            for part in line.split(separator: ",") {
                let words = part.split(separator: " ")
                guard words.count >= 2 else { continue }
                for (i, w) in words.enumerated() where i > 0 && keys.contains(String(w)) { result[String(w)] = Int(words[i - 1]) }
            }
        }
        for line in out.split(separator: "\n") {
            if line.hasPrefix("requests: ") {
                numbers(line.dropFirst("requests: ".count), ["total", "succeeded", "failed", "errored", "timeout"])
            } else if line.hasPrefix("status codes: ") {
                numbers(line.dropFirst("status codes: ".count), ["2xx", "3xx", "4xx", "5xx"])
            }
        }
        return result["total"] == nil ? nil : result
    }

    @Test("h2load across a certificate reload (files replaced, SIGHUP): every request 2xx, none failed or errored")
    func reloadUnderLoad() throws {
        let scope = try Scope("h2-reload")
        defer { scope.close() }
        let pki = try ListenerPKI.shared()
        guard let h2load = Paths.which("h2load") else { throw HarnessError("h2load not found on PATH (Debian: nghttp2-client)") }
        let up = try scope.startUpstreams(1)
        let (gw, l, dir) = try start(scope, upstream: up.addresses[0])
        let url = "https://127.0.0.1:\(l.secure)/echo"

        // Long enough (20,000 requests) that the reload lands while it runs: the reload starts
        // once h2load reports its first progress.
        let load = try scope.spawn("h2load", h2load, ["-n", "20000", "-c", "4", "-m", "10", url])
        let deadline = Date().addingTimeInterval(20)
        while !load.stdout.contains("progress: 10% done") && load.isRunning && Date() < deadline { usleep(10_000) }
        let skip = gw.child.stderrLineCount
        try ListenerPKI.replace(dir, "default.key", with: try pki.key("default-v2"))
        try ListenerPKI.replace(dir, "default.crt", with: try pki.certificate("default-v2"))
        gw.child.signal(SIGHUP)
        #expect(gw.child.waitForStderrLine(containing: ["certificates reloaded", "listener=secure"], after: skip) != nil,
                "\(gw.child.stderr.suffix(1500))")
        let renewed = try scope.waitForCertificate(port: l.secure, serverName: "default.test", ou: "default-v2")
        #expect(renewed.ou == "default-v2", "\(renewed)")
        #expect(load.wait(timeout: 60) == 0, "h2load: \(load.stdout.suffix(1500)) \(load.stderr.suffix(500))")
        let during = h2loadSummary(load.stdout)
        #expect(load.stdout.contains("Application protocol: h2"), "\(load.stdout.suffix(1500))")
        #expect(during?["total"] == 20000 && during?["succeeded"] == 20000 && during?["failed"] == 0 && during?["errored"] == 0
                && during?["timeout"] == 0 && during?["2xx"] == 20000, "h2load across the reload: \(load.stdout.suffix(1200))")

        // New connections, all with the renewed certificate: the run the brief names.
        let after = try scope.run(h2load, ["-n", "4000", "-c", "4", "-m", "10", url], timeout: 60)
        let summary = h2loadSummary(after.stdoutText)
        #expect(after.status == 0 && after.stdoutText.contains("Application protocol: h2"), "\(after.stdoutText.suffix(1500))")
        #expect(summary?["total"] == 4000 && summary?["failed"] == 0 && summary?["errored"] == 0 && summary?["2xx"] == 4000,
                "h2load after the reload: \(after.stdoutText.suffix(1200))")
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 11b. Request trailers

    @Test("request trailers (RFC 9110 §6.5): forwarded in the last chunk when the body has no content-length; with one, dropped and logged")
    func requestTrailers() throws {
        let scope = try Scope("h2-trailers")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0])
        let chunked = try scope.h2client("trailers", port: l.plain, ["--path", "/echo", "--size", "0", "--header", "x-checksum:abc123"])
        let echo = JSONValue(data: Data((chunked["body"].string ?? "").utf8))
        #expect(chunked["status"].int == 200 && echo["body_length"].int == 1000, "\(chunked)")
        #expect(echo["trailers"][0][0].string?.lowercased() == "x-checksum" && echo["trailers"][0][1].string == "abc123", "\(echo)")
        let sized = try scope.h2client("trailers", port: l.plain, ["--path", "/echo", "--size", "1", "--header", "x-checksum:abc123"])
        let echo2 = JSONValue(data: Data((sized["body"].string ?? "").utf8))
        #expect(sized["status"].int == 200 && echo2["body_length"].int == 1000 && echo2["trailers"][0].isNull, "\(sized)")
        #expect(eventually(3) { gw.child.stderr.contains("h2_trailer_dropped") }, "\(gw.child.stderr.suffix(1000))")
    }

    // MARK: - 12. WebSocket over HTTP/2

    @Test("WebSocket over HTTP/2 (RFC 8441): extended CONNECT gets 200, a masked text frame echoes, close and END_STREAM end it cleanly",
          arguments: ["tls", "h2c"])
    func webSocket(transport: String) throws {
        let scope = try Scope("h2-ws-\(transport)")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let peer = try scope.startWSPeer(ws: 1, raw: 0)
        let (gw, l, _) = try start(scope, upstream: up.addresses[0], ws: peer.wsAddresses[0])
        let (port, args) = transport == "tls" ? (l.secure, try tlsArgs("exact.apps.test")) : (l.plain, [String]())
        let path = "/ws/chat?over=\(transport)"
        let r = try scope.h2client("websocket", port: port, args + ["--path", path, "--text", "hello over h2 (\(transport))"])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["server_enable_connect_protocol"].int == 1, "\(r)")
        #expect(r["status"].int == 200, "extended CONNECT answer: \(r)")
        // RFC 8441 §5: no Upgrade/Connection/Sec-WebSocket-Accept on HTTP/2.
        let names = r["headers"].array.compactMap { $0[0].string }
        #expect(!names.contains("sec-websocket-accept") && !names.contains("upgrade") && !names.contains("connection"), "\(r["headers"])")
        #expect(r["echo"]["opcode"].int == 1 && r["echo"]["text"].string == "hello over h2 (\(transport))"
                && r["echo"]["masked"].bool == false, "echoed frame: \(r["echo"])")
        #expect(r["close"]["opcode"].int == 8 && r["close"]["code"].int == 1000 && r["close"]["reason"].string == "h2 bye",
                "close frame back: \(r["close"])")
        #expect(r["stream_ended"].bool == true && r["reset"].isNull && r["extra_bytes"].int == 0, "stream end: \(r)")
        #expect(r["after_status"].int == 200 && r["goaway"].isNull && r["closed"].bool == false,
                "the connection after the WebSocket stream: \(r)")
        let line = gw.accessLine(containing: "GET \(path)")
        #expect(line?.hasSuffix(" proto=h2") == true, "access line: \(line ?? "none"); stdout: \(gw.child.stdout.suffix(1000))")
        // The status the client saw (200 on its CONNECT stream), not the upstream's 101.
        #expect(line?.contains("\" 200 ") == true, "access line: \(line ?? "none")")
    }
}

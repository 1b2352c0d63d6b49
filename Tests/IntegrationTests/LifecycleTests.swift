// The process from the outside: graceful drain on SIGTERM/SIGINT, the access
// log, and `switchyard check` on good and bad configurations.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Lifecycle: shutdown and access log")
struct LifecycleTests {
    @Test("SIGTERM drains: in-flight request completes, new connections refused, exit 0")
    func gracefulShutdown() throws {
        let scope = try Scope("drain")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        guard let curl = Paths.which("curl") else { throw HarnessError("curl not found") }

        let inflight = try scope.spawn("inflight", curl, ["-q", "-s", "-S", "--noproxy", "*", "--max-time", "20",
                                                          "-w", "\n%{http_code}", gw.url("/slow?delay=2")])
        usleep(500_000)
        #expect(inflight.isRunning, "the slow request should still be in flight")
        gw.child.signal(SIGTERM)
        let signalled = Date()

        // The listener goes away while the slow request is still running.
        var outcome = Ports.tryConnect(gw.port)
        while outcome != .refused && Date().timeIntervalSince(signalled) < 1.2 {
            usleep(20_000)
            outcome = Ports.tryConnect(gw.port)
        }
        #expect(outcome == .refused, "new connections should be refused after SIGTERM, got \(outcome)")
        #expect(inflight.isRunning || Date().timeIntervalSince(signalled) >= 1.2)

        let curlStatus = inflight.wait(timeout: 15)
        let lines = inflight.stdout.split(separator: "\n")
        #expect(curlStatus == 0, "in-flight curl failed: \(inflight.stderr)")
        #expect(lines.last == "200", "in-flight request should finish with 200: \(inflight.stdout)")
        #expect(inflight.stdout.contains("\"slept\""), "in-flight body: \(inflight.stdout)")

        let exit = gw.child.wait(timeout: 12)
        #expect(exit == 0 && gw.child.exitedNormally,
                "gateway should exit 0 after draining, got \(exit.map(String.init) ?? "still running"); stderr: \(gw.child.stderr.suffix(500))")
    }

    @Test("SIGTERM with only idle keep-alive connections exits promptly")
    func idleConnectionsDoNotHoldShutdown() throws {
        let scope = try Scope("drain-idle")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(GatewayConfig(port: try Ports.free(),
                                                      routes: [RouteSpec(name: "all", upstreams: up.addresses)],
                                                      drain: "30s"))
        let conn = try RawConnection(port: gw.port)
        conn.send("GET /echo HTTP/1.1\r\nHost: i.test\r\n\r\n")
        #expect(try conn.readResponse().status == 200)

        let start = Date()
        gw.child.signal(SIGTERM)
        let exit = gw.child.wait(timeout: 10)
        #expect(exit == 0, "gateway should exit 0, got \(exit.map(String.init) ?? "still running after 10s")")
        #expect(Date().timeIntervalSince(start) < 5, "an idle connection held shutdown for \(Date().timeIntervalSince(start))s")
        #expect(conn.waitForClose(timeout: 2).closed, "the idle client connection should be closed")
    }

    @Test("drain timeout bounds shutdown when a request outlives it")
    func drainTimeout() throws {
        let scope = try Scope("drain-limit")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(GatewayConfig(port: try Ports.free(),
                                                      routes: [RouteSpec(name: "all", upstreams: up.addresses)],
                                                      drain: "1s"))
        let conn = try RawConnection(port: gw.port)
        conn.send("GET /slow?delay=15 HTTP/1.1\r\nHost: d.test\r\n\r\n")
        usleep(300_000)
        let start = Date()
        gw.child.signal(SIGTERM)
        let exit = gw.child.wait(timeout: 10)
        let took = Date().timeIntervalSince(start)
        #expect(exit == 0, "gateway should exit 0 after the drain timeout, got \(exit.map(String.init) ?? "still running")")
        #expect(took < 4, "drain: 1s but shutdown took \(took)s")
    }

    @Test("SIGINT also exits 0")
    func sigint() throws {
        let scope = try Scope("sigint")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        gw.child.signal(SIGINT)
        let exit = gw.child.wait(timeout: 10)
        #expect(exit == 0 && gw.child.exitedNormally, "SIGINT exit: \(exit.map(String.init) ?? "still running")")
    }

    @Test("access log: one stdout line per request")
    func accessLogStdout() throws {
        let scope = try Scope("alog")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let paths = (1...5).map { "/echo?logged=\($0)" } + ["/nowhere-\(UUID().uuidString.prefix(6))"]
        for p in paths { _ = try scope.get(gw.url(p)) }
        // Bad requests are requests too: a 400 is logged as well.
        let conn = try RawConnection(port: gw.port)
        conn.send("GET /malformed-logged HTTP/1.1\r\n\r\n")
        _ = try? conn.readResponse(timeout: 3)

        gw.child.signal(SIGTERM)  // flushes whatever is buffered
        #expect(gw.child.wait(timeout: 10) == 0)
        let lines = gw.child.stdout.split(separator: "\n")
        for p in paths {
            let hits = lines.filter { $0.contains(p) }
            #expect(hits.count == 1, "expected one access log line containing \(p), found \(hits.count); stdout:\n\(gw.child.stdout.suffix(1500))")
        }
        #expect(lines.filter { $0.contains("/malformed-logged") }.count == 1, "a 400 should be logged once")
    }

    @Test("access log to a file, and off")
    func accessLogFileAndOff() throws {
        let scope = try Scope("alog-file")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let logPath = scope.path("access.log")

        var config = GatewayConfig(port: try Ports.free(), routes: [RouteSpec(name: "all", upstreams: up.addresses)])
        config.access = logPath
        let toFile = try scope.startGateway(config, name: "gw-file")
        for i in 1...3 { _ = try scope.get(toFile.url("/echo?to-file=\(i)")) }
        toFile.child.signal(SIGTERM)
        #expect(toFile.child.wait(timeout: 10) == 0)
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(text.split(separator: "\n").filter { $0.contains("/echo?to-file=") }.count == 3,
                "access log file should have 3 lines: \(text.suffix(800))")
        #expect(!toFile.child.stdout.contains("/echo?to-file="), "logging to a file must not also log to stdout")

        config.port = try Ports.free()
        config.access = "off"
        let off = try scope.startGateway(config, name: "gw-off")
        _ = try scope.get(off.url("/echo?log-off=1"))
        off.child.signal(SIGTERM)
        #expect(off.child.wait(timeout: 10) == 0)
        #expect(!off.child.stdout.contains("log-off"), "access: off still logged: \(off.child.stdout.suffix(500))")
    }
}

@Suite("switchyard check")
struct CheckCommandTests {
    private func check(_ scope: Scope, _ yaml: String, name: String) throws -> RunResult {
        let bin = try scope.gatewayBinary()
        let path = try scope.write(name, yaml)
        return try scope.run(bin, ["check", "--config", path], timeout: 20)
    }

    private func validYAML(port: Int = 18080) -> String {
        GatewayConfig(port: port, routes: [
            RouteSpec(name: "api", host: "example.com", pathPrefix: "/api", upstreams: ["127.0.0.1:9001", "127.0.0.1:9002"]),
            RouteSpec(name: "rest", upstreams: ["127.0.0.1:9003"]),
        ]).yaml()
    }

    @Test("a valid config passes and prints a summary")
    func valid() throws {
        let scope = try Scope("check-ok")
        defer { scope.close() }
        let r = try check(scope, validYAML(), name: "ok.yaml")
        #expect(r.status == 0, "check failed on a valid config: \(r.stderr)")
        #expect(!(r.stdoutText + r.stderr).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "check printed no summary")
        #expect(r.stdoutText.contains("api") || r.stdoutText.contains("route"), "summary should mention the routes: \(r.stdoutText)")
    }

    @Test("bad configs fail and name the offending key", arguments: [
        ("upstreams: [\"127.0.0.1:9003\"]", "upstreams: [\"nonsense\"]", "upstreams"),
        ("    path_prefix: /api", "    path_prefx: /api", "path_prefx"),
        ("client_header: 10s", "client_header: 10 parsecs", "client_header"),
        ("workers: 2", "workers: 2\nbogus_top_level: 1", "bogus_top_level"),
        ("address: 127.0.0.1:18080", "address: not-an-address", "address"),
    ])
    func invalid(find: String, replace: String, key: String) throws {
        let scope = try Scope("check-bad")
        defer { scope.close() }
        let yaml = validYAML()
        #expect(yaml.contains(find), "test bug: \(find) not in the template")
        let r = try check(scope, yaml.replacingOccurrences(of: find, with: replace), name: "bad.yaml")
        #expect(r.status != 0, "check accepted a config with \(replace.debugDescription)")
        #expect(r.stderr.contains(key), "error should name \(key): stderr \(r.stderr.debugDescription)")
    }

    @Test("serve refuses to start on a bad config")
    func serveBadConfig() throws {
        let scope = try Scope("serve-bad")
        defer { scope.close() }
        let bin = try scope.gatewayBinary()
        let path = try scope.write("bad.yaml", validYAML(port: try Ports.free()).replacingOccurrences(of: "workers: 2", with: "workers: many"))
        let r = try scope.run(bin, ["serve", "--config", path], timeout: 10)
        #expect(!r.timedOut, "serve kept running with a bad config")
        #expect(r.status != 0)
        #expect(r.stderr.contains("workers"), "error should name workers: \(r.stderr.debugDescription)")
    }
}

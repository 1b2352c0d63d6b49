// The Autobahn WebSocket fuzzing-client cases, run by kosoku (peers/autobahn_run.py), against
// one echo server (peers/autobahn_echo.py) twice at the same time: directly, and through the
// gateway's tunnel. A tunnel that changes, drops, reorders or holds back any byte, or cuts the
// connection before the closing handshake is through, makes some case come out differently; so
// the test compares the two runs case by case instead of grading the echo server.
//
// Case selection: every case of sections 1-7, 9 and 10 (framing, ping/pong, reserved bits,
// opcodes, fragmentation, UTF-8 handling, close handling, messages up to 16 MiB and fragmented
// into up to 65536 frames, auto-fragmentation), plus 12.1.1-12.1.5 and the first case of each of
// 13.1-13.7 (permessage-deflate, so the Sec-WebSocket-Extensions negotiation crosses the gateway
// both ways): 313 cases, ~20 s for one run alone on 2 cores (8 s of it pauses inside 6.4.x);
// the direct and the gateway run go at the same time, and the splice and buffer cases of the
// test together take ~32-40 s. The full suite is 517 cases and takes ~445 s directly, 430 s of
// it in the 216 compression cases 12.x/13.x, which add nothing for a byte tunnel beyond the
// sample kept here.
//
// What this cannot see: the half-close of the tunnel. A conforming server closes the WebSocket
// first and the TCP connection after, so a tunnel that closes both sides on the first FIN gives
// the same verdicts (tried with a deliberately broken Python proxy; a single flipped bit, by
// contrast, changed 5 cases). WebSocketTests checks half-close on its own.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Which way the gateway moves tunnel bytes (`tunnels.splice`).
enum AutobahnTunnelPath: String, CustomTestStringConvertible, Sendable {
    case splice, buffers
    var testDescription: String { rawValue }
}

@Suite("Autobahn WebSocket cases through the tunnel")
struct AutobahnTests {
    static let cases = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*",
                        "12.1.1", "12.1.2", "12.1.3", "12.1.4", "12.1.5",
                        "13.1.1", "13.2.1", "13.3.1", "13.4.1", "13.5.1", "13.6.1", "13.7.1"]
    static let expectedCount = 313

    /// Cases the echo server (websockets 17.4) fails on its own: it answers a close frame that
    /// interrupts a fragmented message with 1002, where Autobahn wants 1000.
    static let failingDirectly: Set<String> = ["7.1.5"]

    /// Fields that depend on how bytes were split into reads. They are left out of the
    /// comparison for cases that accept more than one verdict (the "fail fast" cases: whether
    /// the server still echoes a message before it fails the connection on a later bad frame
    /// differs between two direct runs too); everything about closing is still compared there.
    static let readSplitFields: Set<String> = ["behavior", "result", "received", "rx_frames", "traffic"]

    @Test("every Autobahn case ends the same directly and through the gateway", arguments: [AutobahnTunnelPath.splice, .buffers])
    func sameVerdictsThroughTheTunnel(path: AutobahnTunnelPath) throws {
        let scope = try Scope("autobahn-\(path.rawValue)")
        defer { scope.close() }
        let python = try scope.venvPython()
        let echoPort = try startEcho(scope, python: python)
        let port = try Ports.free()
        let gateway = try startGateway(scope, port: port, echo: echoPort, splice: path == .splice)

        // Both runs at once: each mostly waits (pauses inside the cases), so this halves the time.
        let target = "/ws/autobahn/"
        let direct = try scope.spawn("kosoku-direct", python, runArguments("ws://127.0.0.1:\(echoPort)\(target)", out: scope.path("direct.json")))
        let proxied = try scope.spawn("kosoku-gateway", python, runArguments("ws://127.0.0.1:\(port)\(target)", out: scope.path("gateway.json")))
        let directCases = try finish(direct, report: scope.path("direct.json"))
        let gatewayCases = try finish(proxied, report: scope.path("gateway.json"))

        // The baseline really ran: every selected case, judged as this echo server deserves.
        #expect(directCases.count == Self.expectedCount, "direct run: \(directCases.count) cases")
        let notPassed = Set(directCases.filter { $0.value["passed"] as? Bool != true }.keys)
        #expect(notPassed == Self.failingDirectly, "direct run: cases not passed \(notPassed.sorted(by: Self.caseOrder))")

        #expect(Set(gatewayCases.keys) == Set(directCases.keys),
                "case sets differ: only direct \(Set(directCases.keys).subtracting(gatewayCases.keys).sorted(by: Self.caseOrder)), only gateway \(Set(gatewayCases.keys).subtracting(directCases.keys).sorted(by: Self.caseOrder))")

        var differences: [String] = []
        for id in directCases.keys.sorted(by: Self.caseOrder) {
            guard let d = directCases[id], let g = gatewayCases[id] else { continue }
            if let why = Self.difference(direct: d, gateway: g) { differences.append("\(id): \(why)") }
        }
        #expect(differences.isEmpty, "\(differences.count) case(s) differ through the gateway (\(path.rawValue)):\n\(differences.prefix(25).joined(separator: "\n"))")

        // Every case's WebSocket went through the gateway as a tunnel: one 101 per case in the
        // access log (written when a tunnel ends, so give the log writer a moment).
        var upgraded = 0
        let deadline = Date().addingTimeInterval(10)
        repeat {
            upgraded = gateway.child.stdout.split(separator: "\n").filter { $0.contains("\"GET \(target)\" 101 ") }.count
            if upgraded >= Self.expectedCount { break }
            usleep(100_000)
        } while Date() < deadline
        #expect(upgraded == Self.expectedCount, "access log shows \(upgraded) upgrades; tail:\n\(gateway.child.stdout.suffix(1500))")
        #expect(gateway.child.isRunning, "gateway exited: \(gateway.child.stderr.suffix(2000))")
    }

    // MARK: - Comparison

    /// nil when the gateway run of a case matches the direct one, else what differs.
    static func difference(direct d: [String: Any], gateway g: [String: Any]) -> String? {
        let alternatives = (d["alternatives"] as? [String]) ?? []
        let relaxed = alternatives.count > 1
        var diffs: [String] = []
        for key in Set(d.keys).union(g.keys).sorted() {
            if relaxed && readSplitFields.contains(key) { continue }
            let a = canonical(d[key]), b = canonical(g[key])
            if a != b { diffs.append("\(key) \(a.prefix(300)) -> \(b.prefix(300))") }
        }
        if relaxed, let gb = g["behavior"] as? String, gb != d["behavior"] as? String, !alternatives.contains(gb) {
            diffs.append("behavior \(d["behavior"] ?? "-") -> \(gb), which the case does not accept (\(alternatives))")
        }
        return diffs.isEmpty ? nil : diffs.joined(separator: "; ")
    }

    static func canonical(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "null" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }

    /// "1.2.10" after "1.2.9".
    static func caseOrder(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: ".").map { Int($0) ?? 0 }, y = b.split(separator: ".").map { Int($0) ?? 0 }
        return x.lexicographicallyPrecedes(y)
    }

    // MARK: - Peers

    private func startEcho(_ scope: Scope, python: String) throws -> Int {
        try scope.startPeer("autobahn_echo.py", python: python, ["0"], name: "autobahn-echo", timeout: 20) {
            portList($0, count: 1)?.first
        }.ready
    }

    /// A keyed workspace route (the production shape: user from /ws/<id>/) to the echo server.
    private func startGateway(_ scope: Scope, port: Int, echo: Int, splice: Bool) throws -> Gateway {
        try scope.startGateway(StickyConfig(port: port, database: scope.path("var/registry.db"),
                                            nodes: [StickyNode("echo", "127.0.0.1:\(echo)")], routes: [.workspace],
                                            tunnels: "{splice: \(splice)}"))
    }

    private func runArguments(_ url: String, out: String) -> [String] {
        [Paths.peer("autobahn_run.py"), url, "--out", out]
            + Self.cases.flatMap { ["--case", $0] }
    }

    /// Waits for one kosoku run and returns its cases by id.
    private func finish(_ run: Child, report: String) throws -> [String: [String: Any]] {
        guard let status = run.wait(timeout: 240) else {
            run.stop(grace: 2)
            throw HarnessError("\(run.name) still running after 240 s; stdout: \(run.stdout.suffix(1000)) stderr: \(run.stderr.suffix(2000))")
        }
        guard status == 0, let data = FileManager.default.contents(atPath: report),
              let json = data.json(), let cases = json["cases"] as? [[String: Any]] else {
            throw HarnessError("\(run.name) failed (status \(status)): \(run.stderr.suffix(3000))")
        }
        var byId: [String: [String: Any]] = [:]
        for c in cases { if let id = c["id"] as? String { byId[id] = c } }
        return byId
    }
}

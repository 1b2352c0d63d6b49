// Slow-client attacks with slowhttptest (Debian package `slowhttptest`,
// installed by `make test`): slowloris (-H) and slow body (-B). While a few
// hundred slow connections are held open, normal requests must keep working,
// and the gateway's timeouts must be the ones ending the slow connections.

import Foundation
import Testing

@Suite("Slow clients (slowhttptest)", .serialized)
struct SlowClientTests {
    /// Runs slowhttptest with `mode` against `path` while curl probes the
    /// gateway.
    private func attack(mode: String, path: String, timeouts: [String: String], interval: Int,
                        label: String) throws {
        guard let tool = Paths.which("slowhttptest") else {
            Issue.record("slowhttptest is not installed: `apt-get install slowhttptest` (make test does this)")
            return
        }
        let scope = try Scope(label)
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, timeouts: timeouts)

        let statsPrefix = scope.path("slow")
        let attacker = try scope.spawn("slowhttptest", tool, [
            mode, "-c", "300", "-r", "150", "-i", String(interval), "-l", "12", "-p", "3",
            "-s", "8192", "-g", "-o", statsPrefix, "-u", gw.url(path),
        ])
        usleep(1_500_000)  // let the slow connections pile up first

        var statuses: [Int] = []
        var slowest = 0.0
        let deadline = Date().addingTimeInterval(25)
        while attacker.isRunning && Date() < deadline {
            let r = try scope.get(gw.url("/echo?probe=\(statuses.count)"), maxTime: 5)
            statuses.append(r.status)
            slowest = max(slowest, r.timeTotal)
            usleep(300_000)
        }
        let finished = attacker.wait(timeout: 10) != nil
        #expect(finished, "slowhttptest did not end within its time limit")
        attacker.stop()

        #expect(statuses.count >= 8, "too few probes during the attack: \(statuses.count)")
        let failed = statuses.filter { $0 != 200 }
        #expect(failed.isEmpty, "\(failed.count) of \(statuses.count) probes failed during \(label): \(statuses)")
        #expect(slowest < 3, "a probe took \(slowest)s during \(label)")

        for i in 0..<3 {
            let r = try scope.get(gw.url("/echo?after=\(i)"), maxTime: 5)
            #expect(r.status == 200, "after \(label): \(r.summary)")
        }

        // slowhttptest -g writes one CSV row per second:
        // Seconds,Closed,Pending,Connected,Service Available
        let csv = (try? String(contentsOfFile: statsPrefix + ".csv", encoding: .utf8)) ?? ""
        let rows = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").compactMap { Int($0) } }
            .filter { $0.count >= 4 }
        let peakConnected = rows.map { $0[3] }.max() ?? 0
        let closed = rows.last?[1] ?? 0
        #expect(!rows.isEmpty, "no slowhttptest statistics: \(Self.stripANSI(attacker.stdout + attacker.stderr).suffix(800))")
        #expect(peakConnected >= 100, "the attack never held many connections open (peak \(peakConnected)): rows \(rows)")
        #expect(closed > 0, "the gateway's timeouts should have closed slow connections; per-second rows \(rows)")
        #expect(gw.child.isRunning, "gateway died during \(label): \(gw.child.stderr.suffix(800))")
    }

    @Test("slowloris (-H): partial heads are cut off by client_header; service stays up")
    func slowloris() throws {
        try attack(mode: "-H", path: "/echo", timeouts: ["client_header": "3s"], interval: 2, label: "slowloris")
    }

    @Test("slow body (-B): trickled bodies are cut off by client_body; service stays up")
    func slowBody() throws {
        try attack(mode: "-B", path: "/upload", timeouts: ["client_body": "4s"], interval: 6, label: "slow-body")
    }

    static func stripANSI(_ s: String) -> String {
        s.replacingOccurrences(of: "\u{1B}\\[[0-9;]*[A-Za-z]", with: "", options: .regularExpression)
    }
}

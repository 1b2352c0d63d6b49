// The HTTP/2 tests' side of the harness: peers/h2client.py (raw frames with the venv's `h2`,
// hyperframe and hpack) run to its JSON report, its request plans, and the access-log poller.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Scope {
    /// Runs one h2client.py scenario to its end and returns its JSON report (one with an `error`
    /// is returned as is, for the test to show; no report at all is a failure).
    func h2client(_ scenario: String, port: Int, _ arguments: [String], timeout: Double = 60) throws -> JSONValue {
        let r = try run(try venvPython(), [Paths.peer("h2client.py"), scenario, "--port", "\(port)",
                                           "--parent", "\(getpid())"] + arguments, timeout: timeout)
        let report = JSONValue(data: r.stdout)
        guard r.status == 0, !r.timedOut, report["scenario"].string == scenario else {
            throw HarnessError("h2client.py \(scenario) \(arguments): status \(r.status)\(r.timedOut ? " (timed out)" : ""), "
                               + "stdout \(r.stdoutText.prefix(1500).debugDescription), stderr \(r.stderr.suffix(2000))")
        }
        return report
    }

    /// A JSON plan for h2client.py's `requests` and `raw-requests` scenarios.
    static func h2Plan(_ items: [[String: Any]]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: items)) ?? Data("[]".utf8), as: UTF8.self)
    }
}

extension Gateway {
    /// Polls the gateway's stdout (the access log) for a line containing `text`.
    func accessLine(containing text: String, timeout: Double = 5) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let l = child.stdout.split(separator: "\n").first(where: { $0.contains(text) }) { return String(l) }
            if Date() > deadline { return nil }
            usleep(50_000)
        }
    }
}

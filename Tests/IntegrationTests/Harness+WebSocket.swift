// WebSocket peers: wspeer.py (WebSocket servers on the `websockets` library plus raw
// servers that do the RFC 6455 handshake by hand) and wsclient.py (one scenario per
// run, a JSON report on stdout). Both run on the git-ignored venv that `make venv`
// creates, since the system python3 has no `websockets`.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A running wspeer.py: `ws` ports serve the websockets library, `raw` ports the
/// hand-written handshake (see the script's docstring for the endpoints).
struct WSPeer {
    let child: Child
    let wsPorts: [Int]
    let rawPorts: [Int]

    var wsAddresses: [String] { wsPorts.map { "127.0.0.1:\($0)" } }
    var rawAddresses: [String] { rawPorts.map { "127.0.0.1:\($0)" } }
}

/// A read-only view of decoded JSON: missing keys and wrong types read as nil, so
/// a failed expectation prints the report instead of a decoding error.
struct JSONValue: CustomStringConvertible {
    let value: Any?

    init(_ value: Any?) { self.value = value }

    init(data: Data) { self.init(try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) }

    subscript(key: String) -> JSONValue { JSONValue((value as? [String: Any])?[key]) }

    subscript(index: Int) -> JSONValue {
        guard let array = value as? [Any], array.indices.contains(index) else { return JSONValue(nil) }
        return JSONValue(array[index])
    }

    var string: String? { value as? String }
    var int: Int? { value as? Int }
    var bool: Bool? { value as? Bool }
    var array: [JSONValue] { (value as? [Any])?.map(JSONValue.init) ?? [] }
    var isNull: Bool { value == nil || value is NSNull }

    /// `[[name, value], ...]` pairs → every value of `name` (case-insensitive).
    func headerValues(_ name: String) -> [String] {
        array.compactMap { pair in
            pair[0].string?.lowercased() == name.lowercased() ? pair[1].string : nil
        }
    }

    func header(_ name: String) -> String? {
        let values = headerValues(name)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    var description: String {
        guard let value, !(value is NSNull) else { return "null" }
        if JSONSerialization.isValidJSONObject(value),
           let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
            return String(decoding: data.prefix(3000), as: UTF8.self)
        }
        return "\(value)"
    }
}

extension Scope {
    /// Starts one wspeer.py with `ws` WebSocket ports and `raw` raw ports.
    func startWSPeer(ws: Int = 1, raw: Int = 1, name: String = "wspeer") throws -> WSPeer {
        let peer = try startPeer("wspeer.py", python: try venvPython(), ["--ws", "\(ws)", "--raw", "\(raw)"], name: name) { data in
            let ports = JSONValue(data: data)
            let wsPorts = ports["ws"].array.compactMap(\.int), rawPorts = ports["raw"].array.compactMap(\.int)
            return wsPorts.count == ws && rawPorts.count == raw ? (wsPorts, rawPorts) : nil
        }
        return WSPeer(child: peer.child, wsPorts: peer.ready.0, rawPorts: peer.ready.1)
    }

    /// Runs one wsclient.py scenario and returns its JSON report. A report with an
    /// `error` is returned as is (the test shows it); no report at all is a failure.
    func wsClient(_ scenario: String, _ arguments: [String], timeout: Double = 60) throws -> JSONValue {
        let r = try run(try venvPython(), [Paths.peer("wsclient.py"), scenario] + arguments, timeout: timeout)
        let report = JSONValue(data: r.stdout)
        guard r.status == 0, !r.timedOut, report["scenario"].string == scenario else {
            throw HarnessError("wsclient.py \(scenario) \(arguments): status \(r.status)\(r.timedOut ? " (timed out)" : ""), "
                               + "stdout \(r.stdoutText.prefix(1000).debugDescription), stderr \(r.stderr.suffix(2000))")
        }
        return report
    }
}

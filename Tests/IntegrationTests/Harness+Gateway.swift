// Starting the peers of a test: the Python upstream and the gateway itself,
// each configured with ports picked for this test alone.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Python upstream process and the ports it serves (one "upstream" each).
struct Upstreams {
    let child: Child
    let ports: [Int]

    var addresses: [String] { ports.map { "127.0.0.1:\($0)" } }
}

/// A route as written in the gateway's YAML.
struct RouteSpec {
    var name: String
    var host: String? = nil
    var pathPrefix: String? = nil
    var upstreams: [String]
}

/// The gateway's configuration, rendered to the documented YAML.
struct GatewayConfig {
    var port: Int
    var workers = 2
    var routes: [RouteSpec]
    /// Overrides of single timeouts, e.g. ["client_header": "1s"].
    var timeouts: [String: String] = [:]
    var access = "stdout"
    var drain = "10s"

    func yaml() -> String {
        var t: [(String, String)] = [
            ("client_header", "10s"), ("client_body", "60s"), ("client_idle", "75s"),
            ("upstream_connect", "5s"), ("upstream_first_byte", "60s"), ("upstream_read", "60s"),
            ("send", "60s"), ("drain", drain),
        ]
        t = t.map { ($0.0, timeouts[$0.0] ?? $0.1) }
        var y = """
        workers: \(workers)
        listeners:
          - name: public
            address: 127.0.0.1:\(port)
        limits: {max_request_line: 8192, max_header_bytes: 32768, max_headers: 100}
        timeouts: {\(t.map { "\($0.0): \($0.1)" }.joined(separator: ", "))}
        upstream_pool: {idle_per_address: 64, idle_timeout: 60s}
        logging: {access: \(access), error: stderr}
        admin: {address: "off"}
        routes:

        """
        for r in routes {
            y += "  - name: \(r.name)\n"
            if let h = r.host { y += "    host: \(h)\n" }
            if let p = r.pathPrefix { y += "    path_prefix: \(p)\n" }
            y += "    upstreams: [\(r.upstreams.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
        }
        return y
    }
}

/// A running gateway.
struct Gateway {
    let child: Child
    let port: Int
    let configPath: String

    var base: String { "http://127.0.0.1:\(port)" }
    func url(_ path: String) -> String { base + path }
}

extension Paths {
    static func peer(_ script: String) -> String { peers.appendingPathComponent(script).path }

    /// `<root>/.venv/bin/python3`, with the peers' packages (websockets, kosoku) installed by `make venv`.
    static var venvPython: String { packageRoot.appendingPathComponent(".venv/bin/python3").path }
}

/// Ports separated by spaces, as upstream.py, hmrpage.py and autobahn_echo.py write them; nil
/// until there are `count`.
func portList(_ data: Data, count: Int) -> [Int]? {
    let ports = String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    return ports.count == count ? ports : nil
}

extension Scope {
    /// The venv's python3, or a clear failure telling how to create it.
    func venvPython() throws -> String {
        let python = Paths.venvPython
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw HarnessError("\(python) not found: run `make venv` (the Python peers need the websockets and kosoku packages)")
        }
        return python
    }

    /// Starts the peer `peers/<script>` with `--ready-file` and `--parent` (see peers/peerproc.py)
    /// and waits until what it wrote to the ready file (atomically, once it listens) satisfies
    /// `parse`.
    func startPeer<T>(_ script: String, python: String, _ arguments: [String] = [], name: String,
                      timeout: Double = 15, parse: (Data) -> T?) throws -> (child: Child, ready: T) {
        let ready = path("\(name)-\(UUID().uuidString.prefix(6)).ready")
        let child = try spawn(name, python, [Paths.peer(script), "--ready-file", ready, "--parent", "\(getpid())"] + arguments)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: ready), let value = parse(data) { return (child, value) }
            if !child.isRunning {
                throw HarnessError("\(script) exited early: \(child.stdout.prefix(2000)) \(child.stderr.suffix(2000))")
            }
            usleep(20_000)
        }
        throw HarnessError("\(script) did not become ready; stderr: \(child.stderr.suffix(2000))")
    }

    /// Starts one upstream.py serving `count` independent ports.
    func startUpstreams(_ count: Int = 1) throws -> Upstreams {
        guard let python = Paths.which("python3") else {
            throw HarnessError("python3 not found on PATH; the upstream peer needs it")
        }
        let peer = try startPeer("upstream.py", python: python, Array(repeating: "0", count: count), name: "upstream") {
            portList($0, count: count)
        }
        return Upstreams(child: peer.child, ports: peer.ready)
    }

    /// Path of the gateway binary, or a clear failure if it was not built.
    func gatewayBinary() throws -> String {
        let bin = Paths.gateway
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            throw HarnessError("gateway binary not found at \(bin): run `swift build` first (or set SWITCHYARD_BIN)")
        }
        return bin
    }

    /// Writes `yaml` as `<name>.yaml` and starts `switchyard serve` on it, waiting until the
    /// public listener on `port` accepts.
    func startGateway(yaml: String, port: Int, name: String = "gateway") throws -> Gateway {
        let configPath = try write("\(name).yaml", yaml)
        let child = try spawn(name, try gatewayBinary(), ["serve", "--config", configPath])
        try Ports.waitUntilOpen(port, child: child)
        return Gateway(child: child, port: port, configPath: configPath)
    }

    func startGateway(_ config: GatewayConfig, name: String = "gateway") throws -> Gateway {
        try startGateway(yaml: config.yaml(), port: config.port, name: name)
    }

    /// The common case: one gateway, one catch-all route to `upstreams`.
    func startGateway(to upstreams: [String], workers: Int = 2,
                      timeouts: [String: String] = [:]) throws -> Gateway {
        try startGateway(GatewayConfig(port: try Ports.free(), workers: workers,
                                       routes: [RouteSpec(name: "all", pathPrefix: "/", upstreams: upstreams)],
                                       timeouts: timeouts))
    }
}

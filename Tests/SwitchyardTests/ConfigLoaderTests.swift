import Testing
@testable import switchyard
import ProxyEngine

@Suite("Config loading")
struct ConfigLoaderTests {
    let minimal = """
    listeners:
      - address: 127.0.0.1:8080
    routes:
      - upstreams: ["127.0.0.1:3000"]
    """

    @Test func minimalConfigGetsDefaults() throws {
        let c = try ConfigLoader.parse(minimal)
        #expect(c.workers >= 1)
        #expect(c.listeners.count == 1)
        #expect(c.listeners[0].address.text == "127.0.0.1:8080")
        #expect(c.limits.maxRequestLine == 8192)
        #expect(c.limits.maxHeaderBytes == 32768)
        #expect(c.limits.maxHeaders == 100)
        #expect(c.timeouts.clientHeader == 10_000)
        #expect(c.accessLog == .stdout)
        #expect(c.routes.routes.count == 1)
        #expect(c.routeUpstreams == [[0]])
    }

    @Test func theDevDefaultIsValid() throws {
        let path = #filePath.replacingOccurrences(of: "Tests/SwitchyardTests/ConfigLoaderTests.swift", with: "config/switchyard.yaml")
        let c = try ConfigLoader.load(path: path)
        #expect(c.listeners[0].address.text == "127.0.0.1:8080")
    }

    @Test func everyKeyIsRead() throws {
        let c = try ConfigLoader.parse("""
        workers: 3
        listeners:
          - name: pub
            address: "[::1]:9000"
            backlog: 128
        limits: {max_request_line: 4096, max_header_bytes: 16384, max_headers: 50}
        timeouts: {client_header: 2s, client_body: 3s, client_idle: 1m, upstream_connect: 250ms,
                   upstream_first_byte: 4s, upstream_read: 5s, send: 6s, drain: 0}
        upstream_pool: {idle_per_address: 8, idle_timeout: 1h}
        logging: {access: off, error: /tmp/x.log}
        tunnels: {splice: false, keepalive_idle: 2m, keepalive_interval: 5s, keepalive_count: 3}
        routes:
          - name: api
            host: "*.Example.com"
            path_prefix: /api
            upstreams: ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"]
            tunnel_idle_timeout: 10m
          - upstreams: ["localhost:3", "127.0.0.1:3"]
        """)
        #expect(c.workers == 3)
        #expect(c.listeners[0].name == "pub" && c.listeners[0].backlog == 128)
        #expect(c.limits.maxRequestLine == 4096 && c.limits.maxHeaderBytes == 16384 && c.limits.maxHeaders == 50)
        #expect(c.timeouts.clientHeader == 2000 && c.timeouts.clientBody == 3000 && c.timeouts.clientIdle == 60_000)
        #expect(c.timeouts.upstreamConnect == 250 && c.timeouts.upstreamFirstByte == 4000)
        #expect(c.timeouts.upstreamRead == 5000 && c.timeouts.send == 6000 && c.timeouts.drain == 0)
        #expect(c.upstreamPool.idlePerAddress == 8 && c.upstreamPool.idleTimeout == 3_600_000)
        #expect(c.accessLog == .off && c.errorLog == .file("/tmp/x.log"))
        // Duplicate addresses share one pool entry.
        #expect(c.upstreamAddresses.map(\.text) == ["127.0.0.1:1", "127.0.0.1:2", "localhost:3"])
        #expect(c.routeUpstreams == [[0, 1, 0], [2, 2]])
        #expect(c.routes.routes[0].host == .suffix(Array(".example.com".utf8)))
        #expect(!c.tunnels.splice && c.tunnels.keepaliveIdle == 120 && c.tunnels.keepaliveInterval == 5)
        #expect(c.tunnels.keepaliveCount == 3)
        #expect(c.routeTunnelIdle == [600_000, 0])
    }

    @Test func tunnelsDefaultToSpliceKeepaliveAndNoIdleLimit() throws {
        let c = try ConfigLoader.parse(minimal + "\n    tunnel_idle_timeout: off")
        #expect(c.tunnels.splice && c.tunnels.keepaliveIdle == 60 && c.tunnels.keepaliveInterval == 10)
        #expect(c.routeTunnelIdle == [0])
    }

    @Test(arguments: [
        ("listeners: []", "listeners"),
        ("routes: []", "listeners"),
        ("listeners: [{address: 127.0.0.1:1}]\nbogus: 1", "bogus"),
        ("listeners: [{address: nonsense}]", "listeners[0].address"),
        ("listeners: [{address: 127.0.0.1:1, port: 2}]", "listeners[0].port"),
        ("listeners: [{address: 127.0.0.1:1}, {address: 127.0.0.1:1}]", "listeners[1].address"),
        ("listeners: [{address: 127.0.0.1:1}]\nworkers: 0", "workers"),
        ("listeners: [{address: 127.0.0.1:1}]\nworkers: many", "workers"),
        ("listeners: [{address: 127.0.0.1:1}]\ntimeouts: {client_header: 10 s}", "timeouts.client_header"),
        ("listeners: [{address: 127.0.0.1:1}]\ntimeouts: {client_header: 0}", "timeouts.client_header"),
        ("listeners: [{address: 127.0.0.1:1}]\ntimeouts: {client_heder: 1s}", "timeouts.client_heder"),
        ("listeners: [{address: 127.0.0.1:1}]\nlimits: {max_headers: 5}", "limits.max_headers"),
        ("listeners: [{address: 127.0.0.1:1}]\nlimits: {max_request_line: 65536, max_header_bytes: 40000}", "limits"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{upstreams: []}]", "routes[0].upstreams"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{upstreams: [nonsense]}]", "routes[0].upstreams[0]"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{upstreams: ['127.0.0.1:99999']}]", "routes[0].upstreams[0]"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{path_prefix: api, upstreams: ['127.0.0.1:1']}]", "routes[0].path_prefix"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{host: 'a*b', upstreams: ['127.0.0.1:1']}]", "routes[0].host"),
        ("listeners: [{address: 127.0.0.1:1}]\nlogging: {access: ''}", "logging.access"),
        ("listeners: [{address: 127.0.0.1:1}]\ntunnels: {keepalive_idle: 500ms}", "tunnels.keepalive_idle"),
        ("listeners: [{address: 127.0.0.1:1}]\ntunnels: {keepalive_count: 0}", "tunnels.keepalive_count"),
        ("listeners: [{address: 127.0.0.1:1}]\ntunnels: {splice: maybe}", "tunnels.splice"),
        ("listeners: [{address: 127.0.0.1:1}]\ntunnels: {pipes: 4}", "tunnels.pipes"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{upstreams: ['127.0.0.1:1'], tunnel_idle_timeout: forever}]",
         "routes[0].tunnel_idle_timeout"),
        ("listeners: [{address: 127.0.0.1:1, edge_tunnel: true}]", "listeners[0].edge_tunnel"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{edges: true, upstreams: ['127.0.0.1:1']}]", "routes[0].edges"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: {id: a}", "edges"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{hostnames: [a.test]}]", "edges[0].id"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: []}]", "edges[0].hostnames"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: [a.test], mode: sideways}]", "edges[0].mode"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: [a.test], mode: direct}]", "edges[0].public_address"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: [a.test], colour: red}]", "edges[0].colour"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: [a.test], token_sha256: abc}]", "edges[0]"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: ['*.*.test']}]", "edges[0]"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: [a.test]}, {id: b, hostnames: [a.test]}]", "edges[1].hostnames[0]"),
        ("listeners: [{address: 127.0.0.1:1}]\nedges: [{id: a, hostnames: [a.test], token_file: /nonexistent/token}]", "edges[0].token_file"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{key: {query: userId}, pool: w, api_secret_file: /etc/passwd}]", "routes[0].api_secret_file"),
        ("listeners: [{address: 127.0.0.1:1}]\nroutes: [{key: {query: userId}, pool: w, target: api, api_secret_file: /nonexistent/s}]", "routes[0].api_secret_file"),
        ("- just a list", ""),
        ("listeners: [", ""),
    ])
    func badConfigNamesTheKey(yaml: String, key: String) {
        do {
            _ = try ConfigLoader.parse(yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(!error.reason.isEmpty)
        }
    }

    @Test func heartbeatWriteIntervalDefaultsToAQuarterOfTheThreshold() throws {
        let c = try ConfigLoader.parse(minimal + """

        pools:
          a: {heartbeat_threshold: 20s}
          b: {heartbeat_threshold: 20s, heartbeat_write_interval: 2s}
          c: {heartbeat_write_interval: 0}
        """)
        #expect(c.sticky.pools["a"]?.heartbeatWriteIntervalMs == 5_000)
        #expect(c.sticky.pools["b"]?.heartbeatWriteIntervalMs == 2_000)
        #expect(c.sticky.pools["c"]?.heartbeatWriteIntervalMs == 0 && c.sticky.pools["c"]?.heartbeatThresholdMs == 60_000)
        #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(minimal + "\npools: {a: {heartbeat_threshold: 20s, heartbeat_write_interval: 11s}}")
        }
    }

    @Test(arguments: [("250ms", UInt64(250)), ("10s", 10_000), ("2m", 120_000), ("1h", 3_600_000), ("1500", 1500)])
    func durations(text: String, ms: UInt64) {
        #expect(parseDuration(text) == ms)
    }

    @Test(arguments: ["", "s", "1.5s", "-1s", "1d", "99999999999999999999s", " 1s"])
    func badDurations(text: String) {
        #expect(parseDuration(text) == nil)
    }

    @Test func summaryListsRoutes() throws {
        let c = try ConfigLoader.parse(minimal)
        let s = ConfigSummary.render(c, path: "x.yaml")
        #expect(s.contains("x.yaml: OK"))
        #expect(s.contains("route route0: host * path / -> 127.0.0.1:3000"))
    }
}

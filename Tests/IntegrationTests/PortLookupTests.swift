// placement_port targets: the gateway asks a (Python stand-in) node API for the user's container
// port, caches it in the registry, forgets it when the port refuses connections, and answers
// 502/504 when the API says 404 or never answers.

import Foundation
import Testing

@Suite("Port lookup (placement_port)", .serialized)
struct PortLookupTests {
    private func startNodeAPI(_ scope: Scope, containerPort: Int) throws -> (child: Child, port: Int) {
        let python = try #require(Paths.which("python3"))
        let port = try Ports.free()
        let child = try scope.spawn("nodeapi", python, [Paths.peer("nodeapi.py"), String(port), "--container-port", String(containerPort),
                                                        "--token", "s3cret", "--parent", "\(getpid())"])
        try Ports.waitUntilOpen(port, child: child)
        return (child, port)
    }

    /// One node whose container port the gateway asks its API for (`target: placement_port`).
    private func start(_ scope: Scope, apiPort: Int, port: Int) throws -> Gateway {
        var route = KeyedRoute.workspace
        route.setCookie = nil
        route.target = "placement_port"
        return try scope.startGateway(StickyConfig(
            port: port, database: scope.path("var/registry.db"),
            nodes: [StickyNode("ws-1", "127.0.0.1:1", "api_base_url: \"http://127.0.0.1:\(apiPort)\"")], routes: [route],
            pools: [("workspace", "{port_lookup: {token: s3cret}}")], workers: 1, timeouts: ["upstream_connect": "1s"]))
    }

    private func lookups(_ scope: Scope, _ apiPort: Int) throws -> Int {
        Int(try scope.get("http://127.0.0.1:\(apiPort)/_count").bodyText) ?? -1
    }

    @Test("the port is asked once, cached, and forgotten when the container refuses connections")
    func lookupCacheForget() throws {
        let scope = try Scope("portlookup")
        defer { scope.close() }
        let containers = try scope.startUpstreams(2)
        let api = try startNodeAPI(scope, containerPort: containers.ports[0])
        let port = try Ports.free()
        let gw = try start(scope, apiPort: api.port, port: port)

        for i in 0..<3 {
            let r = try scope.get(gw.url("/ws/alice/echo"))
            #expect(r.header("X-Upstream-Port") == String(containers.ports[0]), "request \(i): \(r.summary)")
            #expect(r.header("X-WS-Upstream") == "ws-1")
        }
        #expect(try lookups(scope, api.port) == 1, "the port should be asked once and then cached")

        // The container goes away and comes back on another port.
        _ = try scope.get("http://127.0.0.1:\(api.port)/_set_port?port=\(containers.ports[1])")
        let deadPort = try Ports.free()
        _ = try scope.get("http://127.0.0.1:\(api.port)/_set_port?port=\(deadPort)")
        let bob1 = try scope.get(gw.url("/ws/bob/echo"))  // bob is looked up and gets the dead port
        #expect(bob1.status == 502, "\(bob1.summary)")
        _ = try scope.get("http://127.0.0.1:\(api.port)/_set_port?port=\(containers.ports[1])")
        let bob2 = try scope.get(gw.url("/ws/bob/echo"))  // forgotten: asked again, new port
        #expect(bob2.header("X-Upstream-Port") == String(containers.ports[1]), "\(bob2.summary)")
        #expect(try lookups(scope, api.port) == 3)
    }

    @Test("a node API that answers 404 gives 502; one that hangs gives 504 within the connect timeout")
    func lookupFailures() throws {
        let scope = try Scope("portlookup-fail")
        defer { scope.close() }
        let containers = try scope.startUpstreams(1)
        let api = try startNodeAPI(scope, containerPort: containers.ports[0])
        let port = try Ports.free()
        let gw = try start(scope, apiPort: api.port, port: port)

        let missing = try scope.get(gw.url("/ws/missing1/"))
        #expect(missing.status == 502, "\(missing.summary)")
        #expect(missing.json?["error"] as? String == "port lookup failed", "\(missing.bodyText)")

        let hang = try scope.get(gw.url("/ws/hang1/"), maxTime: 10)
        #expect(hang.status == 504, "\(hang.summary)")
        #expect(hang.json?["error"] as? String == "port lookup timeout", "\(hang.bodyText)")
        #expect(hang.timeTotal < 4, "took \(hang.timeTotal)s")
        // The gateway still serves others.
        let ok = try scope.get(gw.url("/ws/carol/echo"))
        #expect(ok.header("X-Upstream-Port") == String(containers.ports[0]), "\(ok.summary)")
    }
}

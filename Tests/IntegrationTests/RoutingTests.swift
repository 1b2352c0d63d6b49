// Route selection by Host and path prefix, and the 404 answer when nothing matches.

import Foundation
import Testing

@Suite("Routing")
struct RoutingTests {
    @Test("routes are chosen by host and path prefix; no match is a JSON 404")
    func hostAndPrefix() throws {
        let scope = try Scope("route")
        defer { scope.close() }
        let up = try scope.startUpstreams(3)
        let (a, b, c) = (up.ports[0], up.ports[1], up.ports[2])
        let gw = try scope.startGateway(GatewayConfig(port: try Ports.free(), routes: [
            RouteSpec(name: "api-host", host: "api.example.com", upstreams: ["127.0.0.1:\(a)"]),
            RouteSpec(name: "static", pathPrefix: "/static", upstreams: ["127.0.0.1:\(b)"]),
            RouteSpec(name: "example-api", host: "example.com", pathPrefix: "/api", upstreams: ["127.0.0.1:\(c)"]),
        ]))

        // (Host header, path, expected upstream port or nil for 404)
        let cases: [(String, String, Int?)] = [
            ("api.example.com", "/echo", a),
            ("api.example.com:8080", "/echo/x", a),     // port is stripped before matching
            ("other.test", "/static/echo", b),
            ("example.com", "/api/echo", c),
            ("example.com", "/api", c),
            ("example.com", "/other", nil),
            ("other.test", "/api/echo", nil),           // /api needs host example.com
            ("other.test", "/", nil),
            ("api.example.com.evil", "/echo", nil),     // exact host match only
        ]
        for (host, path, expected) in cases {
            let r = try scope.get(gw.url(path), headers: ["Host: \(host)"])
            if let expected {
                // The upstream itself may answer 404 for an unknown path; X-Upstream-Port says who answered.
                #expect(r.status != 0, "Host \(host) \(path): \(r.summary)")
                #expect(r.header("X-Upstream-Port") == "\(expected)",
                        "Host \(host) \(path) should reach upstream \(expected), got \(r.header("X-Upstream-Port") ?? "none")")
            } else {
                #expect(r.status == 404, "Host \(host) \(path) should match no route: \(r.summary)")
                #expect(r.header("X-Upstream-Port") == nil, "a 404 must come from the gateway, not an upstream")
                let json = r.json
                #expect(json?["error"] is String, "404 body should be JSON with \"error\": \(r.bodyText)")
                #expect((json?["request_id"] as? String)?.isEmpty == false, "404 body should carry request_id")
                #expect(r.header("Content-Type")?.contains("json") == true)
            }
        }
    }

    @Test("the request path reaches the upstream unchanged under a prefix route")
    func prefixKeepsPath() throws {
        let scope = try Scope("route-path")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(GatewayConfig(port: try Ports.free(), routes: [
            RouteSpec(name: "api", pathPrefix: "/echo", upstreams: up.addresses),
        ]))
        let r = try scope.get(gw.url("/echo/a/b%20c?x=1"))
        #expect(r.status == 200, "\(r.summary)")
        let echo = try #require(Echo.decode(r.body))
        #expect(echo.target == "/echo/a/b%20c?x=1")

        let miss = try scope.get(gw.url("/nothing-here"))
        #expect(miss.status == 404, "\(miss.summary)")
        #expect(miss.json?["error"] is String)
        #expect((miss.json?["request_id"] as? String) == miss.header("X-Request-Id"))
    }
}

import HTTP1Codec
import Testing
@testable import RouteResolver

/// `Router.decide`: one request head in, one `RouteDecision` out, for every key source and every
/// outcome. Socket-free: heads are parsed from strings by the engine's own parser.
@Suite("Router: one RouteDecision per request")
struct RouterTests {
    static let routes = RouteTable(routes: [
        Route(name: "api", host: .init("api.example.com"), pathPrefix: "/", target: .upstreams(["127.0.0.1:9001"])),
        Route(name: "ws", host: nil, pathPrefix: "/ws/", target: .keyed(KeyedTarget(source: .pathSegment(prefix: Array("/ws/".utf8)),
                                                                                   pool: "workspace", setCookie: "ws_uid"))),
        Route(name: "q", host: nil, pathPrefix: "/q", target: .keyed(KeyedTarget(source: .query(name: Array("userId".utf8)), pool: "workspace"))),
        Route(name: "h", host: nil, pathPrefix: "/h", target: .keyed(KeyedTarget(source: .header(name: Array("x-ws-user".utf8)), pool: "workspace"))),
        Route(name: "port", host: nil, pathPrefix: "/p/", target: .keyed(KeyedTarget(source: .pathSegment(prefix: Array("/p/".utf8)),
                                                                                    pool: "workspace", kind: .placementPort))),
        Route(name: "assets", host: nil, pathPrefix: "/", target: .keyed(KeyedTarget(source: .cookie(name: Array("ws_uid".utf8)), pool: "workspace"))),
    ])

    /// Decides `request` (a full head, CRLFs included) and hands the decision and the head's bytes
    /// to `check`, while the bytes the offsets point into are alive.
    func decide(_ router: Router, _ request: String, listener: Int = 0, mode: Router.Mode = .route,
                _ check: (RouteDecision, UnsafePointer<UInt8>) -> Void) throws {
        let bytes = Array(request.utf8)
        let headers = HeaderTable(capacity: 16)
        try bytes.withUnsafeBufferPointer { p in
            let head = try RequestHead.parse(p.baseAddress!, start: 0, end: p.count, headers: headers)
            check(router.decide(head, headers: headers, base: p.baseAddress!, listener: listener, now: testNow, mode: mode), p.baseAddress!)
        }
    }

    func key(_ f: Forward, _ base: UnsafePointer<UInt8>) -> String {
        String(decoding: UnsafeBufferPointer(start: base + f.keyStart, count: f.keyCount), as: UTF8.self)
    }

    func router(_ nodes: [NodeRecord] = [testNode("n1"), testNode("n2")], settings: PoolSettings = PoolSettings(),
                redirect: [UInt16] = [0, 8443]) throws -> Router {
        Router(table: Self.routes, registry: try makeRegistry(nodes, settings: settings), redirectPorts: redirect)
    }

    @Test("A static route forwards to its upstreams; no key, nothing placed")
    func staticRoute() throws {
        try decide(try router(), "GET /x HTTP/1.1\r\nHost: API.example.com:8080\r\n\r\n") { d, _ in
            guard case .forward(let f) = d, case .routeUpstreams = f.destination else { Issue.record("\(d)"); return }
            #expect(f.route == 0 && f.keyCount == 0 && !f.placed && f.node == nil)
        }
    }

    @Test("The HTTPS-only listener redirects every request before routing")
    func redirect() throws {
        try decide(try router(), "GET /ws/alice/ HTTP/1.1\r\nHost: a\r\n\r\n", listener: 1) { d, _ in
            guard case .redirect(let r) = d else { Issue.record("\(d)"); return }
            #expect(r == Redirect(status: 308, port: 8443))
        }
    }

    @Test("No matching route: 404, route -1")
    func noRoute() throws {
        let table = RouteTable(routes: [Self.routes.routes[0]])
        try decide(Router(table: table, registry: nil), "GET / HTTP/1.1\r\nHost: other\r\n\r\n") { d, _ in
            #expect(d.rejection == Rejection(status: 404, code: "no route", route: -1))
        }
    }

    @Test("Path key: placed on first sight, then found; the key is offsets into the head")
    func pathKey() throws {
        let r = try router()
        var first: String?
        try decide(r, "GET /ws/alice/src/main.ts?v=1 HTTP/1.1\r\nHost: a\r\n\r\n") { d, base in
            guard case .forward(let f) = d, case .node(let node) = f.destination else { Issue.record("\(d)"); return }
            #expect(f.route == 1 && key(f, base) == "alice" && f.placed)
            first = node.name
        }
        try decide(r, "GET /ws/alice/ HTTP/1.1\r\nHost: a\r\n\r\n") { d, _ in
            guard case .forward(let f) = d else { Issue.record("\(d)"); return }
            #expect(f.node?.name == first && !f.placed)
        }
        #expect(r.registry?.placementCount == 1)
    }

    @Test("Query, header (any case) and cookie keys; the first Cookie field that names the key decides")
    func otherSources() throws {
        let r = try router()
        let cases: [(String, Int, String)] = [
            ("GET /q?a=1&userId=bob HTTP/1.1\r\nHost: a\r\n\r\n", 2, "bob"),
            ("GET /h HTTP/1.1\r\nHost: a\r\nX-WS-User:  carol \r\n\r\n", 3, "carol"),
            ("GET /@vite/client HTTP/1.1\r\nHost: a\r\nCookie: theme=dark\r\nCookie: ws_uid=dave; ws_uid=eve\r\nCookie: ws_uid=frank\r\n\r\n", 5, "dave"),
        ]
        for (request, route, expected) in cases {
            try decide(r, request) { d, base in
                guard case .forward(let f) = d else { Issue.record("\(request): \(d)"); return }
                #expect(f.route == route && key(f, base) == expected, "\(request)")
            }
        }
    }

    @Test("A missing key and a malformed key are 400s on their route", arguments: [
        ("GET /@vite/client HTTP/1.1\r\nHost: a\r\nCookie: theme=dark\r\n\r\n", 5, "no routing key in request"),
        ("GET /q?other=1 HTTP/1.1\r\nHost: a\r\n\r\n", 2, "no routing key in request"),
        ("GET /ws/bad%20key/ HTTP/1.1\r\nHost: a\r\n\r\n", 1, "malformed routing key"),
        ("GET /h HTTP/1.1\r\nHost: a\r\nX-WS-User: a.b\r\n\r\n", 3, "malformed routing key"),
    ])
    func badKeys(request: String, route: Int, code: String) throws {
        try decide(try router(), request) { d, _ in
            guard let r = d.rejection else { Issue.record("\(d)"); return }
            #expect(r.status == 400 && r.route == route && r.code.description == code)
        }
    }

    @Test("placement_port: a port lookup until the port is known, then the container")
    func placementPort() throws {
        let r = try router()
        var node = ""
        try decide(r, "GET /p/gina/ HTTP/1.1\r\nHost: a\r\n\r\n") { d, _ in
            guard case .forward(let f) = d, case .portLookup(let n) = f.destination else { Issue.record("\(d)"); return }
            node = n.name
        }
        try r.registry!.setHostPort(pool: "workspace", key: "gina", port: 20_007, now: testNow)
        try decide(r, "GET /p/gina/ HTTP/1.1\r\nHost: a\r\n\r\n") { d, _ in
            guard case .forward(let f) = d, case .container(let n, 20_007) = f.destination else { Issue.record("\(d)"); return }
            #expect(n.name == node)
        }
    }

    @Test("503s carry the key: no registry, no healthy node, no capacity, node down with Retry-After")
    func unavailable() throws {
        let request = "GET /ws/hank/ HTTP/1.1\r\nHost: a\r\n\r\n"
        let keyStart = 8
        try decide(Router(table: Self.routes, registry: nil), request) { d, _ in
            #expect(d.rejection == Rejection(status: 503, code: "no_healthy_node", route: 1, keyStart: keyStart, keyCount: 4))
        }
        try decide(try router([testNode("n1", enabled: false)]), request) { d, _ in
            #expect(d.rejection == Rejection(status: 503, code: "no_healthy_node", route: 1, keyStart: keyStart, keyCount: 4))
        }
        let full = try router([testNode("n1", capacity: 1)])
        try decide(full, "GET /ws/first/ HTTP/1.1\r\nHost: a\r\n\r\n") { d, _ in #expect(d.rejection == nil) }
        try decide(full, request) { d, _ in
            #expect(d.rejection == Rejection(status: 503, code: "insufficient_capacity", route: 1, keyStart: keyStart, keyCount: 4))
        }
        // Placed, then the node's heartbeat goes stale: the pool says fail, with its Retry-After.
        let settings = PoolSettings(onNodeDown: .fail(retryAfterSeconds: 7))
        let stale = Router(table: Self.routes, registry: try makeRegistry([testNode("n1")], settings: settings))
        try decide(stale, request) { d, _ in #expect(d.rejection == nil) }
        let later = testNow + 10 * 60_000
        let bytes = Array(request.utf8)
        let headers = HeaderTable(capacity: 16)
        try bytes.withUnsafeBufferPointer { p in
            let head = try RequestHead.parse(p.baseAddress!, start: 0, end: p.count, headers: headers)
            let d = stale.decide(head, headers: headers, base: p.baseAddress!, listener: 0, now: later)
            #expect(d.rejection == Rejection(status: 503, code: "node_down", route: 1, retryAfterSeconds: 7, keyStart: keyStart, keyCount: 4))
        }
    }

    @Test("Explain mode places nothing and predicts the node routing then picks")
    func explainMode() throws {
        let r = try router([testNode("n1"), testNode("n2"), testNode("n3")])
        var predicted: String?
        try decide(r, "GET /ws/ivy/ HTTP/1.1\r\nHost: a\r\n\r\n", mode: .explain) { d, _ in
            guard case .forward(let f) = d else { Issue.record("\(d)"); return }
            #expect(f.placed)
            predicted = f.node?.name
        }
        #expect(r.registry?.placementCount == 0)
        try decide(r, "GET /ws/ivy/ HTTP/1.1\r\nHost: a\r\n\r\n") { d, _ in
            guard case .forward(let f) = d else { Issue.record("\(d)"); return }
            #expect(f.node?.name == predicted && f.placed)
        }
        try decide(r, "GET /ws/ivy/ HTTP/1.1\r\nHost: a\r\n\r\n", mode: .explain) { d, _ in
            guard case .forward(let f) = d else { Issue.record("\(d)"); return }
            #expect(f.node?.name == predicted && !f.placed)
        }
    }
}

extension RouteDecision {
    var rejection: Rejection? {
        if case .reject(let r) = self { return r }
        return nil
    }
}

import HTTP1Codec
import Testing
@testable import RouteResolver

/// `Router.decide` for pod routes: the pod id from the path or the host, the reserved paths,
/// this center or the owner, the hop header's trust (cluster listener and secret), `max_hops`
/// and the owner-down answer. Socket-free, like RouterTests.
@Suite("Router: pod routes")
struct RouterPodTests {
    static let secret = "cluster-secret-0123456789"
    static let table = RouteTable(routes: [
        Route(name: "hosted", host: .init("*.pods.example"), pathPrefix: "/",
              target: .pods(PodTarget(source: .host(baseDomain: Array("pods.example".utf8)), upstreams: ["127.0.0.1:3000"]))),
        Route(name: "pods", host: nil, pathPrefix: "/", target: .pods(PodTarget(source: .path, upstreams: ["127.0.0.1:3000"]))),
    ])

    /// Centers a (this one), b (fresh) and c (stale); pods alice on a, bob on b, carol on c, dave
    /// on an unregistered center.
    func router(self id: String = "a", maxHops: Int = 1) throws -> Router {
        let nodes = [testNode("a", pool: "center"), testNode("b", pool: "center"), testNode("c", pool: "center", heartbeatAgeMs: 120_000)]
        let pods = [PodRecord(id: "alice", nodeID: "a"), PodRecord(id: "bob", nodeID: "b"), PodRecord(id: "carol", nodeID: "c"),
                    PodRecord(id: "dave", nodeID: "z")]
        let registry = try Registry(nodes: nodes, placements: [], pods: pods, pools: ["center": PoolSettings()])
        let identity = ClusterIdentity(nodeID: id, centerPool: "center", secret: Array(Self.secret.utf8), maxHops: maxHops,
                                       clusterListeners: [false, true])
        return Router(table: Self.table, registry: registry, cluster: identity)
    }

    func decide(_ router: Router, _ target: String, host: String = "h", headers: [String] = [], listener: Int = 0,
                _ check: (RouteDecision, String) -> Void) throws {
        let text = "GET \(target) HTTP/1.1\r\nHost: \(host)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
        let bytes = Array(text.utf8)
        let table = HeaderTable(capacity: 16)
        try bytes.withUnsafeBufferPointer { p in
            let head = try RequestHead.parse(p.baseAddress!, start: 0, end: p.count, headers: table)
            let d = router.decide(head, headers: table, base: p.baseAddress!, listener: listener, now: testNow)
            var key = ""
            switch d {
            case .forward(let f): key = String(decoding: UnsafeBufferPointer(start: p.baseAddress! + f.keyStart, count: f.keyCount), as: UTF8.self)
            case .reject(let r): key = String(decoding: UnsafeBufferPointer(start: p.baseAddress! + r.keyStart, count: r.keyCount), as: UTF8.self)
            case .redirect: break
            }
            check(d, key)
        }
    }

    @Test("A pod of this center goes to the local pod server; another center's to that center")
    func localAndForward() throws {
        let r = try router()
        try decide(r, "/alice/profile/card") { d, key in
            guard case .forward(let f) = d, case .podLocal(let owner) = f.destination else { Issue.record("\(d)"); return }
            #expect(owner?.name == "a" && key == "alice" && !f.trustedHops)
        }
        try decide(r, "/bob?x=1") { d, key in
            guard case .forward(let f) = d, case .podCenter(let center) = f.destination else { Issue.record("\(d)"); return }
            #expect(center.name == "b" && key == "bob")
        }
    }

    @Test("Reserved first segments, the root and non-ids are the local server's; an unknown id is 404")
    func reservedAndUnknown() throws {
        let r = try router()
        for path in ["/.well-known/openid-configuration", "/.account/login", "/idp/auth", "/api/x", "/.cluster/pods", "/.internal/x",
                     "/", "/favicon.ico", "/%61lice/"] {
            try decide(r, path) { d, key in
                guard case .forward(let f) = d, case .podLocal(nil) = f.destination else { Issue.record("\(path): \(d)"); return }
                #expect(key.isEmpty, "\(path)")
            }
        }
        try decide(r, "/nobody/x") { d, key in
            guard case .reject(let rej) = d else { Issue.record("\(d)"); return }
            #expect(rej.status == 404 && rej.code.description == "unknown pod" && key == "nobody")
        }
    }

    @Test("Host source: the first label under the base domain (the domain in any case); the bare domain and deeper names are local")
    func hostSource() throws {
        let r = try router()
        try decide(r, "/x", host: "bob.Pods.EXAMPLE:8443") { d, key in
            guard case .forward(let f) = d, case .podCenter(let c) = f.destination else { Issue.record("\(d)"); return }
            #expect(c.name == "b" && key == "bob")
        }
        // Pod ids are case-sensitive (as in the path): host routes need lowercase ids.
        try decide(r, "/x", host: "BOB.pods.example") { d, _ in
            guard case .reject(let rej) = d else { Issue.record("\(d)"); return }
            #expect(rej.status == 404)
        }
        for host in ["a.b.pods.example", "x.y.z.pods.example"] {
            try decide(r, "/bob/x", host: host) { d, _ in
                guard case .forward(let f) = d, case .podLocal(nil) = f.destination else { Issue.record("\(host): \(d)"); return }
            }
        }
    }

    @Test("Owner stale or unregistered: 503 naming the owner, with Retry-After; never served elsewhere")
    func ownerDown() throws {
        let r = try router()
        for (pod, owner) in [("carol", "c"), ("dave", "z")] {
            try decide(r, "/\(pod)/") { d, _ in
                guard case .reject(let rej) = d else { Issue.record("\(d)"); return }
                #expect(rej.status == 503 && rej.code.description == "pod owner down" && rej.owner == owner && rej.retryAfterSeconds > 0)
            }
        }
    }

    @Test("A hop header counts only on a cluster listener with the right secret")
    func hopTrust() throws {
        let r = try router(self: "b")
        let good = ["X-Switchyard-Hop: a", "X-Switchyard-Cluster: \(Self.secret)"]
        // Public listener, right secret: ignored, so b forwards (to a) as for any client.
        try decide(r, "/alice/", headers: good, listener: 0) { d, _ in
            guard case .forward(let f) = d, case .podCenter = f.destination else { Issue.record("\(d)"); return }
            #expect(!f.trustedHops)
        }
        // Cluster listener, wrong or missing secret: ignored.
        for headers in [["X-Switchyard-Hop: a", "X-Switchyard-Cluster: guess"], ["X-Switchyard-Hop: a"],
                        ["X-Switchyard-Hop: a", "X-Switchyard-Cluster: \(Self.secret)x"],
                        ["X-Switchyard-Hop: a", "X-Switchyard-Cluster: \(Self.secret)", "X-Switchyard-Cluster: \(Self.secret)"]] {
            try decide(r, "/alice/", headers: headers, listener: 1) { d, _ in
                guard case .forward(let f) = d, case .podCenter = f.destination else { Issue.record("\(headers): \(d)"); return }
                #expect(!f.trustedHops, "\(headers)")
            }
        }
        // Proven center, b owns bob: served here, chain trusted.
        try decide(r, "/bob/", headers: good, listener: 1) { d, _ in
            guard case .forward(let f) = d, case .podLocal(let o) = f.destination else { Issue.record("\(d)"); return }
            #expect(f.trustedHops && o?.name == "b")
        }
    }

    @Test("Forwarded max_hops times and the view says another center: 508 naming the owner; a chain naming this center: 508 at once")
    func loopGuard() throws {
        let good = "X-Switchyard-Cluster: \(Self.secret)"
        // b thinks alice is on a, and the request came from a: with max_hops 1, 508.
        try decide(try router(self: "b"), "/alice/x", headers: ["X-Switchyard-Hop: a", good], listener: 1) { d, _ in
            guard case .reject(let rej) = d else { Issue.record("\(d)"); return }
            #expect(rej.status == 508 && rej.code.description == "pod routing loop" && rej.owner == "a")
        }
        // max_hops 2: one more forward is allowed, unless the chain already names this center.
        try decide(try router(self: "b", maxHops: 2), "/alice/x", headers: ["X-Switchyard-Hop: c", good], listener: 1) { d, _ in
            guard case .forward(let f) = d, case .podCenter(let c) = f.destination else { Issue.record("\(d)"); return }
            #expect(c.name == "a" && f.trustedHops)
        }
        try decide(try router(self: "b", maxHops: 4), "/alice/x", headers: ["X-Switchyard-Hop: b, c", good], listener: 1) { d, _ in
            guard case .reject(let rej) = d else { Issue.record("\(d)"); return }
            #expect(rej.status == 508)
        }
        // Chain counted over several fields and list items.
        try decide(try router(self: "b", maxHops: 2), "/alice/x", headers: ["X-Switchyard-Hop: c,d", "X-Switchyard-Hop: e", good], listener: 1) { d, _ in
            guard case .reject(let rej) = d else { Issue.record("\(d)"); return }
            #expect(rej.status == 508)
        }
    }
}

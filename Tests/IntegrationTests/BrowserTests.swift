// A real browser through the gateway: headless Chromium (Debian's `chromium`) loads a
// Vite-style page from a workspace node (peers/hmrpage.py) and the page's script opens a
// `vite-hmr` WebSocket back through the gateway, by the /ws/<id>/ path or, on root paths, by
// the `ws_uid` cookie the /ws/ route set. peers/browser_cdp.py drives Chromium over the
// DevTools protocol and reports what each page wrote into its DOM; Chromium and all its
// processes are gone when it returns, which the tests check too.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What browser_cdp.py saw (its docstring has the format).
struct BrowserReport: Decodable {
    struct Visit: Decodable {
        let url: String
        let error: String?
        let state: String?
        let title: String?
        let page_port: String?
        let page_cookie: String?
        let ws_url: String?
        let body: String?
        let log: [String]
    }

    struct Cookie: Decodable {
        let name: String
        let value: String
        let path: String?
        let httpOnly: Bool?
        let sameSite: String?
    }

    let version: String?
    let visits: [Visit]
    let cookies: [Cookie]
    let leftover: [Int]
}

@Suite("Chromium through the gateway")
struct BrowserTests {
    /// What hmrpage.py's page logs when its WebSocket exchange went right: the subprotocol the
    /// browser accepted, the node that answered, what the node saw of the handshake, the echo
    /// of the page's message, a 200,000-character message intact, and a clean close.
    static func expectedLog(node: Int, wsTarget: String) -> [String] {
        ["open vite-hmr", "msg:node:\(node)", "msg:protocol:vite-hmr", "msg:path:\(wsTarget)",
         "msg:echo:hello-from-browser", "msg:big:200000", "big-received:200000:ok", "msg:done",
         "close:1000:bye:true"]
    }

    /// The exchange went as `expectedLog` says, and the node saw `ws_uid=<user>` in the
    /// WebSocket handshake (checked on its own: it fails for a different reason).
    static func expectExchange(_ visit: BrowserReport.Visit, node: Int, user: String, wsTarget: String) {
        let uid = visit.log.filter { $0.hasPrefix("msg:uid:") }
        #expect(visit.log.filter { !$0.hasPrefix("msg:uid:") } == expectedLog(node: node, wsTarget: wsTarget),
                "\(visit.url): page log \(visit.log), state \(visit.state ?? "-"), page text \((visit.body ?? "").prefix(300).debugDescription)")
        #expect(uid == ["msg:uid:\(user)"],
                "\(visit.url): the node saw the WebSocket handshake with ws_uid \(uid.first?.dropFirst(8) ?? "?") instead of \(user): the browser holds the cookie, so the Cookie field did not reach the node")
    }

    @Test("a Vite-style page and its vite-hmr WebSocket work in Chromium through /ws/<id>/")
    func pageAndSocketByPath() throws {
        let scope = try Scope("browser-path")
        defer { scope.close() }
        let nodes = try startPages(scope, count: 1)
        let gw = try startGateway(scope, nodes: nodes)

        let report = try scope.browse([gw.url("/ws/alice/")], as: BrowserReport.self)
        let visit = try #require(report.visits.first)
        #expect(visit.error == nil, "navigation failed: \(visit.error ?? "")")
        #expect(visit.page_port == String(nodes[0]), "page came from \(visit.page_port ?? "nowhere")")
        #expect(visit.ws_url == "ws://127.0.0.1:\(gw.port)/ws/alice/hmr?token=t1")
        // uid:alice: the page's response set ws_uid, and Chromium sent it with the handshake.
        Self.expectExchange(visit, node: nodes[0], user: "alice", wsTarget: "/ws/alice/hmr?token=t1")
        #expect(visit.state == "closed")
        let cookie = report.cookies.first { $0.name == "ws_uid" }
        #expect(cookie?.value == "alice" && cookie?.path == "/" && cookie?.httpOnly == true && cookie?.sameSite == "Lax",
                "cookies: \(report.cookies)")
        #expect(report.leftover.isEmpty, "browser_cdp.py left Chromium processes: \(report.leftover)")
        scope.expectNoChromiumLeft()
    }

    @Test("root-path pages and their WebSockets follow the ws_uid cookie to the user's node")
    func rootPathsFollowTheCookie() throws {
        let scope = try Scope("browser-cookie")
        defer { scope.close() }
        let nodes = try startPages(scope, count: 2)
        let gw = try startGateway(scope, nodes: nodes)

        // Two users placed on different nodes (placements are sticky, so the browser's requests
        // below land where these did).
        var userOn: [Int: String] = [:]
        for i in 0..<40 where userOn.count < 2 {
            let user = "user\(i)"
            let r = try scope.get(gw.url("/ws/\(user)/"))
            #expect(r.status == 200, "\(user): \(r.summary)")
            if let port = r.header("X-Page-Port").flatMap(Int.init), userOn[port] == nil { userOn[port] = user }
        }
        let a = try #require(userOn[nodes[0]], "no user of 40 placed on the first node")
        let b = try #require(userOn[nodes[1]], "no user of 40 placed on the second node")

        // One tab, one cookie jar: the /ws/ page sets ws_uid, the root page then goes by it.
        let report = try scope.browse([gw.url("/ws/\(a)/"), gw.url("/"), gw.url("/ws/\(b)/src/main.ts"), gw.url("/")], as: BrowserReport.self)
        try #require(report.visits.count == 4, "\(report.visits)")
        let steps: [(node: Int, user: String, target: String, cookie: String?)] = [
            (nodes[0], a, "/ws/\(a)/hmr?token=t1", nil),
            (nodes[0], a, "/?token=t1", "ws_uid=\(a)"),
            (nodes[1], b, "/ws/\(b)/hmr?token=t1", "ws_uid=\(a)"),  // still a's cookie until this response
            (nodes[1], b, "/?token=t1", "ws_uid=\(b)"),
        ]
        for (visit, step) in zip(report.visits, steps) {
            #expect(visit.error == nil, "\(visit.url): navigation failed: \(visit.error ?? "")")
            #expect(visit.page_port == String(step.node), "\(visit.url): page from \(visit.page_port ?? "nowhere"), expected \(step.node)")
            if let cookie = step.cookie {
                #expect(visit.page_cookie == cookie, "\(visit.url): the node got the page request with Cookie \(visit.page_cookie ?? "?"), the browser sent \(cookie)")
            }
            Self.expectExchange(visit, node: step.node, user: step.user, wsTarget: step.target)
        }
        #expect(report.cookies.first { $0.name == "ws_uid" }?.value == b, "cookies: \(report.cookies)")
        #expect(report.leftover.isEmpty, "browser_cdp.py left Chromium processes: \(report.leftover)")
        scope.expectNoChromiumLeft()
    }

    // MARK: - Peers

    /// Starts hmrpage.py with `count` node ports.
    private func startPages(_ scope: Scope, count: Int) throws -> [Int] {
        try scope.startPeer("hmrpage.py", python: try scope.venvPython(), Array(repeating: "0", count: count),
                            name: "hmrpage", timeout: 20) { portList($0, count: count) }.ready
    }

    /// The production shape: /ws/<id>/ keyed by path (and setting ws_uid), everything else by
    /// the ws_uid cookie, one workspace node per hmrpage port.
    private func startGateway(_ scope: Scope, nodes: [Int]) throws -> Gateway {
        try scope.startGateway(StickyConfig(port: try Ports.free(), database: scope.path("var/registry.db"),
                                            nodes: nodes.enumerated().map { StickyNode("ws-\($0 + 1)", "127.0.0.1:\($1)") }))
    }

}

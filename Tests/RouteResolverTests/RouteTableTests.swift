import Testing
@testable import RouteResolver

@Suite("Route table")
struct RouteTableTests {
    /// (prefix, path, matches): a prefix matches itself and anything below it, where "below"
    /// starts at '/' or '?'; a prefix ending in '/' matches plainly; "/" and "" match everything.
    static let prefixCases: [(String, String, Bool)] = [
        ("/api", "/api", true), ("/api", "/api/", true), ("/api", "/api/x", true), ("/api", "/api?q=1", true),
        ("/api", "/apix", false), ("/api", "/ap", false), ("/api", "/", false), ("/api", "", false),
        ("/api", "/API", false), ("/api", "/x/api", false), ("/api", "/api.json", false), ("/api", "/api#f", false),
        ("/api/", "/api/", true), ("/api/", "/api/x", true), ("/api/", "/api", false), ("/api/", "/api?q", false),
        ("/api/v1", "/api/v1/users", true), ("/api/v1", "/api/v10", false),
        ("/", "/", true), ("/", "/anything/at?all", true), ("/", "", true), ("/", "*", true),
        ("", "/x", true), ("", "", true),
    ]

    @Test("Path prefix semantics", arguments: prefixCases)
    func pathPrefix(_ prefix: String, _ path: String, _ expected: Bool) {
        let table = RouteTable(routes: [route("r", prefix)])
        #expect((match(table, host: "h", path: path) != nil) == expected)
    }

    @Test("Host rules: exact, wildcard, any case, any host when absent")
    func hosts() {
        let table = RouteTable(routes: [
            route("exact", host: "api.example.com", "/"),
            route("wild", host: "*.example.com", "/"),
            route("any", "/only-any"),
        ])
        #expect(pick(table, host: "API.Example.Com", "/") == "exact")
        #expect(pick(table, host: "www.example.com", "/") == "wild")
        #expect(pick(table, host: "a.b.EXAMPLE.com", "/x") == "wild")
        #expect(pick(table, host: "example.com", "/") == nil)
        #expect(pick(table, host: "other.org", "/") == nil)
        #expect(pick(table, host: "other.org", "/only-any/x") == "any")
        #expect(pick(table, host: "", "/only-any") == "any")
    }

    @Test("The first matching route wins, even when a later one is more specific")
    func firstMatchWins() {
        let table = RouteTable(routes: [
            route("api-on-host", host: "a.test", "/api"),
            route("api", "/api"),
            route("api-v2", "/api/v2"),
            route("all", "/"),
            route("never", "/static"),
        ])
        #expect(match(table, host: "a.test", path: "/api/v2") == 0)
        #expect(pick(table, host: "b.test", "/api/v2") == "api")
        #expect(pick(table, host: "b.test", "/static/x") == "all")
        #expect(pick(table, host: "a.test", "/apix") == "all")
    }

    @Test("No matching route gives nil")
    func noMatch() {
        #expect(match(RouteTable(routes: []), host: "h", path: "/") == nil)
        let table = RouteTable(routes: [route("api", "/api"), route("host", host: "h.test", "/")])
        #expect(match(table, host: "x.test", path: "/other") == nil)
        #expect(match(table, host: "h.test", path: "/other") == 1)
    }

    @Test("Routes keep their definition")
    func routeFields() {
        let r = route("r", host: "*.a.b", "/p/")
        #expect(r.pathPrefix == Array("/p/".utf8))
        #expect(r.host == .suffix(Array(".a.b".utf8)))
        #expect(r.target == .upstreams(["127.0.0.1:9000"]))
        #expect(RouteTable(routes: [r]).routes == [r])
    }
}

// What the gateway does to a request and its response on the way through:
// RFC 9110 7.6.1 (hop-by-hop fields), 7.6.3 (Via), and the X-Forwarded-* and
// X-Request-Id conventions of the design brief.

import Foundation
import Testing

@Suite("Forwarding: header rewriting")
struct ForwardingTests {
    @Test("GET through the gateway: body intact, forwarding headers added, hop-by-hop removed")
    func forwardsAndRewritesHeaders() throws {
        let scope = try Scope("fwd")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let r = try scope.get(gw.url("/echo/some/path?q=1&r=two"), headers: [
            "Host: example.test",
            "Connection: keep-alive, X-Secret-Hop",
            "X-Secret-Hop: must-not-pass",
            "Keep-Alive: timeout=5",
            "Proxy-Connection: keep-alive",
            "TE: trailers",
            "Upgrade: example/2",
            "X-Forwarded-For: 203.0.113.7",
            "Via: 1.0 fred",
            "X-End-To-End: kept",
            "Cookie: ws_uid=alice; theme=dark",
            "Cookie: second=field",
        ])
        #expect(r.status == 200, "\(r.summary)")
        let echo = try #require(Echo.decode(r.body), "not an /echo body: \(r.summary)")

        // The request itself arrives unchanged.
        #expect(echo.method == "GET")
        #expect(echo.target == "/echo/some/path?q=1&r=two")
        #expect(echo.header("X-End-To-End") == "kept")
        #expect(echo.values("Host").count == 1)
        // Cookies are end to end, however many fields (sticky routes read them, never drop them).
        #expect(echo.values("Cookie") == ["ws_uid=alice; theme=dark", "second=field"], "\(echo.headers)")

        // Added by the gateway.
        #expect(echo.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1",
                "X-Forwarded-For should append the client address: \(echo.headers)")
        #expect(echo.header("X-Forwarded-Proto") == "http")
        #expect(echo.header("X-Forwarded-Host") == "example.test")
        let via = echo.header("Via") ?? ""
        #expect(via.hasPrefix("1.0 fred"), "existing Via must be kept first: \(via)")
        #expect(via.hasSuffix("1.1 switchyard"), "Via must end with 1.1 switchyard: \(via)")
        let upstreamId = echo.header("X-Request-Id")
        #expect(isGeneratedRequestId(upstreamId), "generated X-Request-Id should be 32 hex chars: \(upstreamId ?? "nil")")

        // Hop-by-hop fields never reach the upstream.
        for name in ["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "X-Secret-Hop"] {
            #expect(echo.header(name) == nil, "upstream saw hop-by-hop header \(name): \(echo.header(name) ?? "")")
        }

        // The response carries Via and the same request id.
        #expect(r.header("Via")?.contains("1.1 switchyard") == true, "response Via: \(r.header("Via") ?? "nil")")
        #expect(r.header("X-Request-Id") == upstreamId, "response X-Request-Id should match what the upstream saw")
        #expect(r.header("X-Upstream-Port") == "\(up.ports[0])")
    }

    @Test("a valid client X-Request-Id is kept end to end")
    func keepsValidRequestId() throws {
        let scope = try Scope("rid")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        for id in ["abc-123", "trace.id:42+x/y=z~_", String(repeating: "a", count: 128)] {
            let r = try scope.get(gw.url("/echo"), headers: ["X-Request-Id: \(id)"])
            #expect(r.status == 200, "\(r.summary)")
            let echo = try #require(Echo.decode(r.body))
            #expect(echo.values("X-Request-Id") == [id], "upstream should see exactly the client's id")
            #expect(r.header("X-Request-Id") == id)
        }
    }

    @Test("an invalid client X-Request-Id is replaced by a generated one")
    func replacesInvalidRequestId() throws {
        let scope = try Scope("rid-bad")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let bad = ["has space", String(repeating: "b", count: 129), "semi;colon", "<script>", "\"quoted\""]
        for id in bad {
            let r = try scope.get(gw.url("/echo"), headers: ["X-Request-Id: \(id)"])
            #expect(r.status == 200, "\(r.summary)")
            let echo = try #require(Echo.decode(r.body))
            let seen = echo.values("X-Request-Id")
            #expect(seen.count == 1 && isGeneratedRequestId(seen.first),
                    "invalid id \(id.debugDescription) should be replaced by 32 hex chars, upstream saw \(seen)")
            #expect(r.header("X-Request-Id") == seen.first)
        }
    }

    @Test("each request without an id gets a distinct generated one")
    func generatedIdsAreDistinct() throws {
        let scope = try Scope("rid-uniq")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        var ids = Set<String>()
        for _ in 0..<5 {
            let r = try scope.get(gw.url("/echo"))
            let id = try #require(r.header("X-Request-Id"), "\(r.summary)")
            #expect(isGeneratedRequestId(id))
            ids.insert(id)
        }
        #expect(ids.count == 5)
    }

    @Test("hop-by-hop headers in the upstream's response are removed")
    func stripsResponseHopHeaders() throws {
        let scope = try Scope("hop-resp")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let r = try scope.get(gw.url("/hop"))
        #expect(r.status == 200, "\(r.summary)")
        #expect(r.bodyText == "hop\n")
        #expect(r.header("X-End-To-End") == "kept")
        for name in ["Keep-Alive", "Proxy-Connection", "Upgrade", "X-Hop-Secret"] {
            #expect(r.header(name) == nil, "client saw hop-by-hop response header \(name): \(r.header(name) ?? "")")
        }
        // The gateway may speak its own Connection option, but never relay the upstream's.
        #expect(r.header("Connection")?.contains("X-Hop-Secret") != true)
    }

    @Test("request bodies arrive intact, Content-Length and chunked")
    func smallBodies() throws {
        let scope = try Scope("body")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        let file = try scope.makePayload("small.bin", size: 300_000)
        let digest = try scope.sha256(ofFile: file)

        let cl = try scope.curl(["-X", "POST", "--data-binary", "@\(file)", "-H", "Expect:", gw.url("/echo")])
        #expect(cl.status == 200, "\(cl.summary)")
        let e1 = try #require(Echo.decode(cl.body))
        #expect(e1.body_length == 300_000)
        #expect(e1.body_sha256 == digest)

        let ch = try scope.curl(["-X", "POST", "-T", file, "-H", "Transfer-Encoding: chunked", "-H", "Expect:", gw.url("/echo")])
        #expect(ch.status == 200, "\(ch.summary)")
        let e2 = try #require(Echo.decode(ch.body))
        #expect(e2.body_length == 300_000)
        #expect(e2.body_sha256 == digest)
    }
}

// Answers the gateway makes itself when a peer fails: 502 (upstream refused
// or spoke broken HTTP), 504 (upstream silent), 408 (client too slow).

import Foundation
import Testing

/// Checks the shape of a gateway error: JSON with "error" and "request_id".
func expectGatewayError(_ body: Data, status: Int, requestId: String? = nil, context: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    let json = body.json()
    #expect(json?["error"] is String,
            "\(status) body should be JSON with \"error\" (\(context)): \(String(decoding: body, as: UTF8.self).prefix(300).debugDescription)",
            sourceLocation: sourceLocation)
    let rid = json?["request_id"] as? String
    #expect(rid?.isEmpty == false, "\(status) body should carry request_id (\(context))", sourceLocation: sourceLocation)
    if let requestId {
        #expect(rid == requestId, "request_id should be the client's \(requestId) (\(context)), got \(rid ?? "nil")",
                sourceLocation: sourceLocation)
    }
}

@Suite("Gateway errors")
struct ErrorTests {
    @Test("upstream refusing connections gives 502 JSON")
    func upstreamRefused() throws {
        let scope = try Scope("502")
        defer { scope.close() }
        let dead = try Ports.free()  // nothing listens here
        let gw = try scope.startGateway(to: ["127.0.0.1:\(dead)"])

        let r = try scope.get(gw.url("/anything"), headers: ["X-Request-Id: refused-1"])
        #expect(r.status == 502, "\(r.summary)")
        expectGatewayError(r.body, status: 502, requestId: "refused-1", context: "refused upstream")
        #expect(r.header("X-Request-Id") == "refused-1")
        #expect(r.timeTotal < 3, "a refused connect should fail fast, took \(r.timeTotal)s")

        // The gateway keeps serving afterwards.
        let again = try scope.get(gw.url("/again"))
        #expect(again.status == 502, "\(again.summary)")
    }

    @Test("upstream silent past upstream_first_byte gives 504 in time")
    func upstreamSilent() throws {
        let scope = try Scope("504")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, timeouts: ["upstream_first_byte": "1s"])

        let r = try scope.get(gw.url("/silent"), maxTime: 15)
        #expect(r.status == 504, "\(r.summary)")
        expectGatewayError(r.body, status: 504, context: "silent upstream")
        #expect(r.timeTotal >= 0.9 && r.timeTotal < 4, "504 should come after ~1s, came after \(r.timeTotal)s")

        // A fast endpoint on the same gateway is unaffected.
        let ok = try scope.get(gw.url("/echo"))
        #expect(ok.status == 200, "\(ok.summary)")
    }

    @Test("a slow endpoint inside upstream_first_byte still succeeds")
    func slowButInTime() throws {
        let scope = try Scope("slow-ok")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, timeouts: ["upstream_first_byte": "2s"])
        let r = try scope.get(gw.url("/slow?delay=0.5"))
        #expect(r.status == 200, "\(r.summary)")
        #expect(r.json?["slept"] as? Double == 0.5)
    }

    @Test("a partial request head past client_header gets 408, then the connection closes")
    func clientHeaderTimeout() throws {
        let scope = try Scope("408")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, timeouts: ["client_header": "1s"])

        let conn = try RawConnection(port: gw.port)
        let start = Date()
        conn.send("GET /echo HTTP/1.1\r\nHost: slow.test\r\nX-Partial: ")  // never finished
        let r = try conn.readResponse(timeout: 6)
        let elapsed = Date().timeIntervalSince(start)
        #expect(r.status == 408, "got \(r.status) \(r.bodyText)")
        expectGatewayError(Data(r.body), status: 408, context: "client_header timeout")
        #expect(elapsed >= 0.9 && elapsed < 4, "408 should come after ~1s, came after \(elapsed)s")
        let (closed, extra) = conn.waitForClose(timeout: 3)
        #expect(closed, "connection should be closed after 408")
        #expect(extra.isEmpty)
    }

    @Test("an idle connection with no request is closed quietly or with 408")
    func idleNoBytes() throws {
        let scope = try Scope("idle")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses, timeouts: ["client_header": "1s", "client_idle": "1s"])
        let conn = try RawConnection(port: gw.port)
        let (closed, extra) = conn.waitForClose(timeout: 5)
        #expect(closed, "a connection that never sends anything must not be held forever")
        if !extra.isEmpty {
            #expect(String(decoding: extra, as: UTF8.self).hasPrefix("HTTP/1.1 408"),
                    "only a 408 may be sent on an idle connection: \(String(decoding: extra.prefix(200), as: UTF8.self))")
        }
    }

    @Test("malformed upstream responses become 502", arguments: [
        "cl-te", "two-cl", "status-line", "garbage", "obs-fold", "nul-header", "close",
    ])
    func badUpstreamResponse(kind: String) throws {
        let scope = try Scope("bad-\(kind)")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        let r = try scope.get(gw.url("/bad/\(kind)"), headers: ["X-Request-Id: bad-\(kind)"], maxTime: 15)
        #expect(r.status == 502, "upstream /bad/\(kind): \(r.summary)")
        expectGatewayError(r.body, status: 502, requestId: "bad-\(kind)", context: "/bad/\(kind)")
        #expect(r.header("X-Folded") == nil && r.header("X-Nul") == nil, "malformed upstream headers leaked")

        let ok = try scope.get(gw.url("/echo"))
        #expect(ok.status == 200, "gateway should still serve after /bad/\(kind): \(ok.summary)")
    }

    @Test("a bad chunk in the upstream body never reaches the client as a complete response")
    func badUpstreamChunk() throws {
        let scope = try Scope("bad-chunk")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)

        // The head may already be on its way when the bad chunk arrives, so
        // either a 502 or an aborted response is right; a clean 200 is not.
        let conn = try RawConnection(port: gw.port)
        conn.send("GET /bad/chunk-size HTTP/1.1\r\nHost: b.test\r\n\r\n")
        do {
            let r = try conn.readResponse(timeout: 10)
            #expect(r.status == 502, "a broken chunked body was relayed as a complete \(r.status): \(r.bodyText.debugDescription)")
            if r.status == 502 { expectGatewayError(Data(r.body), status: 502, context: "/bad/chunk-size") }
        } catch let e as ReadError {
            switch e {
            case .closed:
                break  // cut off before the terminating chunk, as it must be
            case .timeout:
                Issue.record("the gateway neither finished nor aborted the response: \(e)")
            case .malformed:
                Issue.record("the gateway relayed broken chunk framing to the client: \(e)")
            }
        }
    }
}

// Regressions of the HTTP/2 review fixes (7ad5fd5), end to end: the built gateway, h2c with
// prior knowledge on a plain listener, raw frames from peers/h2client.py (the venv's `h2`,
// hyperframe and hpack) and the HTTP/1.1 upstream peer (upstream.py).
//
// What is covered: a header block's cookies never reach another connection's request (the block
// is reset when a connection ends, and a reused connection object starts clean); a connection
// object reused after an abrupt close still flushes (no stale "dirty" flag); a connection with a
// header block that never ends, or with the preface alone, is timed by client_header; a complete
// response to a client still uploading is followed by RST_STREAM(NO_ERROR) and the connection
// goes on; HEAD gets no body on the gateway's own errors (HTTP/2 and HTTP/1.1); resets nghttp2
// sends on its own spend a token bucket ("MadeYouReset", CVE-2025-8671); a 2xx that is not a
// 101 on an RFC 8441 stream becomes 502.
//
// Timeouts that must fire are configured short (1s); the assertions are on outcomes within a
// bounded wait, never on how long something took.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("HTTP/2 hardening")
struct HTTP2HardeningTests {
    /// A gateway with one plain listener (h2c with prior knowledge, and HTTP/1.1), `workers`
    /// workers, routing `/dead/` to a port nothing listens on (502) and everything else to
    /// `upstream`; `timeouts` and `http2` are YAML flow mappings added when given.
    private func start(_ scope: Scope, upstream: String, workers: Int = 1, timeouts: String? = nil,
                       http2: String? = nil) throws -> Gateway {
        let port = try Ports.free()
        let dead = try Ports.free()
        var yaml = """
        workers: \(workers)
        listeners:
          - name: plain
            address: 127.0.0.1:\(port)
        limits: {max_request_line: 8192, max_header_bytes: 16384, max_headers: 100}
        logging: {access: stdout, error: stderr}
        admin: {address: "off"}

        """
        if let timeouts { yaml += "timeouts: \(timeouts)\n" }
        if let http2 { yaml += "http2: \(http2)\n" }
        yaml += """
        routes:
          - name: dead
            path_prefix: /dead/
            upstreams: ["127.0.0.1:\(dead)"]
          - name: all
            path_prefix: /
            upstreams: ["\(upstream)"]

        """
        return try scope.startGateway(yaml: yaml, port: port)
    }

    /// Where `event` is in a report's `events` (nil when absent).
    private func position(_ report: JSONValue, _ key: String = "events", of event: String) -> Int? {
        report[key].array.compactMap(\.string).firstIndex(of: event)
    }

    // MARK: - 1. Cookies stay with their request

    @Test("cookie isolation: a header block left open (cookie: session=VICTIM, no END_HEADERS) on a closed connection never reaches the next connection's request")
    func cookieIsolation() throws {
        let scope = try Scope("h2h-cookie")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        // One worker: client B's connection is very likely to get client A's connection object.
        let gw = try start(scope, upstream: up.addresses[0], workers: 1)

        for round in 0..<6 {
            // A: HEADERS with the victim's cookie and no END_HEADERS, then our FIN; the gateway
            // has read it all once it closes its side.
            let a = try scope.h2client("stall", port: gw.port, [
                "--stage", "headers", "--path", "/echo?victim=\(round)", "--header", "cookie: session=VICTIM",
                "--hangup", "--wait", "5",
            ])
            #expect(a["error"].isNull && a["first_frame"].string == "SettingsFrame", "round \(round), client A: \(a)")
            #expect(a["closed"].bool == true, "round \(round): the gateway should close client A's connection after its FIN: \(a)")

            // B: a new connection, a complete request with its own cookie (even rounds) or none.
            let withCookie = round % 2 == 0
            let b = try scope.h2client("requests", port: gw.port, [
                "--plan", Scope.h2Plan([["path": "/echo?b=\(round)", "headers": withCookie ? [["cookie", "mine=b"]] : [[String]]()]]),
            ])
            #expect(b["error"].isNull && b["responses"][0]["status"].int == 200, "round \(round), client B: \(b)")
            let body = b["responses"][0]["body"].string ?? ""
            let echo = Echo.decode(Data(body.utf8))
            #expect(echo?.target == "/echo?b=\(round)", "round \(round): \(body.prefix(600))")
            #expect(echo?.values("Cookie") == (withCookie ? ["mine=b"] : []),
                    "round \(round): the upstream should see exactly client B's cookies (\(withCookie ? "mine=b" : "none")), saw \(echo?.values("Cookie") ?? ["<no echo>"])")
            #expect(!body.contains("VICTIM"), "round \(round): client A's cookie reached client B's request: \(body.prefix(800))")
        }
        // Client A's requests never completed, so none was proxied (the access log is written
        // in order: once the last B request is there, any A line would be too).
        #expect(gw.accessLine(containing: "/echo?b=5") != nil, "\(gw.child.stdout.suffix(1000))")
        let leaked = gw.child.stdout.split(separator: "\n").filter { $0.contains("victim=") }
        #expect(leaked.isEmpty, "an unfinished header block was proxied: \(leaked)")
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 2. Reuse after an abrupt close

    @Test("a connection object reused after an abrupt close starts clean: 20 times, a client that closes right after sending, then a fresh client gets SETTINGS and 200")
    func reuseAfterAbruptClose() throws {
        let scope = try Scope("h2h-abrupt")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try start(scope, upstream: up.addresses[0], workers: 1)
        // Each fresh client waits at most 3 s for the server's first frame, and again for its
        // answer; the scenario stops at the first round that failed.
        let r = try scope.h2client("abrupt", port: gw.port, ["--count", "20", "--wait", "3"])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["ok_rounds"].int == 20,
                "a fresh client after an abrupt close got no SETTINGS or no 200 within 3 s; rounds: \(r["rounds"])")
        for round in r["rounds"].array where round["first_frame"].string != "SettingsFrame" || round["status"].int != 200 {
            Issue.record("round \(round["round"]): first frame \(round["first_frame"]), status \(round["status"]), closed \(round["closed"])")
        }
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 3. Incomplete heads are timed

    @Test("client_header 1s times a connection with a header block that never ends, with the preface alone, and with the magic alone: GOAWAY and the close")
    func incompleteHeadTimed() throws {
        let scope = try Scope("h2h-stall")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        // client_idle far beyond the bounded wait: only client_header can close these in time.
        let gw = try start(scope, upstream: up.addresses[0], workers: 1, timeouts: "{client_header: 1s, client_idle: 60s}")
        for stage in ["headers", "preface", "magic"] {
            let r = try scope.h2client("stall", port: gw.port, ["--stage", stage, "--path", "/echo?stalled=\(stage)", "--wait", "5"])
            #expect(r["error"].isNull && r["first_frame"].string == "SettingsFrame", "\(stage): \(r)")
            #expect(r["closed"].bool == true,
                    "\(stage): the connection was still open after a bounded wait of 5 s (client_header 1s); frames \(r["frames"]), waited \(r["waited"])")
            #expect(r["goaway"]["error_code"].string == "NO_ERROR",
                    "\(stage): the close should come with a GOAWAY (NO_ERROR); goaway \(r["goaway"]), frames \(r["frames"]), close \(r["close_kind"])")
            if let g = position(r, of: "goaway"), let e = position(r, of: "eof") {
                #expect(g < e, "\(stage): GOAWAY after the close? \(r["events"])")
            }
        }
        // The gateway serves on; the stalled streams were never proxied.
        let ok = try scope.h2client("requests", port: gw.port, ["--plan", Scope.h2Plan([["path": "/echo?after-stall=1"]])])
        #expect(ok["responses"][0]["status"].int == 200, "\(ok)")
        #expect(gw.accessLine(containing: "/echo?after-stall=1") != nil, "\(gw.child.stdout.suffix(1000))")
        let proxied = gw.child.stdout.split(separator: "\n").filter { $0.contains("stalled=") }
        #expect(proxied.isEmpty, "a stalled header block was proxied: \(proxied)")
    }

    // MARK: - 4. An early response stops the upload

    @Test("a complete response to a client still uploading (20 MB announced, one window sent, 502) is followed by RST_STREAM(NO_ERROR); the connection serves on")
    func earlyResponseStopsUpload() throws {
        let scope = try Scope("h2h-early")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try start(scope, upstream: up.addresses[0], workers: 1)
        let r = try scope.h2client("early-response", port: gw.port, [
            "--path", "/dead/upload", "--size", "20000000", "--wait", "5", "--after", "/echo?after-early=1",
        ])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["body_sent"].int == 65535, "\(r)")
        #expect(r["status"].int == 502, "the answer to the upload (upstream down): \(r)")
        #expect(JSONValue(data: Data((r["body"].string ?? "").utf8))["error"].string != nil, "the 502's JSON body: \(r["body"])")
        #expect(r["end_by"].string != nil, "the response should be complete (END_STREAM): events \(r["events"])")
        #expect(r["reset"].string == "NO_ERROR",
                "a complete response to a client still sending should be followed by RST_STREAM(NO_ERROR) (RFC 9113 §8.1); reset \(r["reset"]), events \(r["events"])")
        if let end = position(r, of: "end:1"), let reset = position(r, of: "reset:1") {
            #expect(end < reset, "RST_STREAM should follow the complete response: \(r["events"])")
        }
        // The same connection answers the next stream.
        #expect(r["after_status"].int == 200, "GET on stream 3 after the early response: \(r)")
        #expect(Echo.decode(Data((r["after_body"].string ?? "").utf8))?.target == "/echo?after-early=1", "\(r["after_body"])")
        #expect(r["goaway"].isNull && r["closed"].bool == false, "the connection should stay: \(r)")
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 5. HEAD on the gateway's own errors

    @Test("HEAD on the gateway's own error (502; 431 over HTTP/2): the head with content-length and no body, over HTTP/2 and HTTP/1.1; the connection serves on")
    func headOnGatewayError() throws {
        let scope = try Scope("h2h-head")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try start(scope, upstream: up.addresses[0], workers: 1, http2: "{max_header_list_size: 1024}")

        // HTTP/2: 502 from the stream's session, 431 answered by the connection itself.
        let r = try scope.h2client("raw-requests", port: gw.port, [
            "--plan", Scope.h2Plan([
                ["method": "HEAD", "path": "/dead/head"],
                ["method": "HEAD", "path": "/echo?big=1", "headers": [["x-big", String(repeating: "b", count: 1500)]]],
                ["path": "/echo?after-head=1"],
            ]),
        ])
        #expect(r["error"].isNull, "\(r)")
        for (i, status) in [(0, 502), (1, 431)] {
            let h = r["responses"][i]
            #expect(h["status"].int == status, "HEAD \(i): \(h)")
            #expect(h["end_by"].string != nil && h["reset"].isNull, "HEAD \(i) should end normally: \(h)")
            #expect(h["data_bytes"].int == 0, "HEAD \(i): \(h["data_bytes"]) body bytes in DATA frames (HEAD gets none): \(h)")
            let length = h["headers"].header("content-length")
            #expect(length != nil && (Int(length ?? "") ?? 0) > 0, "HEAD \(i): content-length of the body a GET would get: \(h["headers"])")
        }
        #expect(r["responses"][2]["status"].int == 200 && (r["responses"][2]["data_bytes"].int ?? 0) > 0, "GET after the HEADs: \(r)")
        #expect(r["goaway"].isNull && r["closed"].bool == false, "\(r)")

        // HTTP/1.1, one keep-alive connection: HEAD gets the 502 head alone; the next request
        // on the connection is read from where the head ended.
        let conn = try RawConnection(port: gw.port)
        conn.send("HEAD /dead/h1 HTTP/1.1\r\nHost: h1.test\r\n\r\n")
        do {
            let head = try conn.readResponse(timeout: 5, noBody: true)
            #expect(head.status == 502, "\(head.status) \(head.headers)")
            #expect((Int(head.header("Content-Length") ?? "") ?? 0) > 0, "HEAD 502 over HTTP/1.1: Content-Length expected: \(head.headers)")
            #expect(head.header("Connection")?.lowercased().contains("close") != true, "a 502 of a refused connect is reusable: \(head.headers)")
        } catch {
            Issue.record("HEAD over HTTP/1.1: \(error)")
        }
        conn.send("GET /echo?after-h1-head=1 HTTP/1.1\r\nHost: h1.test\r\n\r\n")
        do {
            let next = try conn.readResponse(timeout: 5)
            #expect(next.status == 200, "the request after the HEAD: \(next.status) \(next.bodyText.prefix(300))")
            #expect(Echo.decode(Data(next.body))?.target == "/echo?after-h1-head=1", "\(next.bodyText.prefix(500))")
        } catch {
            Issue.record("the request after the HEAD on the same connection (a body after the HEAD's 502 would be read as its status line): \(error)")
        }
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 6. MadeYouReset

    /// (streams, streams per write). 100 in one write stay under MAX_CONCURRENT_STREAMS (128);
    /// 300 go in writes of 50, each after the server reset the 50 before: 300 in one write
    /// would open more streams than allowed, which nghttp2 answers with GOAWAY(PROTOCOL_ERROR)
    /// before any reset is sent, and would not test the reset budget.
    @Test("MadeYouReset (CVE-2025-8671): more stream errors than the reset burst get GOAWAY(ENHANCE_YOUR_CALM) and the close; fewer do not; the gateway serves on",
          arguments: [(100, 100), (300, 50)])
    func madeYouReset(count: Int, batch: Int) throws {
        let scope = try Scope("h2h-myr")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try start(scope, upstream: up.addresses[0], workers: 1, http2: "{stream_resets: {burst: 50, per_second: 10}}")

        // `count` streams, each a POST announcing 1 byte and sending 2: nghttp2 resets every one
        // of them on its own (PROTOCOL_ERROR); `batch` of them per write.
        let flood = try scope.h2client("made-you-reset", port: gw.port, ["--count", "\(count)", "--batch", "\(batch)", "--path", "/echo"])
        #expect(flood["error"].isNull, "\(flood)")
        #expect(flood["goaway"]["error_code"].string == "ENHANCE_YOUR_CALM",
                "\(count) stream errors, \(batch) per write (burst 50): GOAWAY \(flood["goaway"]), server resets \(flood["server_resets"]) \(flood["reset_codes"]), closed \(flood["closed"])")
        #expect((flood["server_resets"].int ?? 0) >= 50,
                "the burst (50) should be spent on resets before the GOAWAY: \(flood["server_resets"]) resets \(flood["reset_codes"])")
        #expect(flood["closed"].bool == true, "the connection stayed open: \(flood)")
        #expect(flood["final_status"].isNull, "the stream after the flood was served: \(flood)")

        // Under the burst: every stream is reset, and the connection answers the GET after them.
        let calm = try scope.h2client("made-you-reset", port: gw.port, ["--count", "20", "--path", "/echo"])
        #expect(calm["error"].isNull && calm["goaway"].isNull && calm["closed"].bool == false && calm["final_status"].int == 200,
                "20 stream errors (burst 50): \(calm)")
        #expect(calm["reset_codes"]["PROTOCOL_ERROR"].int == 20, "each bad stream is reset: \(calm["reset_codes"])")

        // A fresh connection is served.
        let after = try scope.h2client("requests", port: gw.port, ["--plan", Scope.h2Plan([["path": "/echo?after-myr=1"]])])
        #expect(after["error"].isNull && after["responses"][0]["status"].int == 200, "after the flood: \(after)")
        #expect(gw.child.isRunning, "the gateway died: \(gw.child.stderr.suffix(2000))")
    }

    // MARK: - 7. RFC 8441 with an upstream that ignores the upgrade

    @Test("extended CONNECT (:protocol websocket) to an upstream that answers the GET with 200, not 101: the client gets 502, not 200")
    func webSocketUpgradeIgnored() throws {
        let scope = try Scope("h2h-ws-ignored")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let gw = try start(scope, upstream: up.addresses[0], workers: 1)
        let r = try scope.h2client("websocket", port: gw.port, ["--path", "/echo?ws-ignored=1"])
        #expect(r["error"].isNull, "\(r)")
        #expect(r["server_enable_connect_protocol"].int == 1, "\(r)")
        #expect(r["status"].int != 200, "a 200 on an extended CONNECT reads as \"tunnel open\"; the upstream never switched: \(r)")
        #expect(r["status"].int == 502, "the upstream answered 200 without upgrading: \(r)")
        // It did reach the upstream (as the HTTP/1.1 upgrade GET), which answered without switching.
        #expect(gw.accessLine(containing: "GET /echo?ws-ignored=1") != nil, "access log: \(gw.child.stdout.suffix(1000))")
        let ok = try scope.h2client("requests", port: gw.port, ["--plan", Scope.h2Plan([["path": "/echo?after-ws=1"]])])
        #expect(ok["responses"][0]["status"].int == 200, "\(ok)")
    }
}

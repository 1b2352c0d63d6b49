// A real browser over HTTP/2: headless Chromium loads a page through a TLS listener of the
// gateway (ALPN h2), and the page's same-origin wss:// WebSocket goes over that HTTP/2
// connection as an extended CONNECT (RFC 8441; the gateway's SETTINGS carry
// SETTINGS_ENABLE_CONNECT_PROTOCOL=1), which the gateway bridges to an HTTP/1.1 Upgrade on the
// upstream. Chromium only sends a WebSocket over HTTP/2 when it already holds an HTTP/2
// connection to the origin that enabled CONNECT protocol; the page load opens that connection.
//
// The page and the WebSocket endpoint are peers/hmrpage.py (two "nodes" of one process: the
// page from one, the socket from the other, each by its own route), the driver is
// peers/browser_cdp.py (as in BrowserTests.swift). The name app.apps.test is mapped to
// 127.0.0.1 by Chromium's host resolver rules, and the test PKI's chain is accepted by its
// SPKI hashes (--ignore-certificate-errors-spki-list), not by ignoring certificate errors.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What browser_cdp.py saw, with the fields of its HTTP/2 view (its docstring has the format).
struct H2BrowserReport: Decodable {
    struct WebSocket: Decodable {
        let url: String?
        let request_headers: [String: String]?
        let status: Int?
        let response_headers: [String: String]?
        let errors: [String]
        let closed: Bool
    }

    struct Visit: Decodable {
        let url: String
        let error: String?
        let state: String?
        let page_port: String?
        let ws_url: String?
        let body: String?
        let log: [String]
        let next_hop_protocol: String?
        let `protocol`: String?
        let status: Int?
        let security_state: String?
        let websockets: [WebSocket]
    }

    let version: String?
    let visits: [Visit]
    let leftover: [Int]
}

/// One WebSocket handshake request as hmrpage.py's --handshake-log wrote it.
struct UpstreamHandshake: Decodable {
    let port: Int
    let path: String
    let headers: [[String]]

    func values(_ name: String) -> [String] {
        headers.filter { $0.count == 2 && $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }
}

@Suite("Chromium over HTTP/2 through the gateway")
struct BrowserH2Tests {
    static let host = "app.apps.test"

    @Test("a Chromium page over HTTPS/h2 whose WebSocket goes over RFC 8441")
    func pageAndWebSocketOverH2() throws {
        let scope = try Scope("browser-h2")
        defer { scope.close() }
        let handshakeLog = scope.path("handshakes.jsonl")
        let nodes = try scope.startPeer("hmrpage.py", python: try scope.venvPython(), ["--handshake-log", handshakeLog, "0", "0"],
                                        name: "hmrpage", timeout: 20) { portList($0, count: 2) }.ready
        let (pagePort, socketPort) = (nodes[0], nodes[1])

        let pki = try ListenerPKI.shared()
        let certs = scope.path("certs")
        try pki.install(["wild"], into: certs)
        let port = try Ports.free()
        let wsTarget = "/ws/alice/hmr?token=t1"
        let yaml = """
        workers: 2
        listeners:
          - name: secure
            address: 127.0.0.1:\(port)
            tls: {certificates: \(certs), default_certificate: wild}
        logging: {access: stdout, error: stderr}
        admin: {address: "off"}
        routes:
          - name: socket
            path_prefix: /ws/alice/hmr
            upstreams: ["127.0.0.1:\(socketPort)"]
          - name: page
            upstreams: ["127.0.0.1:\(pagePort)"]

        """
        let gw = try scope.startGateway(yaml: yaml, port: port)
        let origin = "https://\(Self.host):\(port)"

        let report = try browse(scope, [origin + "/ws/alice/"],
                                chromiumArgs: ["--host-resolver-rules=MAP *.apps.test 127.0.0.1"],
                                trust: [pki.rootCertificate, certs + "/wild.crt"])
        let visit = try #require(report.visits.first)
        let seen = "Chromium \(report.version ?? "?"): state \(visit.state ?? "-"), page log \(visit.log), websockets \(visit.websockets), page text \((visit.body ?? "").prefix(300).debugDescription)"
        #expect(visit.error == nil, "navigation failed: \(visit.error ?? "") (\(seen))")
        #expect(visit.page_port == String(pagePort), "page came from \(visit.page_port ?? "nowhere")")
        #expect(visit.status == 200, "main document status \(visit.status.map(String.init) ?? "none")")

        // (a) The main document came over HTTP/2, by both of Chromium's accounts.
        #expect(visit.protocol == "h2", "Network.responseReceived protocol of the document: \(visit.protocol ?? "none")")
        #expect(visit.next_hop_protocol == "h2", "navigation entry nextHopProtocol: \(visit.next_hop_protocol ?? "none")")

        // (b) The same-origin wss:// socket reached the socket node and its echo came back: the
        // whole exchange of hmrpage.py, a 200,000-character message and a clean close included.
        #expect(visit.ws_url == "wss://\(Self.host):\(port)\(wsTarget)")
        let expected = BrowserTests.expectedLog(node: socketPort, wsTarget: wsTarget)
        #expect(visit.log.filter { !$0.hasPrefix("msg:uid:") } == expected, "\(seen)")
        #expect(visit.log.contains("msg:echo:hello-from-browser"), "no echo came back: \(seen)")
        #expect(visit.state == "closed", "\(seen)")
        #expect(visit.websockets.count == 1 && visit.websockets.allSatisfy { $0.errors.isEmpty },
                "DevTools WebSocket events: \(visit.websockets)")
        // Chromium's own account of the handshake: a 200 answers an extended CONNECT (RFC 8441
        // §5), a 101 would have been an HTTP/1.1 Upgrade on a connection of its own.
        #expect(visit.websockets.first?.status == 200, "WebSocket handshake status in DevTools: \(visit.websockets.first?.status.map(String.init) ?? "none") (\(visit.websockets))")

        // (c) The gateway saw the socket as an HTTP/2 stream (extended CONNECT, not a second
        // connection speaking HTTP/1.1) and logged its tunnel, when it ended, with status 101.
        // Every request of the browser came over HTTP/2.
        _ = gw.accessLine(containing: "\"GET \(wsTarget)\" ", timeout: 10)  // written when the tunnel ends
        let access = gw.child.stdout.split(separator: "\n").map(String.init)
        let socketLines = access.filter { $0.contains("\"GET \(wsTarget)\" ") }
        #expect(socketLines.count == 1, "access lines of the socket: \(socketLines); all: \(access); gateway stderr: \(gw.child.stderr.suffix(2000))")
        if let line = socketLines.first {
            #expect(line.hasSuffix(" proto=h2"), "the WebSocket did not come over HTTP/2: \(line)")
            // Logged with the 200 the browser saw on its CONNECT stream (RFC 8441 §5), not the upstream's 101.
            #expect(line.contains("\" 200 "), "the socket's tunnel was not logged with 200: \(line); gateway stderr: \(gw.child.stderr.suffix(2000))")
            #expect(line.contains(" upstream=127.0.0.1:\(socketPort) "), "\(line)")
        }
        let pageLines = access.filter { $0.contains("\"GET /ws/alice/\" ") }
        #expect(pageLines.count == 1 && pageLines.allSatisfy { $0.contains("\" 200 ") && $0.hasSuffix(" proto=h2") },
                "access lines of the page: \(pageLines)")
        #expect(access.allSatisfy { $0.hasSuffix(" proto=h2") }, "requests that did not come over HTTP/2: \(access.filter { !$0.hasSuffix(" proto=h2") })")

        // The socket node got an HTTP/1.1 Upgrade (hmrpage.py's websockets parses nothing else)
        // for the page's target, with the fields of RFC 6455 §4.1 and the browser's subprotocol.
        let handshakes = readHandshakes(handshakeLog)
        #expect(handshakes.count == 1, "handshake requests the nodes saw: \(handshakes)")
        if let h = handshakes.first {
            #expect(h.port == socketPort && h.path == wsTarget, "\(h)")
            #expect(h.values("Upgrade").map { $0.lowercased() } == ["websocket"], "\(h.headers)")
            #expect(h.values("Connection").contains { $0.lowercased().contains("upgrade") }, "\(h.headers)")
            #expect(h.values("Sec-WebSocket-Version") == ["13"], "\(h.headers)")
            #expect(h.values("Sec-WebSocket-Key").count == 1 && Data(base64Encoded: h.values("Sec-WebSocket-Key")[0])?.count == 16,
                    "\(h.headers)")
            #expect(h.values("Sec-WebSocket-Protocol") == ["vite-hmr"], "\(h.headers)")
            #expect(h.values("Host") == ["\(Self.host):\(port)"], "\(h.headers)")
        }

        #expect(report.leftover.isEmpty, "browser_cdp.py left Chromium processes: \(report.leftover)")
        scope.expectNoChromiumLeft()
    }

    // MARK: - Helpers

    private func readHandshakes(_ path: String) -> [UpstreamHandshake] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(UpstreamHandshake.self, from: Data($0.utf8)) }
    }

    /// Opens the URLs in one headless Chromium tab (browser_cdp.py) with extra command-line
    /// arguments, accepting chains that contain a certificate of the PEM files in `trust`.
    private func browse(_ scope: Scope, _ urls: [String], chromiumArgs: [String], trust: [String]) throws -> H2BrowserReport {
        // `--chromium-arg=<arg>`: argparse would take a separate "--..." value for an option.
        let extra = chromiumArgs.map { "--chromium-arg=" + $0 } + trust.flatMap { ["--trust-cert", $0] }
        return try scope.browse(urls, extra: extra, as: H2BrowserReport.self)
    }
}

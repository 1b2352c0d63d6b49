import COpenSSL
import Glibc
import Testing
@testable import TLSTerminator

/// A real client (OpenSSL's C API) against a `TLSConnection`, over TCP on 127.0.0.1, both driven
/// non-blockingly from the test thread.
@Suite("Handshake over loopback")
struct HandshakeTests {
    let set: CertificateSet

    init() throws {
        set = try CertificateSet.load(directory: TestPKI.shared.certs)
    }

    private func context(alpn: [String] = ["http/1.1"]) throws -> TLSContext {
        try TLSContext(certificates: set, settings: TLSSettings(alpn: alpn))
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func sniSelectsTheCertificateAndTheChainVerifies(version: Int32) throws {
        let ctx = try context()
        for (sni, cn, names) in [("b.example.com", "b.example.com", ["b.example.com"]),
                                 ("x.apps.example.com", "*.apps.example.com", ["*.apps.example.com"]),
                                 ("special.apps.example.com", "special.apps.example.com", ["special.apps.example.com"]),
                                 ("legacy.example.com", "legacy.example.com", ["legacy.example.com"])] {
            let s = Session(ctx, .init(serverName: sni, verifyHost: sni, maxVersion: version))
            #expect(s.ok, "\(sni): \(s.result) \(s.client.lastError)")
            #expect(s.client.verifyResult == 0)  // X509_V_OK: leaf + intermediate reached the test root
            #expect(s.client.peer?.commonName == cn)
            #expect(s.server.certificate.names == names)
            #expect(s.server.serverName == sni)
            #expect(s.server.protocolVersion == (version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2"))
        }
    }

    @Test func unknownOrMissingServerNameGetsTheDefault() throws {
        let ctx = try context()
        for sni in ["nowhere.example.org", nil] {
            let s = Session(ctx, .init(serverName: sni))
            #expect(s.ok)
            #expect(s.client.peer?.commonName == "a.example.com")
            #expect(s.server.certificate === set.defaultCertificate)
            #expect(s.server.serverName == sni)
        }
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func keyTypeFollowsTheClientsSignatureAlgorithms(version: Int32) throws {
        let ctx = try context()
        let cases: [(String?, KeyType)] = [
            (nil, .ecdsa),  // OpenSSL's client offers ECDSA first
            ("ECDSA+SHA256:ECDSA+SHA384", .ecdsa),
            ("RSA-PSS+SHA256:RSA+SHA256", .rsa),
            ("rsa_pss_rsae_sha256", .rsa),
        ]
        for (sigalgs, expected) in cases {
            let s = Session(ctx, .init(serverName: "a.example.com", verifyHost: "a.example.com", sigalgs: sigalgs, maxVersion: version))
            #expect(s.ok, "\(String(describing: sigalgs)): \(s.result)")
            #expect(s.client.peer?.key == expected, "\(String(describing: sigalgs))")
            #expect(s.server.certificate.keyTypes == [.ecdsa, .rsa])
        }
    }

    @Test func alpnPicksTheServersFirstPreferenceTheClientOffers() throws {
        let h2 = try context(alpn: ["h2", "http/1.1"])
        var s = Session(h2, .init(serverName: "b.example.com", alpn: ["http/1.1", "h2"]))
        #expect(s.ok)
        #expect(s.server.alpnProtocol == "h2")
        #expect(s.client.alpn == "h2")

        s = Session(h2, .init(serverName: "b.example.com", alpn: ["http/1.1"]))
        #expect(s.server.alpnProtocol == "http/1.1")

        let h1 = try context(alpn: ["http/1.1"])
        s = Session(h1, .init(serverName: "b.example.com", alpn: ["h2", "http/1.1"]))
        #expect(s.server.alpnProtocol == "http/1.1")
    }

    @Test func alpnWithoutOverlapOrWithoutOfferContinuesWithoutALPN() throws {
        let h2 = try context(alpn: ["h2", "http/1.1"])
        var s = Session(h2, .init(serverName: "b.example.com", alpn: ["spdy/3", "imap"]))
        #expect(s.ok)
        #expect(s.server.alpnProtocol == nil)
        #expect(s.client.alpn == nil)
        s = Session(h2, .init(serverName: "b.example.com"))
        #expect(s.ok)
        #expect(s.server.alpnProtocol == nil)
    }

    @Test(arguments: ["a.example.com", "x.apps.example.com", "nowhere.example.org"])
    func alpnWorksOnEveryCertificatesContext(sni: String) throws {
        // ALPN is chosen on the SSL_CTX that SNI switched to, so each must carry the callback.
        let s = Session(try context(alpn: ["h2", "http/1.1"]), .init(serverName: sni, alpn: ["h2"]))
        #expect(s.ok)
        #expect(s.server.alpnProtocol == "h2")
    }

    @Test func dataFlowsBothWaysAndPendingIsReported() throws {
        let s = Session(try context(), .init(serverName: "b.example.com"))
        #expect(s.ok)
        // Large enough to fill the socket buffers: partial writes and wantWrite on the way.
        let down = pattern(3 << 20, seed: 1)
        #expect(s.serverToClient(down) == down)
        let up = pattern(1 << 20, seed: 2)
        #expect(s.clientToServer(up) == up)

        // One 1000-byte record read 100 bytes at a time: the rest stays decrypted in OpenSSL.
        #expect(s.client.write(pattern(1_000)[...]) == 1_000)
        var buf = [UInt8](repeating: 0, count: 100)
        var first = TLSIO.wantRead
        for _ in 0..<1_000 where first == .wantRead {
            first = buf.withUnsafeMutableBytes { s.server.read($0.baseAddress!, $0.count) }
        }
        #expect(first == .bytes(100))
        #expect(s.server.pending == 900)
        #expect(s.server.write(buf, 0) == .bytes(0))
    }

    @Test func cleanCloseFromTheClient() throws {
        let s = Session(try context(), .init(serverName: "b.example.com"))
        #expect(s.ok)
        #expect(SSL_shutdown(s.client.ssl) >= 0)  // close_notify
        #expect(s.serverReadOutcome() == .closed)
        #expect(s.server.shutdown() == .done)
    }

    @Test func cleanCloseFromTheServer() throws {
        let s = Session(try context(), .init(serverName: "b.example.com"))
        #expect(s.ok)
        #expect(s.server.shutdown() == .done)
        var outcome: [UInt8]?
        for _ in 0..<1_000 where outcome == nil { outcome = s.client.read() }
        #expect(outcome == [])
        #expect(SSL_get_error(s.client.ssl, 0) == SSL_ERROR_ZERO_RETURN)
    }

    @Test func abruptEOFReadsAsClosed() throws {
        let s = Session(try context(), .init(serverName: "b.example.com"))
        #expect(s.ok)
        s.pair.closeClient()
        #expect(s.serverReadOutcome() == .closed)
    }

    @Test func oldProtocolVersionsFail() throws {
        let s = Session(try context(), .init(serverName: "b.example.com", maxVersion: TLS1_1_VERSION, minVersion: TLS1_VERSION))
        #expect(!s.ok)
        if case .failed(let why) = s.result.server {
            #expect(!why.isEmpty)
        } else {
            Issue.record("server should fail, got \(s.result.server)")
        }
    }

    @Test func plainHTTPOnTheTLSPortFailsWithAReason() throws {
        let pair = TCPPair()
        let server = try context().makeConnection(fd: pair.server)!
        let req = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(req.withUnsafeBytes { send(pair.client, $0.baseAddress, $0.count, 0) } == req.count)
        var p = TLSProgress.wantRead
        for _ in 0..<1_000 where p == .wantRead { p = server.handshake() }
        #expect(p == .failed("handshake: http request"))
        #expect(server.shutdown() == .done)  // nothing to send after a fatal error
    }

    @Test func connectionsOutliveTheirContextAcrossAReload() throws {
        var ctx: TLSContext? = try context()
        let s = Session(ctx!, .init(serverName: "b.example.com"))
        #expect(s.ok)
        // Reload: a new set and a new context; the worker drops the old one.
        let reloaded = try TLSContext(certificates: try CertificateSet.load(directory: TestPKI.shared.certs), settings: TLSSettings())
        ctx = nil
        let down = pattern(100_000)
        #expect(s.serverToClient(down) == down)
        let fresh = Session(reloaded, .init(serverName: "b.example.com"))
        #expect(fresh.ok)
        #expect(fresh.server.certificate.names == ["b.example.com"])
    }

    @Test func alpnSelectionOnWireFormat() {
        func pick(_ server: [String], _ client: [UInt8]) -> String? {
            let wire = TLSSettings(alpn: server).alpnWire!
            return wire.withUnsafeBufferPointer { s in
                client.withUnsafeBufferPointer { c in
                    selectALPN(server: s, client: c).map { String(decoding: $0, as: UTF8.self) }
                }
            }
        }
        let offer: [UInt8] = [8] + Array("http/1.1".utf8) + [2] + Array("h2".utf8)
        #expect(pick(["h2", "http/1.1"], offer) == "h2")
        #expect(pick(["http/1.1", "h2"], offer) == "http/1.1")
        #expect(pick(["h3"], offer) == nil)
        #expect(pick(["h2"], [9] + Array("http/1.1".utf8)) == nil)  // truncated list
        #expect(pick(["h2"], [0, 2] + Array("h2".utf8)) == nil)  // empty name: stop
        #expect(TLSSettings(alpn: [""]).alpnWire == nil)
        #expect(TLSSettings(alpn: [String(repeating: "x", count: 256)]).alpnWire == nil)
    }
}

import COpenSSL
import Glibc
import Testing
@testable import TLSTerminator

/// `TLSClientContext` (the edge agent's side) against a server `TLSContext`, both `TLSConnection`s
/// driven non-blockingly over loopback TCP.
@Suite("Client handshake over loopback")
struct ClientHandshakeTests {
    let server: TLSContext

    init() throws {
        server = try TLSContext(certificates: try CertificateSet.load(directory: TestPKI.shared.certs),
                                settings: TLSSettings(alpn: ["http/1.1"]))
    }

    /// Steps both handshakes until both are done or one fails; the client's outcome.
    private func handshake(name: String, caFile: String? = TestPKI.shared.rootCertificate) throws -> (TLSProgress, TLSConnection, TLSConnection) {
        let pair = TCPPair()
        let clientContext = try TLSClientContext(caFile: caFile)
        let c = try #require(clientContext.makeConnection(fd: pair.client, serverName: name))
        let s = try #require(server.makeConnection(fd: pair.server))
        var cr = TLSProgress.wantWrite, sr = TLSProgress.wantRead
        for _ in 0..<200 {
            if cr != .done { cr = c.handshake() }
            if sr != .done { sr = s.handshake() }
            if case .failed = cr { break }
            if case .failed = sr { break }
            if cr == .done && sr == .done { break }
        }
        withExtendedLifetime(pair) {}
        return (cr, c, s)
    }

    @Test func verifiesTheServerAndSendsSNIAndALPN() throws {
        let (result, client, srv) = try handshake(name: "b.example.com")
        #expect(result == .done)
        #expect(srv.serverName == "b.example.com")
        #expect(srv.certificate.names == ["b.example.com"])
        #expect(client.alpnProtocol == "http/1.1")
    }

    @Test func aWrongHostNameFails() throws {
        let (result, _, _) = try handshake(name: "nowhere.example.org")
        guard case .failed(let why) = result else { Issue.record("handshake with a wrong name: \(result)"); return }
        #expect(why.contains("hostname mismatch"), "\(why)")
    }

    @Test func anUntrustedRootFails() throws {
        // The system store does not hold the test root.
        let (result, _, _) = try handshake(name: "b.example.com", caFile: nil)
        guard case .failed = result else { Issue.record("handshake without the test root: \(result)"); return }
    }
}

import COpenSSL
import Glibc
import Testing
@testable import TLSTerminator

/// A ClientHello the gateway read before deciding to terminate (to look at its SNI) is handed to
/// the connection with `makeConnection(fd:received:)`; OpenSSL must see exactly the bytes the
/// client sent, in order, whatever part of them was read up front.
@Suite("TLSConnection: bytes received before the handshake")
struct ReceivedBytesTests {
    func context() throws -> TLSContext {
        try TLSContext(certificates: try CertificateSet.load(directory: TestPKI.shared.certs), settings: TLSSettings())
    }

    /// Reads up to `limit` bytes of what the client sent so far (waiting for the first ones).
    func peek(_ fd: Int32, _ limit: Int) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max(limit, 1))
        for _ in 0..<5_000 {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, limit, 0) }
            if n > 0 { return Array(buf[0..<n]) }
            usleep(200)
        }
        return []
    }

    @Test("Handshake and data after 0, 1, 5 (a record header) or all of the ClientHello was read first",
          arguments: [0, 1, 5, 65_536])
    func handshakeAfterPeek(limit: Int) throws {
        let pair = TCPPair()
        let client = TestClient(fd: pair.client, .init(serverName: "b.example.com"))
        #expect(client.handshakeStep() == 0)  // the ClientHello is on its way
        let received = limit == 0 ? [] : peek(pair.server, limit)
        #expect(limit == 0 || !received.isEmpty)
        let server = try received.withUnsafeBytes { try #require(context().makeConnection(fd: pair.server, received: $0)) }
        let result = runHandshake(client, server)
        #expect(result.client && result.server == .done, "\(result) \(client.lastError)")
        // SNI was in the bytes read up front (for limit > 5): the certificate still follows it.
        #expect(server.serverName == "b.example.com")
        #expect(server.certificate.names == ["b.example.com"])
        let s = Session(pair: pair, client: client, server: server, result: result)
        let up = pattern(50_000)
        #expect(s.clientToServer(up) == up)
        let down = pattern(70_000, seed: 3)
        #expect(s.serverToClient(down) == down)
    }

    @Test("A client that closes after its ClientHello was read: the handshake fails, no hang")
    func closedAfterPeek() throws {
        let pair = TCPPair()
        let client = TestClient(fd: pair.client, .init(serverName: "b.example.com"))
        #expect(client.handshakeStep() == 0)
        let received = peek(pair.server, 65_536)
        pair.closeClient()
        let server = try received.withUnsafeBytes { try #require(context().makeConnection(fd: pair.server, received: $0)) }
        var p = TLSProgress.wantRead
        for _ in 0..<5_000 where p == .wantRead || p == .wantWrite {
            p = server.handshake()
            usleep(100)
        }
        guard case .failed = p else { Issue.record("handshake should fail, got \(p)"); return }
    }
}

import COpenSSL
import Glibc
import Synchronization
import Testing
@testable import TLSTerminator

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    let now = Atomic<Int64>(1_000_000)
    func advance(_ s: Int64) { now.add(s, ordering: .relaxed) }
    var read: @Sendable () -> Int64 { { [self] in now.load(ordering: .relaxed) } }
}

@Suite("Session tickets")
struct ResumptionTests {
    let set: CertificateSet

    init() throws {
        set = try CertificateSet.load(directory: TestPKI.shared.certs)
    }

    /// A full handshake, then data from the server so the client has processed its ticket (TLS
    /// 1.3 sends tickets after the handshake). Returns the client's session (caller frees).
    /// The client closes with close_notify: OpenSSL marks the session of an SSL freed without
    /// it as not resumable (ssl_clear_bad_session), as a careful client would want.
    private func firstSession(_ ctx: TLSContext, version: Int32) -> OpaquePointer? {
        let s = Session(ctx, .init(serverName: "b.example.com", maxVersion: version))
        #expect(s.ok)
        #expect(!s.server.resumed)
        #expect(s.serverToClient(Array("hello".utf8)) == Array("hello".utf8))
        SSL_shutdown(s.client.ssl)
        return s.client.session()
    }

    private func resumes(_ ctx: TLSContext, _ session: OpaquePointer?, version: Int32) -> Bool {
        let s = Session(ctx, .init(serverName: "b.example.com", maxVersion: version, session: session))
        #expect(s.ok)
        #expect(s.serverToClient(Array("again".utf8)) == Array("again".utf8))
        #expect(s.server.resumed == s.client.resumed)
        SSL_shutdown(s.client.ssl)
        return s.server.resumed
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func ticketResumesAcrossOneRotationButNotTwo(version: Int32) throws {
        let clock = ManualClock()
        let keys = TicketKeys(rotation: 600, clock: clock.read)
        let ctx = try TLSContext(certificates: set, settings: TLSSettings(ticketKeys: keys))
        let session = firstSession(ctx, version: version)
        defer { SSL_SESSION_free(session) }
        #expect(session != nil)
        #expect(resumes(ctx, session, version: version))

        clock.advance(600)  // the ticket's key is now the previous one
        #expect(resumes(ctx, session, version: version))

        clock.advance(600)  // two rotations: the key is gone
        #expect(!resumes(ctx, session, version: version))
    }

    @Test func renewedTicketAfterRotationKeepsResuming() throws {
        let clock = ManualClock()
        let keys = TicketKeys(rotation: 600, clock: clock.read)
        let ctx = try TLSContext(certificates: set, settings: TLSSettings(ticketKeys: keys))
        let old = firstSession(ctx, version: TLS1_3_VERSION)
        defer { SSL_SESSION_free(old) }
        clock.advance(600)
        // Resuming with the previous key returns 2 from the callback: a fresh ticket under the
        // current key comes back, and that one survives the next rotation.
        let s = Session(ctx, .init(serverName: "b.example.com", session: old))
        #expect(s.server.resumed)
        #expect(s.serverToClient(Array("x".utf8)) == Array("x".utf8))
        SSL_shutdown(s.client.ssl)
        let renewed = s.client.session()
        defer { SSL_SESSION_free(renewed) }
        clock.advance(600)
        #expect(!resumes(ctx, old, version: TLS1_3_VERSION))
        #expect(resumes(ctx, renewed, version: TLS1_3_VERSION))
    }

    @Test func workersSharingKeysResumeEachOthersTickets() throws {
        let keys = TicketKeys(rotation: 3_600)
        let worker1 = try TLSContext(certificates: set, settings: TLSSettings(ticketKeys: keys))
        let worker2 = try TLSContext(certificates: set, settings: TLSSettings(ticketKeys: keys))
        let session = firstSession(worker1, version: TLS1_3_VERSION)
        defer { SSL_SESSION_free(session) }
        #expect(resumes(worker2, session, version: TLS1_3_VERSION))

        let stranger = try TLSContext(certificates: set, settings: TLSSettings(ticketKeys: TicketKeys()))
        #expect(!resumes(stranger, session, version: TLS1_3_VERSION))
    }

    @Test(arguments: [TLS1_3_VERSION, TLS1_2_VERSION])
    func ticketsOffMeansFullHandshakes(version: Int32) throws {
        let ctx = try TLSContext(certificates: set, settings: TLSSettings(ticketKeys: nil))
        let session = firstSession(ctx, version: version)
        defer { SSL_SESSION_free(session) }
        #expect(!resumes(ctx, session, version: version))
    }

    @Test func keysAdvanceLazilyByPeriod() {
        let clock = ManualClock()
        let keys = TicketKeys(rotation: 10, clock: clock.read)
        let a = keys.keys(for: keys.period())
        #expect(a.previous == nil)
        #expect(keys.keys(for: a.period).current === a.current)
        clock.advance(10)
        let b = keys.keys(for: keys.period())
        #expect(b.period == a.period + 1)
        #expect(b.previous === a.current)
        #expect(b.current !== a.current)
        // A caller still on an older period gets the newer keys, not a rollback.
        #expect(keys.keys(for: a.period).current === b.current)
        clock.advance(30)  // skipped periods: nothing from before is kept
        let c = keys.keys(for: keys.period())
        #expect(c.previous == nil)
    }

    @Test func workerCacheCopiesTheKeysAndFindsThemByName() {
        let clock = ManualClock()
        let keys = TicketKeys(rotation: 10, clock: clock.read)
        let cache = TicketKeyCache(keys)
        cache.refresh()
        let first = keys.keys(for: keys.period()).current
        #expect(memcmp(cache.current, first.storage.baseAddress!, TicketKey.size) == 0)
        #expect(cache.current != UnsafeRawPointer(first.storage.baseAddress!))  // a copy, not shared memory
        #expect(cache.previous == nil)
        #expect(cache.block(named: first.storage.baseAddress!)?.previous == false)
        clock.advance(10)
        cache.refresh()
        #expect(cache.block(named: first.storage.baseAddress!)?.previous == true)
        let unknown = [UInt8](repeating: 0xEE, count: TicketKey.nameLength)
        #expect(cache.block(named: unknown) == nil)
        clock.advance(10)
        cache.refresh()
        #expect(cache.block(named: first.storage.baseAddress!) == nil)
    }
}

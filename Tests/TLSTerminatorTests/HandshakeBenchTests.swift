import COpenSSL
import Dispatch
import Foundation
import Glibc
import Testing
@testable import TLSTerminator

/// Handshakes per second with 1..N worker threads, each with its own `TLSContext` and its own
/// client SSL_CTX, over socketpairs. Off unless asked for:
///
///     TLS_BENCH=4 TLS_THREADS=1,2 swift test --skip-build --filter HandshakeBench
///
/// (seconds per run, thread counts). The client runs in the same thread and costs more than the
/// server (it decodes the server's certificate each time), so read the numbers as relative.
@Suite("Handshake throughput (opt-in)")
struct HandshakeBenchTests {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TLS_BENCH"] != nil))
    func handshakesPerSecond() throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = Double(env["TLS_BENCH"] ?? "") ?? 4
        let threadCounts = (env["TLS_THREADS"] ?? "1,2").split(separator: ",").compactMap { Int($0) }
        let set = try CertificateSet.load(directory: TestPKI.shared.certs)
        let keys = TicketKeys()
        for resume in [false, true] {
            for threads in threadCounts {
                let counts = Counts(threads)
                DispatchQueue.concurrentPerform(iterations: threads) { i in
                    counts.set(i, run(set: set, keys: keys, seconds: seconds, resume: resume))
                }
                print("TLS bench: \(resume ? "resumed" : "full") handshakes, \(threads) thread(s): "
                      + "\(Int(Double(counts.total) / seconds))/s")
            }
        }
    }

    private final class Counts: @unchecked Sendable {
        // Each slot written by one thread; read after concurrentPerform returns.
        private var values: [Int]
        init(_ n: Int) { values = Array(repeating: 0, count: n) }
        func set(_ i: Int, _ v: Int) { values.withUnsafeMutableBufferPointer { $0[i] = v } }
        var total: Int { values.reduce(0, +) }
    }

    private func run(set: CertificateSet, keys: TicketKeys, seconds: Double, resume: Bool) -> Int {
        let server = try! TLSContext(certificates: set, settings: TLSSettings(ticketKeys: keys))
        let client = SSL_CTX_new(TLS_client_method())!
        defer { SSL_CTX_free(client) }
        var session: OpaquePointer?
        defer { if let session { SSL_SESSION_free(session) } }
        let end = Date().addingTimeInterval(seconds)
        var n = 0
        while Date() < end {
            var fds: [Int32] = [0, 0]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            let ssl = SSL_new(client)!
            _ = cossl_set_host_name(ssl, "b.example.com")
            if resume, let session { SSL_set_session(ssl, session) }
            SSL_set_fd(ssl, fds[0])
            SSL_set_connect_state(ssl)
            let conn = server.makeConnection(fd: fds[1])!
            var clientDone = false, serverDone = false
            for _ in 0..<100 where !(clientDone && serverDone) {
                if !clientDone {
                    let r = SSL_do_handshake(ssl)
                    clientDone = r == 1
                    if r != 1 {
                        let e = SSL_get_error(ssl, r)
                        precondition(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    }
                }
                if !serverDone {
                    let p = conn.handshake()
                    if case .failed(let why) = p { preconditionFailure(why) }
                    serverDone = p == .done
                }
            }
            precondition(clientDone && serverDone)
            if resume && session == nil {
                // Let the client take its TLS 1.3 ticket, then keep that session.
                _ = conn.write("x", 1)
                var b: UInt8 = 0
                while SSL_read(ssl, &b, 1) <= 0 {}
                SSL_shutdown(ssl)
                session = SSL_get1_session(ssl)
            } else if resume {
                precondition(conn.resumed)
            }
            SSL_shutdown(ssl)
            SSL_free(ssl)
            close(fds[0])
            close(fds[1])
            n += 1
        }
        return n
    }
}

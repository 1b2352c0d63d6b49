import COpenSSL
import Glibc
import TLSTerminator

/// A connected TCP pair on 127.0.0.1, both ends non-blocking. Closed on deinit.
final class TCPPair {
    let client: Int32
    let server: Int32
    private var clientOpen = true

    init() {
        _ = signal(SIGPIPE, SIG_IGN)  // OpenSSL's socket BIO writes with write(2)
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(listener >= 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                precondition(bind(listener, p, len) == 0)
                precondition(listen(listener, 1) == 0)
                precondition(getsockname(listener, p, &len) == 0)
            }
        }
        let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, len) } }
        precondition(r == 0)
        let s = accept(listener, nil, nil)
        precondition(s >= 0)
        close(listener)
        for fd in [c, s] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        client = c
        server = s
    }

    /// Closes the client end abruptly (no close_notify).
    func closeClient() {
        if clientOpen { close(client); clientOpen = false }
    }

    deinit {
        closeClient()
        close(server)
    }
}

/// A TLS client made with the C API, as a browser would be; non-blocking.
final class TestClient {
    let ctx: OpaquePointer
    let ssl: OpaquePointer

    struct Options {
        var serverName: String?
        /// Verify the chain against the test root and this host name.
        var verifyHost: String?
        var alpn: [String] = []
        var sigalgs: String?
        var maxVersion: Int32 = TLS1_3_VERSION
        var minVersion: Int32 = TLS1_2_VERSION
        var session: OpaquePointer?
    }

    init(fd: Int32, _ o: Options) {
        ctx = SSL_CTX_new(TLS_client_method())!
        if o.minVersion < TLS1_2_VERSION {
            SSL_CTX_set_security_level(ctx, 0)
            _ = SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0")
        }
        if let host = o.verifyHost {
            precondition(SSL_CTX_load_verify_locations(ctx, TestPKI.shared.rootCertificate, nil) == 1)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            ssl = SSL_new(ctx)!
            precondition(SSL_set1_host(ssl, host) == 1)
        } else {
            ssl = SSL_new(ctx)!
        }
        precondition(cossl_set_versions(ssl, o.minVersion, o.maxVersion) == 1)
        if let name = o.serverName { precondition(cossl_set_host_name(ssl, name) == 1) }
        if !o.alpn.isEmpty {
            var wire: [UInt8] = []
            for p in o.alpn { wire.append(UInt8(p.utf8.count)); wire += Array(p.utf8) }
            precondition(SSL_set_alpn_protos(ssl, wire, UInt32(wire.count)) == 0)  // 0 is success here
        }
        if let s = o.sigalgs { precondition(cossl_set_sigalgs(ssl, s) == 1) }
        if let s = o.session { precondition(SSL_set_session(ssl, s) == 1) }
        SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
    }

    /// 1 done, 0 wants I/O, -1 failed.
    func handshakeStep() -> Int {
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 { return 1 }
        let e = SSL_get_error(ssl, r)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return 0 }
        let reason = ERR_reason_error_string(ERR_peek_error()).map { String(cString: $0) } ?? "-"
        lastError = "client handshake: SSL_get_error \(e): \(reason)"
        return -1
    }

    var lastError = ""

    /// Reads what is there: bytes, nil on would-block, [] on close.
    func read(max: Int = 65_536) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: max)
        var n = 0
        ERR_clear_error()
        let r = buf.withUnsafeMutableBytes { SSL_read_ex(ssl, $0.baseAddress, $0.count, &n) }
        if r == 1 { return Array(buf[0..<n]) }
        let e = SSL_get_error(ssl, r)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return nil }
        return []
    }

    /// Writes some of `bytes`; the count taken (0 on would-block).
    func write(_ bytes: ArraySlice<UInt8>) -> Int {
        var n = 0
        ERR_clear_error()
        let r = bytes.withUnsafeBytes { SSL_write_ex(ssl, $0.baseAddress, $0.count, &n) }
        return r == 1 ? n : 0
    }

    var alpn: String? {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    var resumed: Bool { SSL_session_reused(ssl) == 1 }
    var verifyResult: Int { SSL_get_verify_result(ssl) }
    var version: String { String(cString: SSL_get_version(ssl)) }

    /// The server certificate's subject commonName and key type.
    var peer: (commonName: String, key: KeyType)? {
        guard let x = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(x) }
        var p: UnsafeMutablePointer<UInt8>?
        let n = cossl_x509_common_name(x, &p)
        defer { if let p { cossl_free(p) } }
        let cn = n > 0 && p != nil ? String(decoding: UnsafeBufferPointer(start: p!, count: Int(n)), as: UTF8.self) : ""
        let kind = cossl_pkey_kind(X509_get0_pubkey(x))
        return (cn, kind == 1 ? .ecdsa : kind == 2 ? .rsa : .other)
    }

    /// The session to resume with later (caller frees with SSL_SESSION_free).
    func session() -> OpaquePointer? { SSL_get1_session(ssl) }
}

/// Runs both handshakes until each is done or one fails. Returns the server's last progress
/// and whether the client finished.
@discardableResult
func runHandshake(_ client: TestClient, _ server: TLSConnection) -> (client: Bool, server: TLSProgress) {
    var clientDone = false
    var progress = TLSProgress.wantRead
    for _ in 0..<5_000 {
        if !clientDone {
            let r = client.handshakeStep()
            if r < 0 { return (false, progress) }
            clientDone = r == 1
        }
        if progress != .done {
            progress = server.handshake()
            if case .failed = progress { return (clientDone, progress) }
        }
        if clientDone && progress == .done { break }
        usleep(200)
    }
    return (clientDone, progress)
}

/// A handshaken pair: server connection from `context`, client with `options`.
struct Session {
    let pair: TCPPair
    let client: TestClient
    let server: TLSConnection
    let result: (client: Bool, server: TLSProgress)

    init(_ context: TLSContext, _ options: TestClient.Options) {
        pair = TCPPair()
        client = TestClient(fd: pair.client, options)
        server = context.makeConnection(fd: pair.server)!
        result = runHandshake(client, server)
    }

    /// A pair handshaken by the caller (for tests that set the server up themselves).
    init(pair: TCPPair, client: TestClient, server: TLSConnection, result: (client: Bool, server: TLSProgress)) {
        self.pair = pair
        self.client = client
        self.server = server
        self.result = result
    }

    var ok: Bool { result.client && result.server == .done }

    /// Server sends `bytes`, client receives them; both sides non-blocking, interleaved.
    func serverToClient(_ bytes: [UInt8]) -> [UInt8] {
        var sent = 0
        var got: [UInt8] = []
        var idle = 0
        while got.count < bytes.count && idle < 20_000 {
            var progressed = false
            if sent < bytes.count {
                let r = bytes[sent...].withUnsafeBytes { server.write($0.baseAddress!, $0.count) }
                if case .bytes(let n) = r { sent += n; progressed = true }
            }
            if let chunk = client.read(), !chunk.isEmpty { got += chunk; progressed = true }
            idle = progressed ? 0 : idle + 1
            if !progressed { usleep(100) }
        }
        return got
    }

    /// Client sends `bytes`, server receives them with reads of at most `readSize`.
    func clientToServer(_ bytes: [UInt8], readSize: Int = 16_384) -> [UInt8] {
        var sent = 0
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: readSize)
        var idle = 0
        while got.count < bytes.count && idle < 20_000 {
            var progressed = false
            if sent < bytes.count {
                let n = client.write(bytes[sent...])
                if n > 0 { sent += n; progressed = true }
            }
            let r = buf.withUnsafeMutableBytes { server.read($0.baseAddress!, $0.count) }
            if case .bytes(let n) = r { got += buf[0..<n]; progressed = true }
            idle = progressed ? 0 : idle + 1
            if !progressed { usleep(100) }
        }
        return got
    }

    /// The server's next read result other than would-block.
    func serverReadOutcome() -> TLSIO {
        var buf = [UInt8](repeating: 0, count: 4_096)
        for _ in 0..<5_000 {
            let r = buf.withUnsafeMutableBytes { server.read($0.baseAddress!, $0.count) }
            if r != .wantRead { return r }
            usleep(200)
        }
        return .wantRead
    }
}

/// Deterministic test payload.
func pattern(_ n: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
}

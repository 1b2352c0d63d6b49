import COpenSSL
import Glibc

/// Progress of a handshake or a shutdown on a non-blocking socket.
public enum TLSProgress: Equatable, Sendable {
    case done
    /// Call again when the socket is readable.
    case wantRead
    /// Call again when the socket is writable.
    case wantWrite
    /// Fatal; the connection must be closed (no `shutdown()` needed). The text is for logs.
    case failed(String)
}

/// The outcome of one `read` or `write`.
public enum TLSIO: Equatable, Sendable {
    /// Plaintext bytes read or written (a write may take less than offered: partial writes are on).
    case bytes(Int)
    /// Call again when the socket is readable (a write can need this too, e.g. during a key update).
    case wantRead
    /// Call again when the socket is writable (a read can need this too).
    case wantWrite
    /// The peer sent close_notify, or closed the TCP connection without it (treated alike, see
    /// SSL_OP_IGNORE_UNEXPECTED_EOF: framing above TLS decides whether data was cut short).
    case closed
    /// Fatal; close the socket. The text is for logs.
    case failed(String)
}

/// A TLS connection: owns its SSL (freed in deinit), not the socket. A server connection is made
/// by `TLSContext.makeConnection(fd:received:)`, a client one (the edge agent's) by
/// `TLSClientContext.makeConnection(fd:serverName:)`; either keeps its context alive. One thread
/// only. Its bytes move through `SocketBIO`, so through `Sys`.
///
/// Calls map 1:1 onto SSL_do_handshake / SSL_read_ex / SSL_write_ex, with the thread's error
/// queue cleared first (SSL_get_error needs it empty). No Swift allocation on the read/write
/// path; failure texts are built only on failure. With SSL_MODE_RELEASE_BUFFERS OpenSSL frees its
/// record buffers whenever they drain and takes them again from malloc on the next record.
public final class TLSConnection {
    let ssl: OpaquePointer
    /// The server context this connection was made from (kept alive while the connection
    /// lives); nil on a client connection.
    let serverContext: TLSContext?
    /// The client context of a client connection (kept alive likewise); nil on a server one.
    let clientContext: TLSClientContext?
    /// The server context. Only server-side code asks (SNI, ALPN and ticket callbacks, which are
    /// installed on server contexts only), so a client connection here is our bug.
    public var context: TLSContext {
        guard let serverContext else { fatalError("a client TLS connection has no server context") }
        return serverContext
    }
    /// Set by the SNI callback; the default certificate until then.
    var certificateIndex: Int
    /// A fatal error happened: OpenSSL forbids SSL_shutdown afterwards.
    private var failed = false
    /// The socket the BIO reads and writes (owned by the caller).
    let fd: Int32
    /// Bytes read from the socket before the handshake began (a peeked ClientHello), served to
    /// OpenSSL first; nil once consumed.
    var prefix: UnsafeMutableRawPointer?
    var prefixCount = 0
    var prefixOffset = 0

    init(ssl: OpaquePointer, bio: OpaquePointer, fd: Int32, context: TLSContext, received: UnsafeRawBufferPointer?) {
        self.ssl = ssl
        self.fd = fd
        self.serverContext = context
        self.clientContext = nil
        self.certificateIndex = context.defaultIndex
        if let received, received.count > 0 {
            let copy = UnsafeMutableRawPointer.allocate(byteCount: received.count, alignment: 1)
            copy.copyMemory(from: received.baseAddress!, byteCount: received.count)
            prefix = copy
            prefixCount = received.count
        }
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
    }

    /// A client connection (`SSL_set_connect_state` already called by the context).
    init(ssl: OpaquePointer, bio: OpaquePointer, fd: Int32, client: TLSClientContext) {
        self.ssl = ssl
        self.fd = fd
        self.serverContext = nil
        self.clientContext = client
        self.certificateIndex = 0
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_free(ssl)  // frees the BIO too
        dropPrefix()
    }

    func dropPrefix() {
        prefix?.deallocate()
        prefix = nil
        prefixCount = 0
        prefixOffset = 0
    }

    /// The owner of an SSL inside an OpenSSL callback; traps if the SSL has none (our bug).
    @inline(__always)
    static func owner(of ssl: OpaquePointer) -> TLSConnection {
        guard let p = SSL_get_ex_data(ssl, 0) else { fatalError("TLS callback on an SSL without a TLSConnection") }
        return Unmanaged<TLSConnection>.fromOpaque(p).takeUnretainedValue()
    }

    /// Drives the handshake; call on each readiness event until `.done`.
    public func handshake() -> TLSProgress {
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 { return .done }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN:
            failed = true
            return .failed("handshake: peer closed the connection")
        case let e:
            var text = failure("handshake", e)
            // A client's verification failure: say which check failed (the error queue only says
            // "certificate verify failed").
            if clientContext != nil {
                let v = SSL_get_verify_result(ssl)
                if v != X509_V_OK { text += " (\(String(cString: X509_verify_cert_error_string(v))))" }
            }
            return .failed(text)
        }
    }

    /// Reads decrypted bytes into `p` (n > 0). After `.bytes`, `pending` may still hold more.
    @inline(__always)
    public func read(_ p: UnsafeMutableRawPointer, _ n: Int) -> TLSIO {
        ERR_clear_error()
        var got = 0
        let r = SSL_read_ex(ssl, p, n, &got)
        if r == 1 { return .bytes(got) }
        return io(r, "read")
    }

    /// Encrypts and sends up to `n` bytes from `p`. After `.wantRead`/`.wantWrite` retry with the
    /// same bytes (the buffer may move: ACCEPT_MOVING_WRITE_BUFFER is on).
    @inline(__always)
    public func write(_ p: UnsafeRawPointer, _ n: Int) -> TLSIO {
        if n == 0 { return .bytes(0) }
        ERR_clear_error()
        var put = 0
        let r = SSL_write_ex(ssl, p, n, &put)
        if r == 1 { return .bytes(put) }
        return io(r, "write")
    }

    /// Plaintext already decrypted and buffered inside OpenSSL: read it before waiting for the
    /// socket, since epoll will not report it.
    public var pending: Int { Int(SSL_pending(ssl)) }

    /// For a long-lived bulk connection (an edge tunnel): read ahead (one recv for several
    /// records) and keep the record buffers (no malloc/free per record when the connection idles
    /// between records). Read with `read` until `.wantRead`, as always: bytes read ahead are
    /// served before the socket is asked again.
    public func enableBulk() { cossl_set_bulk(ssl) }

    /// Sends close_notify (RFC 8446 §6.1), best effort: `.done` when it is written (or nothing
    /// can be said: handshake unfinished or a fatal error), `.wantWrite` when the socket is full —
    /// retry or just close. Does not wait for the peer's close_notify.
    @discardableResult
    public func shutdown() -> TLSProgress {
        if failed || SSL_is_init_finished(ssl) != 1 { return .done }
        ERR_clear_error()
        let r = SSL_shutdown(ssl)
        if r >= 0 { return .done }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_WANT_READ: return .wantRead
        case let e: return .failed(failure("shutdown", e))
        }
    }

    /// The protocol ALPN chose, nil when none was (treat as HTTP/1.1).
    public var alpnProtocol: String? {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    /// ALPN chose HTTP/2 ("h2").
    public var negotiatedH2: Bool {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n == 2 else { return false }
        return p[0] == 0x68 && p[1] == 0x32
    }

    /// The SNI host name the client sent, if any.
    public var serverName: String? {
        guard let p = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        return String(cString: p)
    }

    /// Whether the handshake resumed a session (a ticket was accepted).
    public var resumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The certificate SNI selected (the default when the client sent no or an unknown name).
    public var certificate: Certificate { context.certificates.certificates[certificateIndex] }

    /// "TLSv1.3" or "TLSv1.2" once the handshake is done.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The negotiated cipher, e.g. "TLS_AES_128_GCM_SHA256".
    public var cipher: String? {
        guard let c = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(c) else { return nil }
        return String(cString: name)
    }

    /// Called by the SNI callback during the handshake.
    func selectCertificate() -> Int32 {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return SSL_TLSEXT_ERR_NOACK }
        let bytes = UnsafeRawBufferPointer(start: name, count: strlen(name))
        guard let index = context.certificates.match(bytes) else { return SSL_TLSEXT_ERR_NOACK }
        if index != certificateIndex {
            guard SSL_set_SSL_CTX(ssl, context.contexts[index]) != nil else { return SSL_TLSEXT_ERR_ALERT_FATAL }
            certificateIndex = index
        }
        return SSL_TLSEXT_ERR_OK
    }

    /// Maps a failed SSL_read_ex / SSL_write_ex.
    @inline(__always)
    private func io(_ r: Int32, _ op: StaticString) -> TLSIO {
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL where errno == 0 && ERR_peek_error() == 0:
            // EOF without close_notify where OpenSSL still reports it as a syscall condition.
            failed = true
            return .closed
        case let e:
            return .failed(failure(op, e))
        }
    }

    /// Marks the connection failed and describes the error (drains the error queue).
    private func failure(_ op: StaticString, _ code: Int32) -> String {
        failed = true
        switch code {
        case SSL_ERROR_SYSCALL:
            let e = errno
            if ERR_peek_error() != 0 { return "\(op): \(OpenSSLErrors.drain())" }
            if e == 0 { return "\(op): connection closed" }
            return "\(op): \(String(cString: strerror(e))) (errno \(e))"
        case SSL_ERROR_SSL:
            return "\(op): \(OpenSSLErrors.drain())"
        default:
            ERR_clear_error()
            return "\(op): unexpected SSL_get_error \(code)"
        }
    }
}

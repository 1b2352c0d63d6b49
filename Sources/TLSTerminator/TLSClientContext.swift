import COpenSSL
import Glibc

/// The client side of TLS, for the edge agent's tunnels to the cluster (docs/edge-tunnel.md §1):
/// one SSL_CTX with TLS_client_method, peer verification on (the given CA file, or the system's
/// default paths), TLS 1.2 at least, and ALPN `http/1.1`. Connections made from it use the same
/// non-blocking `TLSConnection` API and `SocketBIO` as server connections. One thread only.
public final class TLSClientContext {
    let ctx: OpaquePointer

    /// - Parameters:
    ///   - caFile: PEM file of trusted roots; nil uses OpenSSL's default verify paths (the system
    ///     store, e.g. /etc/ssl/certs).
    ///   - alpn: protocols offered, in preference order.
    public init(caFile: String?, alpn: [String] = ["http/1.1"]) throws(TLSSetupError) {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSSetupError(step: "SSL_CTX_new", reason: OpenSSLErrors.drain())
        }
        do throws(TLSSetupError) {
            try Self.configure(ctx, caFile: caFile, alpn: alpn)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        self.ctx = ctx
    }

    deinit { SSL_CTX_free(ctx) }

    private static func check(_ ok: Bool, _ step: String) throws(TLSSetupError) {
        if !ok { throw TLSSetupError(step: step, reason: OpenSSLErrors.drain()) }
    }

    private static func configure(_ ctx: OpaquePointer, caFile: String?, alpn: [String]) throws(TLSSetupError) {
        try check(cossl_ctx_set_versions(ctx, TLS1_2_VERSION, TLS1_3_VERSION) == 1, "protocol versions")
        // The server options minus the ticket switch: no renegotiation, no compression, EOF
        // without close_notify reported as a close (the tunnel's framing decides what was lost).
        SSL_CTX_set_options(ctx, cossl_server_options(1))
        // The same non-blocking modes: partial writes, retried writes from a moved buffer.
        cossl_ctx_set_server_modes(ctx)
        try check(SSL_CTX_set_cipher_list(ctx, TLSSettings.defaultCiphers) == 1, "cipher list")
        try check(SSL_CTX_set_ciphersuites(ctx, TLSSettings.defaultCipherSuites) == 1, "cipher suites")
        if let caFile {
            try check(SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1, "CA file \(caFile)")
        } else {
            try check(SSL_CTX_set_default_verify_paths(ctx) == 1, "system CA paths")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        guard let wire = TLSSettings(alpn: alpn).alpnWire else {
            throw TLSSetupError(step: "ALPN", reason: "protocol names must be 1 to 255 bytes: \(alpn)")
        }
        if !wire.isEmpty {
            // SSL_CTX_set_alpn_protos returns 0 on success (unlike nearly everything else).
            try check(SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0, "ALPN")
        }
    }

    /// A client connection on the connected non-blocking socket `fd` (never closed here), which
    /// verifies that the server's certificate is valid for `serverName` and sends it as SNI —
    /// unless it is an IP address literal: then the certificate must name that address, and no
    /// SNI goes out (RFC 6066 §3 allows host names only). Nil when OpenSSL cannot allocate or
    /// refuses the name.
    public func makeConnection(fd: Int32, serverName: String) -> TLSConnection? {
        ERR_clear_error()
        guard let ssl = SSL_new(ctx) else {
            ERR_clear_error()
            return nil
        }
        guard let bio = BIO_new(SocketBIO.method) else {
            ERR_clear_error()
            SSL_free(ssl)
            return nil
        }
        SSL_set_bio(ssl, bio, bio)
        let named: Bool
        if Self.isIPLiteral(serverName) {
            named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName) == 1
        } else {
            named = cossl_set_host_name(ssl, serverName) == 1 && SSL_set1_host(ssl, serverName) == 1
        }
        guard named else {
            ERR_clear_error()
            SSL_free(ssl)
            return nil
        }
        SSL_set_connect_state(ssl)
        return TLSConnection(ssl: ssl, bio: bio, fd: fd, client: self)
    }

    static func isIPLiteral(_ name: String) -> Bool {
        var a4 = in_addr()
        var a6 = in6_addr()
        return inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1
    }
}

import COpenSSL
import Glibc

/// One worker's TLS state: an SSL_CTX per certificate of a `CertificateSet`, all configured
/// alike, plus the worker's cached ticket keys. Build one per worker thread, on that thread, and
/// use it only there (not Sendable); after a certificate reload build a new one — connections
/// made from the old context keep it alive until they end.
///
/// Why per worker: OpenSSL 3.0 takes locks and bumps shared reference counts during handshakes
/// (method-store lookups, SSL_CTX statistics and session cache, X509/EVP_PKEY references copied
/// into each SSL). Separate SSL_CTXs holding separately decoded certificates and keys keep those
/// cache lines per thread; see `TLSContext.init` for what else is done to avoid shared work.
public final class TLSContext {
    public let certificates: CertificateSet
    public let settings: TLSSettings
    /// SSL_CTX per certificate, same index as `certificates.certificates`.
    let contexts: [OpaquePointer]
    let defaultIndex: Int
    let alpnWire: [UInt8]
    /// AES-256-CBC fetched once for ticket encryption (EVP_aes_256_cbc() would fetch on each use).
    let ticketCipher: OpaquePointer?
    /// This worker's copy of the ticket keys (nil: tickets off).
    let ticketKeys: TicketKeyCache?

    /// Builds the worker's contexts.
    ///
    /// OpenSSL 3.0 work kept off the handshake path: each SSL_CTX (created here) loads its cipher,
    /// digest, group and signature-algorithm tables once; certificates and keys are decoded here
    /// from the set's DER, per worker; the ticket cipher is fetched once; the session cache is off
    /// (stateless tickets only), so no handshake takes the SSL_CTX's cache lock.
    ///
    /// What remains is inside libssl 3.0 and out of our reach: it still fetches by name during
    /// each handshake (EVP_MD_fetch, EVP_KDF_fetch for every TLS 1.3 HKDF step, EVP_MAC_fetch for
    /// the ticket HMAC, plus the digest named in the ticket MAC's parameters), each a read lock
    /// on the shared method store — about 8% of a server handshake in a profile on this machine,
    /// plus 4-5% in lock functions. Building a context costs about 1 ms per certificate.
    public init(certificates: CertificateSet, settings: TLSSettings) throws(TLSSetupError) {
        guard let wire = settings.alpnWire else {
            throw TLSSetupError(step: "ALPN", reason: "protocol names must be 1 to 255 bytes: \(settings.alpn)")
        }
        var cipher: OpaquePointer?
        if settings.ticketKeys != nil {
            cipher = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil)
            if cipher == nil { throw TLSSetupError(step: "fetch AES-256-CBC", reason: OpenSSLErrors.drain()) }
        }
        var built: [OpaquePointer] = []
        do throws(TLSSetupError) {
            for c in certificates.certificates {
                built.append(try TLSContext.makeContext(c, settings: settings))
            }
        } catch {
            for ctx in built { SSL_CTX_free(ctx) }
            if let cipher { EVP_CIPHER_free(cipher) }
            throw error
        }
        self.certificates = certificates
        self.settings = settings
        self.contexts = built
        self.defaultIndex = certificates.defaultCertificate.index
        self.alpnWire = wire
        self.ticketCipher = cipher
        self.ticketKeys = settings.ticketKeys.map(TicketKeyCache.init)
    }

    deinit {
        for ctx in contexts { SSL_CTX_free(ctx) }
        if let ticketCipher { EVP_CIPHER_free(ticketCipher) }
    }

    /// A server-side TLS connection on a connected non-blocking socket. The fd stays the caller's
    /// (never closed here). Nil only when OpenSSL cannot allocate.
    /// A server connection on `fd` (which it reads and writes through `SocketBIO`, never
    /// closes). `received`: bytes already read from the socket (a peeked ClientHello), handed to
    /// OpenSSL before anything the socket still holds.
    public func makeConnection(fd: Int32, received: UnsafeRawBufferPointer? = nil) -> TLSConnection? {
        ERR_clear_error()
        guard let ssl = SSL_new(contexts[defaultIndex]) else {
            ERR_clear_error()
            return nil
        }
        guard let bio = BIO_new(SocketBIO.method) else {
            ERR_clear_error()
            SSL_free(ssl)
            return nil
        }
        // One BIO for both directions: SSL_set_bio takes the one reference BIO_new gave us.
        SSL_set_bio(ssl, bio, bio)
        SSL_set_accept_state(ssl)
        return TLSConnection(ssl: ssl, bio: bio, fd: fd, context: self, received: received)
    }

    private static func makeContext(_ cert: Certificate, settings: TLSSettings) throws(TLSSetupError) -> OpaquePointer {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSSetupError(step: "SSL_CTX_new", reason: OpenSSLErrors.drain())
        }
        do throws(TLSSetupError) {
            try configure(ctx, settings: settings)
            for pair in cert.pairs { try install(pair, in: ctx) }
            return ctx
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
    }

    private static func check(_ ok: Bool, _ step: String) throws(TLSSetupError) {
        if !ok { throw TLSSetupError(step: step, reason: OpenSSLErrors.drain()) }
    }

    private static func configure(_ ctx: OpaquePointer, settings: TLSSettings) throws(TLSSetupError) {
        let tickets = settings.ticketKeys
        try check(cossl_ctx_set_versions(ctx, TLS1_2_VERSION, TLS1_3_VERSION) == 1, "protocol versions")
        SSL_CTX_set_options(ctx, cossl_server_options(tickets == nil ? 0 : 1))
        cossl_ctx_set_server_modes(ctx)
        try check(SSL_CTX_set_cipher_list(ctx, settings.ciphers) == 1, "cipher list \(settings.ciphers)")
        try check(SSL_CTX_set_ciphersuites(ctx, settings.cipherSuites) == 1, "cipher suites \(settings.cipherSuites)")
        try check(cossl_ctx_set_groups(ctx, settings.groups) == 1, "groups \(settings.groups)")
        // Stateless tickets are the only resumption: a per-worker session-ID cache would miss on
        // other workers and costs a write lock per handshake.
        cossl_ctx_set_session_cache_off(ctx)
        // The same context ID on every SSL_CTX, so a session stays valid after the SNI callback
        // switches contexts (SSL_set_SSL_CTX copies it).
        let sid: [UInt8] = Array("switchyard".utf8)
        try check(SSL_CTX_set_session_id_context(ctx, sid, UInt32(sid.count)) == 1, "session id context")
        if let tickets {
            _ = SSL_CTX_set_timeout(ctx, Int(tickets.rotation))
            try check(SSL_CTX_set_num_tickets(ctx, max(0, settings.ticketsPerHandshake)) == 1, "ticket count")
            try check(SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketCallback) == 1, "ticket callback")
        } else {
            try check(SSL_CTX_set_num_tickets(ctx, 0) == 1, "ticket count")
        }
        // Both callbacks on every SSL_CTX: the SNI callback runs on the context the SSL was made
        // from, but ALPN is chosen after it, on whichever context SNI switched to.
        try check(cossl_ctx_set_servername_callback(ctx, serverNameCallback, nil) == 1, "SNI callback")
        if !settings.alpn.isEmpty { SSL_CTX_set_alpn_select_cb(ctx, alpnCallback, nil) }
    }

    /// Decodes the pair's DER (this worker's own X509/EVP_PKEY objects) into `ctx`; OpenSSL puts
    /// each key type in its own slot, so ECDSA and RSA pairs coexist on one SSL_CTX.
    private static func install(_ pair: KeyPair, in ctx: OpaquePointer) throws(TLSSetupError) {
        let file = pair.certificateFile
        var chain: [OpaquePointer] = []
        defer { for x in chain { X509_free(x) } }
        for der in pair.chainDER {
            let x = der.withUnsafeBufferPointer { cossl_x509_from_der($0.baseAddress, $0.count) }
            guard let x else { throw TLSSetupError(step: "decode \(file)", reason: OpenSSLErrors.drain()) }
            chain.append(x)
        }
        let key = cossl_pkey_from_der(pair.key.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), pair.key.bytes.count)
        guard let key else { throw TLSSetupError(step: "decode \(pair.keyFile)", reason: OpenSSLErrors.drain()) }
        defer { EVP_PKEY_free(key) }
        // Certificate, then its chain (added to the slot just selected), then the key.
        try check(SSL_CTX_use_certificate(ctx, chain[0]) == 1, "use certificate \(file)")
        for x in chain.dropFirst() { try check(cossl_ctx_add_chain_cert(ctx, x) == 1, "chain of \(file)") }
        try check(SSL_CTX_use_PrivateKey(ctx, key) == 1, "use key \(pair.keyFile)")
    }
}

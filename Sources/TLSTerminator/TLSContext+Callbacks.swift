import COpenSSL
import Glibc

// OpenSSL callbacks. Each finds its owner through the SSL's user data (index 0, "app data"),
// which `TLSConnection` sets to itself (unretained: the connection owns the SSL and every
// callback runs inside one of the connection's own calls). They allocate nothing.

/// SNI (RFC 6066 §3): switch to the SSL_CTX of the certificate the name selects. Unknown or
/// absent names keep the default context and get no acknowledgement.
let serverNameCallback: cossl_servername_cb = { ssl, _, _ in
    guard let ssl else { return SSL_TLSEXT_ERR_NOACK }
    return TLSConnection.owner(of: ssl).selectCertificate()
}

/// ALPN (RFC 7301 §3.2): the server's first preference that the client offers.
let alpnCallback: @convention(c) (
    OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
    UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
) -> Int32 = { ssl, out, outLength, offered, offeredLength, _ in
    guard let ssl, let out, let outLength, let offered else { return SSL_TLSEXT_ERR_NOACK }
    let context = TLSConnection.owner(of: ssl).context
    return context.alpnWire.withUnsafeBufferPointer { ours in
        guard let choice = selectALPN(server: ours, client: UnsafeBufferPointer(start: offered, count: Int(offeredLength))) else {
            // No overlap: go on without ALPN (HTTP/1.1) rather than the fatal
            // no_application_protocol alert RFC 7301 allows; old clients keep working.
            return SSL_TLSEXT_ERR_NOACK
        }
        // Points into the client's list, which OpenSSL keeps until it has copied the choice.
        out.pointee = choice.baseAddress
        outLength.pointee = UInt8(choice.count)
        return SSL_TLSEXT_ERR_OK
    }
}

/// The first protocol of `server` (wire format) that `client` (wire format) lists; a slice of
/// `client`. A malformed client list matches nothing past the damage.
func selectALPN(server: UnsafeBufferPointer<UInt8>, client: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
    var i = 0
    while i < server.count {
        let n = Int(server[i])
        var j = 0
        while j < client.count {
            let m = Int(client[j])
            guard m > 0, j + 1 + m <= client.count else { break }
            if m == n && memcmp(server.baseAddress! + i + 1, client.baseAddress! + j + 1, n) == 0 {
                return UnsafeBufferPointer(rebasing: client[(j + 1)..<(j + 1 + m)])
            }
            j += 1 + m
        }
        i += 1 + n
    }
    return nil
}

/// Session tickets (SSL_CTX_set_tlsext_ticket_key_evp_cb): `enc` 1 = issue a ticket, 0 = open one.
let ticketCallback: @convention(c) (
    OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, OpaquePointer?, OpaquePointer?, Int32
) -> Int32 = { ssl, name, iv, cipherContext, macContext, enc in
    guard let ssl, let name, let iv, let cipherContext, let macContext else { return 0 }
    let context = TLSConnection.owner(of: ssl).context
    return context.ticket(name: name, iv: iv, cipher: cipherContext, mac: macContext, encrypt: enc == 1)
}

extension TLSContext {
    /// Keys the ticket cipher and MAC. Returns 1 (ticket issued), 2 (opened: issue a fresh one
    /// too), 0 (no ticket issued / unknown key: full handshake). Never -1, which would fail the
    /// handshake over a ticket. Every opened ticket is renewed: TLS 1.3 clients (OpenSSL's cache,
    /// curl, browsers) use a ticket once (RFC 8446 §C.4), so without a fresh one every other
    /// connection would be a full handshake (measured: 50% resumed, bench/tls.sh).
    func ticket(name: UnsafeMutablePointer<UInt8>, iv: UnsafeMutablePointer<UInt8>, cipher ctx: OpaquePointer,
                mac: OpaquePointer, encrypt: Bool) -> Int32 {
        guard let cache = ticketKeys, let cipher = ticketCipher else { return 0 }
        cache.refresh()
        if encrypt {
            let key = cache.current
            memcpy(name, TicketKey.name(key), TicketKey.nameLength)
            guard RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) == 1,
                  EVP_EncryptInit_ex(ctx, cipher, nil, TicketKey.aesKey(key), iv) == 1,
                  cossl_mac_set_hmac_sha256_key(mac, TicketKey.hmacKey(key), TicketKey.hmacLength) == 1 else {
                ERR_clear_error()
                return 0
            }
            return 1
        }
        guard let (key, _) = cache.block(named: name) else { return 0 }
        guard EVP_DecryptInit_ex(ctx, cipher, nil, TicketKey.aesKey(key), iv) == 1,
              cossl_mac_set_hmac_sha256_key(mac, TicketKey.hmacKey(key), TicketKey.hmacLength) == 1 else {
            ERR_clear_error()
            return 0
        }
        return 2
    }
}

import IOCore
import TLSTerminator

/// Signs requests to a node's API (an `api` target with a secret; docs/node-api-signature.md):
/// appends `X-Switchyard-Timestamp`, `X-Switchyard-Nonce` and `X-Switchyard-Signature` to a
/// rewritten request head, the signature an HMAC-SHA-256 over
/// `v1 LF method LF target LF timestamp LF nonce` of the request line as it goes out. The body
/// is not covered (it streams). Per worker: a scratch for the message and a nonce counter;
/// nothing is allocated per request.
struct APISigner: ~Copyable {
    /// One allocation for the worker's lifetime: the message, then fixed places for the nonce
    /// (32 hex digits), the timestamp (up to 20 digits), the MAC (32 bytes) and its hex (64).
    private let scratch: UnsafeMutablePointer<UInt8>
    private let messageCapacity: Int
    private let noncePrefix: UInt64
    private var counter: UInt64 = 0
    /// The fields' size: 3 names, a timestamp, 32 + 64 hex digits, "v1=", CRLFs.
    static let overhead = 200
    private static let tail = 32 + 20 + 32 + 64

    init(maxRequestLine: Int) {
        messageCapacity = maxRequestLine + 64
        scratch = .allocate(capacity: messageCapacity + Self.tail)
        noncePrefix = Digest.random64()
    }

    deinit { scratch.deallocate() }

    /// `head` holds a whole rewritten request head (ending in CRLF CRLF) with room for
    /// `overhead` more bytes; the signature fields go in before the final CRLF.
    mutating func sign(_ head: inout IOBuffer, secret: [UInt8], nowSeconds: Int64) {
        let p = head.readPointer
        let n = head.count
        // The request line: method SP target SP version CRLF.
        var sp1 = 0
        while sp1 < n && p[sp1] != 0x20 { sp1 += 1 }
        var eol = sp1
        while eol < n && p[eol] != 0x0D { eol += 1 }
        var sp2 = eol
        while sp2 > sp1 && p[sp2] != 0x20 { sp2 -= 1 }
        guard sp1 < sp2, sp2 + 96 <= messageCapacity else { return }
        counter &+= 1
        let nonce = scratch + messageCapacity
        let ts = nonce + 32
        let mac = ts + 20
        let hex = mac + 32
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: noncePrefix >> 32), nonce)
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: noncePrefix), nonce + 8)
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: counter >> 32), nonce + 16)
        IOBuffer.storeHex8(UInt32(truncatingIfNeeded: counter), nonce + 24)
        let tsCount = Self.decimal(max(0, nowSeconds), into: ts)
        // The message: "v1\n" method "\n" target "\n" timestamp "\n" nonce.
        var m = 0
        func put(_ src: UnsafePointer<UInt8>, _ k: Int) {
            (scratch + m).update(from: src, count: k)
            m += k
        }
        func newline() { scratch[m] = 0x0A; m += 1 }
        scratch[0] = 0x76; scratch[1] = 0x31; m = 2; newline()
        put(p, sp1); newline()
        put(p + sp1 + 1, sp2 - sp1 - 1); newline()
        put(ts, tsCount); newline()
        put(nonce, 32)
        secret.withUnsafeBytes { key in
            Digest.hmacSHA256(key: key, message: UnsafeRawBufferPointer(start: scratch, count: m), into: mac)
        }
        for i in 0..<8 {
            let w = UInt32(mac[4 * i]) << 24 | UInt32(mac[4 * i + 1]) << 16 | UInt32(mac[4 * i + 2]) << 8 | UInt32(mac[4 * i + 3])
            IOBuffer.storeHex8(w, hex + 8 * i)
        }
        // Before the head's final CRLF.
        head.end -= 2
        head.append("X-Switchyard-Timestamp: ")
        head.append(ts, tsCount)
        head.append("\r\nX-Switchyard-Nonce: ")
        head.append(nonce, 32)
        head.append("\r\nX-Switchyard-Signature: v1=")
        head.append(hex, 64)
        head.append("\r\n\r\n")
    }

    /// `v` in decimal at `p` (at most 20 digits); returns the digit count.
    private static func decimal(_ v: Int64, into p: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = 0
        var x = v
        repeat { digits += 1; x /= 10 } while x > 0
        x = v
        for i in stride(from: digits - 1, through: 0, by: -1) {
            p[i] = UInt8(48 + x % 10)
            x /= 10
        }
        return digits
    }
}

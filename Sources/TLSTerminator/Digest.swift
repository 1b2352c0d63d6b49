import COpenSSL

/// Hashes and random bytes from OpenSSL, for credentials kept hashed (edge tokens) and made
/// fresh (a rotated token): the library the gateway already links does them, not hand-written code.
public enum Digest {
    /// SHA-256 of `bytes` as 64 lowercase hex digits.
    public static func sha256Hex(_ bytes: some Collection<UInt8>) -> String {
        var md = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let input = Array(bytes)
        let ok = input.withUnsafeBytes { p in
            EVP_Digest(p.baseAddress, p.count, &md, &length, EVP_sha256(), nil)
        }
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed")
        return hex(md)
    }

    /// `count` bytes from OpenSSL's CSPRNG as lowercase hex (2 × count digits).
    public static func randomHex(_ count: Int) -> String {
        var bytes = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&bytes, Int32(count)) == 1, "RAND_bytes failed")
        return hex(bytes)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Digest {
    /// HMAC-SHA-256 of `message` under `key` into `mac` (32 bytes). No allocation: for the
    /// request path (signing node-API requests, docs/node-api-signature.md).
    public static func hmacSHA256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, into mac: UnsafeMutablePointer<UInt8>) {
        var length: UInt32 = 0
        let r = HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                     message.count, mac, &length)
        precondition(r != nil && length == 32, "HMAC(SHA-256) failed")
    }

    /// 8 random bytes from OpenSSL's CSPRNG (a nonce prefix).
    public static func random64() -> UInt64 {
        var v: UInt64 = 0
        precondition(withUnsafeMutableBytes(of: &v) { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) } == 1,
                     "RAND_bytes failed")
        return v
    }
}

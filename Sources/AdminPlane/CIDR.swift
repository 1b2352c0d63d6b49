import Glibc

/// An address range for the admin allowlist: `10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`.
public struct CIDR: Sendable, Equatable {
    /// 16 bytes; IPv4 as an IPv4-mapped IPv6 address, so one comparison covers both.
    let network: [UInt8]
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = CIDR.parse(String(parts[0])) else { return nil }
        let isV4 = !parts[0].contains(":")
        var prefix = 128
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= (isV4 ? 32 : 128) else { return nil }
            prefix = isV4 ? p + 96 : p
        }
        network = CIDR.masked(bytes, prefix)
        self.prefix = prefix
    }

    /// Does `address` (16 bytes, IPv4-mapped for IPv4) fall in this range?
    func contains(_ address: [UInt8]) -> Bool {
        CIDR.masked(address, prefix) == network
    }

    /// 16 bytes for an IPv4 or IPv6 literal.
    static func parse(_ s: String) -> [UInt8]? {
        var v6 = in6_addr()
        if s.contains(":") {
            guard inet_pton(AF_INET6, s, &v6) == 1 else { return nil }
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        var v4 = in_addr()
        guard inet_pton(AF_INET, s, &v4) == 1 else { return nil }
        return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + withUnsafeBytes(of: &v4) { Array($0) }
    }

    /// The peer of an accepted socket as 16 bytes.
    static func bytes(of peer: sockaddr_storage) -> [UInt8] {
        var p = peer
        if p.ss_family == sa_family_t(AF_INET) {
            return withUnsafePointer(to: &p) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + withUnsafeBytes(of: &a) { Array($0) }
                }
            }
        }
        return withUnsafePointer(to: &p) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var a = sin6.pointee.sin6_addr
                return withUnsafeBytes(of: &a) { Array($0) }
            }
        }
    }

    private static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<16 {
            let bits = max(0, min(8, prefix - i * 8))
            out[i] &= bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
        return out
    }
}

/// Character classes of RFC 9110 §5.6 and RFC 9112, as one 256-entry table of bit flags.
@usableFromInline
enum ByteClass {
    static let token: UInt8 = 1        // tchar
    static let fieldValue: UInt8 = 2   // VCHAR / obs-text / SP / HTAB
    static let target: UInt8 = 4       // visible ASCII allowed in a request-target
    static let hex: UInt8 = 8
    static let requestID: UInt8 = 16   // what we accept in a client's X-Request-Id

    @usableFromInline
    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        t.initialize(repeating: 0, count: 256)
        for b in 0..<256 {
            var f: UInt8 = 0
            let c = UInt8(b)
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            if alnum || "!#$%&'*+-.^_`|~".utf8.contains(c) { f |= token }
            if (c >= 0x21 && c != 0x7F) || c == 0x20 || c == 0x09 { f |= fieldValue }
            if c >= 0x21 && c <= 0x7E { f |= target }
            if (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66) { f |= hex }
            if alnum || "._:+/=~-".utf8.contains(c) { f |= requestID }
            t[b] = f
        }
        return UnsafePointer(t)
    }()

    @inline(__always) static func isToken(_ b: UInt8) -> Bool { table[Int(b)] & token != 0 }
    @inline(__always) static func isFieldValue(_ b: UInt8) -> Bool { table[Int(b)] & fieldValue != 0 }
    @inline(__always) static func isTarget(_ b: UInt8) -> Bool { table[Int(b)] & target != 0 }
    @inline(__always) static func isHex(_ b: UInt8) -> Bool { table[Int(b)] & hex != 0 }
    @inline(__always) static func isRequestID(_ b: UInt8) -> Bool { table[Int(b)] & requestID != 0 }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt64 {
        if b <= 0x39 { return UInt64(b &- 0x30) }
        return UInt64((b | 0x20) &- 0x61 &+ 10)
    }

    /// Case-insensitive comparison of `n` bytes with a lowercase ASCII literal made of letters,
    /// digits and '-' (the only shapes our known header names have).
    @inline(__always)
    static func equalsLower(_ p: UnsafePointer<UInt8>, _ n: Int, _ lit: StaticString) -> Bool {
        guard n == lit.utf8CodeUnitCount else { return false }
        let l = lit.utf8Start
        for i in 0..<n where (p[i] | 0x20) != l[i] { return false }
        return true
    }
}

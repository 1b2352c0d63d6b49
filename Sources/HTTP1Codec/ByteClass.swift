/// Character classes of RFC 9110 §5.6 and RFC 9112. Set membership is a bit test against
/// constants (no global table: a lazily initialised global costs a `swift_once` call per lookup).
public enum ByteClass {
    /// tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~" — bits for bytes 0–63 and 64–127.
    public static let tokenLow: UInt64 = 0x03FF_6CFA_0000_0000
    public static let tokenHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE
    /// What we accept in a client's X-Request-Id: ALPHA / DIGIT / "._:+/=~-".
    public static let requestIDLow: UInt64 = 0x27FF_E800_0000_0000
    public static let requestIDHigh: UInt64 = 0x47FF_FFFE_87FF_FFFE

    @inline(__always) static public func inSet(_ b: UInt8, _ low: UInt64, _ high: UInt64) -> Bool {
        if b < 64 { return (low >> UInt64(b)) & 1 != 0 }
        if b < 128 { return (high >> UInt64(b &- 64)) & 1 != 0 }
        return false
    }

    @inline(__always) static public func isToken(_ b: UInt8) -> Bool { inSet(b, tokenLow, tokenHigh) }
    /// field-vchar / obs-text / SP / HTAB (RFC 9110 §5.5): anything but CTLs and DEL.
    @inline(__always) static public func isFieldValue(_ b: UInt8) -> Bool { (b >= 0x20 && b != 0x7F) || b == 0x09 }
    /// A request-target byte: visible ASCII (no spaces, controls or non-ASCII; RFC 3986 chars).
    @inline(__always) static public func isTarget(_ b: UInt8) -> Bool { b >= 0x21 && b <= 0x7E }
    @inline(__always) static public func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x66)
    }
    @inline(__always) static public func isRequestID(_ b: UInt8) -> Bool { inSet(b, requestIDLow, requestIDHigh) }

    @inline(__always) static public func hexValue(_ b: UInt8) -> UInt64 {
        if b <= 0x39 { return UInt64(b &- 0x30) }
        return UInt64((b | 0x20) &- 0x61 &+ 10)
    }

    /// Case-insensitive comparison of `n` bytes with a lowercase ASCII literal made of letters,
    /// digits, '-', ':' and '/' (the only shapes our known names have; `| 0x20` maps no other
    /// token byte onto those).
    @inlinable @inline(__always)
    public static func equalsLower(_ p: UnsafePointer<UInt8>, _ n: Int, _ lit: StaticString) -> Bool {
        guard n == lit.utf8CodeUnitCount else { return false }
        let l = lit.utf8Start
        // Two (overlapping) words: every literal byte has bit 5 set, so `| 0x20` on the input
        // side alone compares the same way as byte by byte.
        let a = UnsafeRawPointer(p), b = UnsafeRawPointer(l)
        if n >= 8 {
            let lower: UInt64 = 0x2020_2020_2020_2020
            return a.loadUnaligned(as: UInt64.self) | lower == b.loadUnaligned(as: UInt64.self)
                && a.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self) | lower
                    == b.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        }
        if n >= 4 {
            let lower: UInt32 = 0x2020_2020
            return a.loadUnaligned(as: UInt32.self) | lower == b.loadUnaligned(as: UInt32.self)
                && a.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self) | lower
                    == b.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
        }
        for i in 0..<n where (p[i] | 0x20) != l[i] { return false }
        return true
    }
}

/// Finds a route's key in raw request bytes. Every function is pure, works on a byte view of the
/// receive buffer and returns offsets into it: the engine calls these per request, so they
/// allocate nothing and create no Strings.
///
/// A key is `[A-Za-z0-9_-]{1,64}`. The alphabet is deliberately narrow: it needs no escaping in
/// paths, queries, cookies or headers, and it excludes '.', '%' and '~', so a key can never be a
/// dot segment ("..") or something that decodes into a different key.
public enum KeyExtractor {
    /// The longest key accepted; placements store keys of at most this many bytes.
    public static let maxKeyLength = 64

    /// Whether all of `bytes` form a key: 1...64 bytes of `[A-Za-z0-9_-]`.
    public static func isValidKey(_ bytes: UnsafeRawBufferPointer) -> Bool {
        isValidKey(bytes, from: 0, to: bytes.count)
    }

    /// A header value used whole, such as `X-WS-User: u1`. The engine trims OWS already
    /// (RFC 9110 §5.5); SP and HTAB are trimmed here too so a caller that did not still gets a
    /// key rather than a 400. Empty -> missing, a valid key -> found, anything else -> invalid.
    public static func fromHeaderValue(_ value: UnsafeRawBufferPointer) -> KeyLookup {
        let (start, end) = trimmed(value, from: 0, to: value.count)
        if start == end { return .missing }
        return keyLookup(value, from: start, to: end)
    }

    // MARK: - Shared by the per-source files

    /// `[A-Za-z0-9_-]`: three ranges and two bytes, so a switch says it plainly without a table.
    @inline(__always)
    static func isKeyByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// Whether `bytes[start..<end]` is a key. Ranges are checked by the callers' loops.
    static func isValidKey(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        let count = end - start
        guard count >= 1, count <= maxKeyLength else { return false }
        for i in start..<end where !isKeyByte(bytes[i]) { return false }
        return true
    }

    /// `.found` for a valid key in `bytes[start..<end]`, `.invalid` otherwise (including empty:
    /// callers decide earlier whether an empty range means "missing").
    static func keyLookup(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> KeyLookup {
        isValidKey(bytes, from: start, to: end) ? .found(start: start, count: end - start) : .invalid
    }

    /// `bytes[start..<end]` without leading and trailing SP and HTAB.
    static func trimmed(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> (Int, Int) {
        var s = start, e = end
        while s < e, isBlank(bytes[s]) { s += 1 }
        while e > s, isBlank(bytes[e - 1]) { e -= 1 }
        return (s, e)
    }

    @inline(__always)
    static func isBlank(_ b: UInt8) -> Bool {
        b == UInt8(ascii: " ") || b == UInt8(ascii: "\t")
    }

    /// Whether `bytes[start..<end]` equals `name` byte for byte.
    static func equals(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, _ name: [UInt8]) -> Bool {
        guard end - start == name.count else { return false }
        var i = start
        for b in name {
            if bytes[i] != b { return false }
            i += 1
        }
        return true
    }

    /// Index of the first `byte` in `bytes[start..<end]`, or `end`.
    @inline(__always)
    static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        var i = start
        while i < end, bytes[i] != byte { i += 1 }
        return i
    }
}

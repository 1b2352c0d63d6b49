import Glibc

/// The header fields the gateway itself looks at; everything else is `.other` and passes through.
public enum HeaderKind: UInt8, Sendable {
    case other
    case host, contentLength, transferEncoding, connection, keepAlive, proxyConnection, te, upgrade
    case expect, xForwardedFor, xForwardedProto, xForwardedHost, via, xRequestID, trailer, cookie
    /// `X-Switchyard-Hop`: the centers a forwarded pod request passed; `X-Switchyard-Cluster`: the
    /// cluster secret that proves a center sent it. Never forwarded as received (HeadWriter
    /// writes its own), so a client cannot forge either.
    case switchyardHop, switchyardCluster
    /// `X-Switchyard-Timestamp`, `-Nonce`, `-Signature`: a node-API request's signature. Never
    /// forwarded as received: a client cannot present its own.
    case switchyardSigned

    /// Classifies a field name (case-insensitive) by length first, so most names cost one compare.
    @inlinable @inline(__always)
    public static func classify(_ p: UnsafePointer<UInt8>, _ n: Int) -> HeaderKind {
        switch n {
        case 2: return ByteClass.equalsLower(p, n, "te") ? .te : .other
        case 3: return ByteClass.equalsLower(p, n, "via") ? .via : .other
        case 4: return ByteClass.equalsLower(p, n, "host") ? .host : .other
        case 6:
            if ByteClass.equalsLower(p, n, "expect") { return .expect }
            return ByteClass.equalsLower(p, n, "cookie") ? .cookie : .other
        case 7:
            if ByteClass.equalsLower(p, n, "upgrade") { return .upgrade }
            return ByteClass.equalsLower(p, n, "trailer") ? .trailer : .other
        case 10:
            if ByteClass.equalsLower(p, n, "connection") { return .connection }
            return ByteClass.equalsLower(p, n, "keep-alive") ? .keepAlive : .other
        case 12: return ByteClass.equalsLower(p, n, "x-request-id") ? .xRequestID : .other
        case 14: return ByteClass.equalsLower(p, n, "content-length") ? .contentLength : .other
        case 15: return ByteClass.equalsLower(p, n, "x-forwarded-for") ? .xForwardedFor : .other
        case 16:
            if ByteClass.equalsLower(p, n, "x-forwarded-host") { return .xForwardedHost }
            if ByteClass.equalsLower(p, n, "x-switchyard-hop") { return .switchyardHop }
            return ByteClass.equalsLower(p, n, "proxy-connection") ? .proxyConnection : .other
        case 17:
            if ByteClass.equalsLower(p, n, "transfer-encoding") { return .transferEncoding }
            return ByteClass.equalsLower(p, n, "x-forwarded-proto") ? .xForwardedProto : .other
        case 18: return ByteClass.equalsLower(p, n, "x-switchyard-nonce") ? .switchyardSigned : .other
        case 20: return ByteClass.equalsLower(p, n, "x-switchyard-cluster") ? .switchyardCluster : .other
        case 22:
            if ByteClass.equalsLower(p, n, "x-switchyard-signature") { return .switchyardSigned }
            return ByteClass.equalsLower(p, n, "x-switchyard-timestamp") ? .switchyardSigned : .other
        default: return .other
        }
    }

    /// Hop-by-hop fields (RFC 9110 §7.6.1) never go to the next hop as received.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .upgrade: return true
        default: return false
        }
    }
}

/// One header field as offsets into the buffer the head was parsed from.
public struct HeaderField {
    public var nameStart: Int32
    public var nameLength: Int32
    public var valueStart: Int32
    public var valueLength: Int32
    public var kind: HeaderKind
    /// Set when a `Connection` option names this field, so it is dropped like a hop-by-hop field.
    public var dropped: Bool
    /// The line is exactly `name ": " value CRLF`, the form the gateway writes: runs of such lines
    /// are forwarded with one copy (HeadWriter).
    public var canonical: Bool = false
}

/// A fixed-capacity table of header fields, owned by a worker and reused for every head it parses.
public final class HeaderTable {
    public let capacity: Int
    public let fields: UnsafeMutablePointer<HeaderField>
    public var count = 0
    /// Bit `kind.rawValue` is set when a field of that kind was parsed: lets later passes skip
    /// the table when a kind is absent (most heads have no Connection options, no Expect, ...).
    public var presence: UInt32 = 0
    /// Index of the first Host field and how many there were.
    public var hostIndex = -1
    public var hostCount = 0

    /// Bit `kind.rawValue` is set when a kind was seen more than once; with it clear,
    /// `lastIndex(kind)` is the one field of that kind, and later passes need not walk the table.
    public var repeated: UInt32 = 0
    @usableFromInline let lastIndices: UnsafeMutablePointer<Int32>

    @inlinable @inline(__always) public func has(_ kind: HeaderKind) -> Bool { presence & (1 << UInt32(kind.rawValue)) != 0 }
    @inlinable @inline(__always) public func hasOne(_ kind: HeaderKind) -> Bool {
        (presence & ~repeated) & (1 << UInt32(kind.rawValue)) != 0
    }
    /// Index of the last field of `kind` (valid only when `has(kind)`).
    @inlinable @inline(__always) public func lastIndex(_ kind: HeaderKind) -> Int { Int(lastIndices[Int(kind.rawValue)]) }

    /// Byte classes by byte value (`tokenByte`, `hostByte`): one load per byte, where the bit
    /// test of `ByteClass.isToken` costs two branches. Per table rather than global, because a
    /// lazily initialised global costs a `swift_once` check per use.
    public let byteClasses: UnsafeMutablePointer<UInt8>
    public static let tokenByte: UInt8 = 1
    public static let hostByte: UInt8 = 2
    /// ':', '[' and ']': the bytes that shape "name[:port]".
    public static let hostDelimiter: UInt8 = 4
    public static let digit: UInt8 = 8
    /// A letter some known field name starts with (c, e, h, k, p, t, u, v, x, either case):
    /// names starting otherwise (Accept, Date, Server, ...) are `.other` without a compare.
    public static let knownNameStart: UInt8 = 16

    public init(capacity: Int) {
        self.capacity = capacity
        fields = .allocate(capacity: max(capacity, 1))
        byteClasses = .allocate(capacity: 256)
        lastIndices = .allocate(capacity: 32)
        lastIndices.initialize(repeating: 0, count: 32)
        for b in 0..<256 {
            let c = UInt8(b)
            byteClasses[b] = (ByteClass.isToken(c) ? Self.tokenByte : 0) | (isHostByte(c) ? Self.hostByte : 0)
                | (c == 0x3A || c == 0x5B || c == 0x5D ? Self.hostDelimiter : 0) | (c >= 0x30 && c <= 0x39 ? Self.digit : 0)
                | ("cehkptuvxCEHKPTUVX".utf8.contains(c) ? Self.knownNameStart : 0)
        }
    }

    deinit {
        fields.deallocate()
        byteClasses.deallocate()
        lastIndices.deallocate()
    }

    @inlinable @inline(__always) public subscript(i: Int) -> HeaderField {
        get { fields[i] }
        set { fields[i] = newValue }
    }

    /// Parses the field lines in `p[from..<to]` (each ending in CRLF, the blank line excluded).
    /// Throws the reason for the first bad line.
    public func parse(_ p: UnsafePointer<UInt8>, from: Int, to: Int) throws(HTTPError) {
        count = 0
        presence = 0
        repeated = 0
        hostIndex = -1
        hostCount = 0
        if from >= to { return }
        // Every byte of the block is checked once on the walk below: names against the token
        // table, whitespace by value, and values (with their trailing whitespace) by `valueEnd`,
        // which notes any CTL other than HTAB, or DEL. It stops at the first CR, and an LF must
        // follow it (RFC 9112 §2.2).
        var invalid = false
        let classes = UnsafePointer(byteClasses)
        var i = from
        while i < to {
            let c = p[i]
            // obs-fold (RFC 9112 §5.2): a line starting with whitespace continues the previous one.
            if c == 0x20 || c == 0x09 { throw .obsFold }
            let nameStart = i
            // No bound check needed: every line of the block ends in CRLF, and CR is no token byte.
            while classes[Int(p[i])] & Self.tokenByte != 0 { i &+= 1 }
            if p[i] != 0x3A {  // ':'
                if p[i] == 0x20 || p[i] == 0x09 { throw .spaceBeforeColon }
                throw .badHeaderName
            }
            let nameLength = i &- nameStart
            if nameLength == 0 { throw .badHeaderName }
            i &+= 1
            while p[i] == 0x20 || p[i] == 0x09 { i &+= 1 }
            // The value ends at the first CR: every line of the block ends in CRLF, so one exists.
            let cr = Self.valueEnd(p, from: i, to: to, invalid: &invalid)
            if p[cr &+ 1] != 0x0A { throw .bareCR }
            let valueStart = i
            // One SP after the colon, no trailing whitespace: the line is in the form we write.
            let canonical = valueStart == nameStart &+ nameLength &+ 2 && p[valueStart &- 1] == 0x20
            var valueEnd = cr
            while valueEnd > valueStart && (p[valueEnd &- 1] == 0x20 || p[valueEnd &- 1] == 0x09) { valueEnd &-= 1 }
            if count == capacity { throw .tooManyHeaders }
            let kind = classes[Int(p[nameStart])] & Self.knownNameStart == 0
                ? HeaderKind.other : HeaderKind.classify(p + nameStart, nameLength)
            // Heads are at most 64 KiB, so every offset fits Int32.
            fields[count] = HeaderField(
                nameStart: Int32(truncatingIfNeeded: nameStart), nameLength: Int32(truncatingIfNeeded: nameLength),
                valueStart: Int32(truncatingIfNeeded: valueStart),
                valueLength: Int32(truncatingIfNeeded: valueEnd &- valueStart),
                kind: kind, dropped: false, canonical: canonical && valueEnd == cr)
            let bit: UInt32 = 1 << UInt32(kind.rawValue)
            repeated |= presence & bit
            presence |= bit
            lastIndices[Int(kind.rawValue)] = Int32(truncatingIfNeeded: count)
            if kind == .host {
                if hostCount == 0 { hostIndex = count }
                hostCount &+= 1
            }
            count &+= 1
            i = cr &+ 2
        }
        // Reported after the structure checks, so a malformed line is named for what it is.
        if invalid { throw .badHeaderValue }
    }

    /// Offset of the first CR in `p[from..<end]` (or `end`), eight bytes a step (SWAR), noting
    /// in `invalid` any CTL other than HTAB, or DEL, on the way (RFC 9110 §5.5).
    @inline(__always)
    private static func valueEnd(_ p: UnsafePointer<UInt8>, from: Int, to end: Int, invalid: inout Bool) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        var i = from
        while end &- i >= 8 {
            let x = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
            let d = x ^ (ones &* 0x7F)
            // The lowest set bit marks the first byte below 0x20 or equal to 0x7F (bits above it
            // may be false hits from borrows, so only that one is trusted).
            let hit = ((x &- ones &* 0x20) & ~x | (d &- ones) & ~d) & high
            if hit == 0 {
                i &+= 8
                continue
            }
            i &+= hit.trailingZeroBitCount >> 3
            let b = p[i]
            if b == 0x0D { return i }
            if b != 0x09 { invalid = true }
            i &+= 1
        }
        while i < end {
            let b = p[i]
            if b == 0x0D { return i }
            if (b < 0x20 && b != 0x09) || b == 0x7F { invalid = true }
            i &+= 1
        }
        return end
    }

    /// Marks fields named by `Connection` options as dropped (RFC 9110 §7.6.1). Framing fields and
    /// the ones we rewrite anyway are never dropped this way: naming them in Connection is an attack
    /// on the next hop, not a request.
    /// Returns the options the gateway itself acts on.
    public func applyConnectionOptions(_ p: UnsafePointer<UInt8>) -> (close: Bool, keepAlive: Bool, upgrade: Bool) {
        if !has(.connection) { return (false, false, false) }
        var close = false
        var keepAlive = false
        var upgrade = false
        // One Connection field (the usual case): no walk to find it.
        let only = hasOne(.connection) ? lastIndex(.connection) : -1
        for c in (only >= 0 ? only..<(only + 1) : 0..<count) where fields[c].kind == .connection {
            let f = fields[c]
            forEachListElement(p, Int(f.valueStart), Int(f.valueLength)) { s, n in
                if ByteClass.equalsLower(p + s, n, "close") { close = true; return }
                if ByteClass.equalsLower(p + s, n, "keep-alive") { keepAlive = true; return }
                if ByteClass.equalsLower(p + s, n, "upgrade") { upgrade = true; return }
                for j in 0..<count where fields[j].kind == .other && Int(fields[j].nameLength) == n {
                    if equalsIgnoringCase(p + Int(fields[j].nameStart), p + s, n) { fields[j].dropped = true }
                }
            }
        }
        return (close, keepAlive, upgrade)
    }
}

/// Calls `body(start, length)` for each non-empty element of a comma-separated list, trimmed.
@inlinable @inline(__always)
public func forEachListElement(_ p: UnsafePointer<UInt8>, _ start: Int, _ length: Int, _ body: (Int, Int) -> Void) {
    var i = start
    let end = start + length
    while i < end {
        while i < end && (p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x2C) { i += 1 }
        let s = i
        while i < end && p[i] != 0x2C { i += 1 }
        var e = i
        while e > s && (p[e - 1] == 0x20 || p[e - 1] == 0x09) { e -= 1 }
        if e > s { body(s, e - s) }
    }
}

@inlinable @inline(__always)
public func equalsIgnoringCase(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    for i in 0..<n {
        var x = a[i], y = b[i]
        if x >= 0x41 && x <= 0x5A { x |= 0x20 }
        if y >= 0x41 && y <= 0x5A { y |= 0x20 }
        if x != y { return false }
    }
    return true
}

/// A fixed-capacity byte buffer from a worker's pool: bytes live in `[start, end)`.
/// Parsers keep offsets into it (STYLE.md point 3); nothing here allocates after the pool warms up.
public struct IOBuffer {
    public let base: UnsafeMutablePointer<UInt8>
    public let capacity: Int
    public var start = 0
    public var end = 0

    public init(capacity: Int) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    /// A view over memory someone else owns (never given to a pool).
    public init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inlinable @inline(__always) public var count: Int { end - start }
    @inlinable @inline(__always) public var isEmpty: Bool { start == end }
    @inlinable @inline(__always) public var readPointer: UnsafeMutablePointer<UInt8> { base + start }
    @inlinable @inline(__always) public var writePointer: UnsafeMutablePointer<UInt8> { base + end }
    @inlinable @inline(__always) public var writableCount: Int { capacity - end }

    /// Drops `n` bytes from the front; an emptied buffer rewinds to offset 0.
    @inlinable @inline(__always) public mutating func consume(_ n: Int) {
        start += n
        if start == end { start = 0; end = 0 }
    }

    @inlinable @inline(__always) public mutating func clear() { start = 0; end = 0 }

    /// Moves the live bytes to offset 0 so the tail has room again. Returns how far they moved.
    @discardableResult
    public mutating func compact() -> Int {
        let shift = start
        if shift == 0 { return 0 }
        if count > 0 { (base).update(from: base + start, count: count) }
        end -= start
        start = 0
        return shift
    }

    @inlinable @inline(__always) public mutating func append(_ p: UnsafeRawPointer, _ n: Int) {
        precondition(n <= writableCount, "IOBuffer overflow")
        (base + end).update(from: p.assumingMemoryBound(to: UInt8.self), count: n)
        end += n
    }

    @inlinable @inline(__always) public mutating func append(_ s: StaticString) {
        append(s.utf8Start, s.utf8CodeUnitCount)
    }

    @inlinable @inline(__always) public mutating func append(byte: UInt8) {
        precondition(end < capacity, "IOBuffer overflow")
        base[end] = byte
        end += 1
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0.baseAddress!, $0.count) }
    }

    /// Appends a decimal number.
    public mutating func append(decimal v: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - n] = UInt8(truncatingIfNeeded: x % 10) &+ 48
                x /= 10
                n += 1
            } while x > 0
            append(d.baseAddress! + (20 - n), n)
        }
    }

    /// Appends `v` as lowercase hex, `width` digits (zero padded).
    public mutating func append(hex v: UInt64, width: Int) {
        precondition(width <= writableCount)
        if width == 16 {
            // Request ids: two words of eight digits each, without a loop per digit.
            Self.storeHex8(UInt32(truncatingIfNeeded: v >> 32), base + end)
            Self.storeHex8(UInt32(truncatingIfNeeded: v), base + end + 8)
            end += 16
            return
        }
        let digits: StaticString = "0123456789abcdef"
        let d = digits.utf8Start
        var x = v
        var i = end + width - 1
        while i >= end {
            base[i] = d[Int(x & 0xF)]
            x >>= 4
            i -= 1
        }
        end += width
    }
}

extension IOBuffer {
    /// Stores `v` as eight lowercase hex digits: the nibbles are spread one per byte and mapped
    /// to ASCII in one 64-bit word (SWAR).
    @inlinable @inline(__always)
    public static func storeHex8(_ v: UInt32, _ p: UnsafeMutablePointer<UInt8>) {
        var x = UInt64(v)
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFF
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FF
        x = (x | x << 4) & 0x0F0F_0F0F_0F0F_0F0F
        // Bytes holding 10...15 get 'a' - '0' - 10 more than the digits.
        let letters = ((x &+ 0x0606_0606_0606_0606) & 0x1010_1010_1010_1010) >> 4
        x = x &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
        // The most significant nibble is the high byte: big-endian order puts it first.
        UnsafeMutableRawPointer(p).storeBytes(of: x.bigEndian, as: UInt64.self)
    }
}

/// Per-worker pools of standard (16 KiB) and large (64 KiB) buffers. A connection takes a buffer
/// only while it has bytes to hold, so an idle keep-alive connection holds none. At most 4 MiB of
/// free buffers stay pooled per worker; the rest go back to the allocator.
public final class BufferPool {
    public static let standardSize = 16 * 1024
    public static let largeSize = 64 * 1024
    // Fixed stacks rather than arrays: a buffer moves in and out several times per request, and
    // Array's popLast/append cost a uniqueness check and bookkeeping each time.
    @usableFromInline let standard: UnsafeMutablePointer<IOBuffer>
    @usableFromInline let large: UnsafeMutablePointer<IOBuffer>
    @usableFromInline var standardCount = 0
    @usableFromInline var largeCount = 0
    @usableFromInline let keepStandard: Int
    @usableFromInline let keepLarge: Int

    public init(keepStandard: Int = 256, keepLarge: Int = 16) {
        self.keepStandard = keepStandard
        self.keepLarge = keepLarge
        standard = .allocate(capacity: max(keepStandard, 1))
        large = .allocate(capacity: max(keepLarge, 1))
    }

    @inlinable @inline(__always) public func take() -> IOBuffer {
        if standardCount > 0 {
            standardCount -= 1
            return standard[standardCount]
        }
        return IOBuffer(capacity: BufferPool.standardSize)
    }

    public func takeLarge() -> IOBuffer {
        if largeCount > 0 {
            largeCount -= 1
            return large[largeCount]
        }
        return IOBuffer(capacity: BufferPool.largeSize)
    }

    /// Makes room at the tail of a full buffer that holds an incomplete head: compact it, or move
    /// it into a large buffer. False when it is already a large buffer with no slack (the head
    /// limits keep that from happening with a valid configuration).
    public func makeRoom(_ b: inout IOBuffer) -> Bool {
        if b.start > 0 { b.compact(); return true }
        guard b.capacity < BufferPool.largeSize else { return false }
        var large = takeLarge()
        large.append(b.readPointer, b.count)
        give(b)
        b = large
        return true
    }

    /// Makes `b` (holding bytes, or empty) able to take `room` more bytes: compacts it, or moves
    /// its bytes into a buffer of `capacity` bytes (at least `b.count + room`), which `give`
    /// frees rather than pools. For a stream whose window is larger than a large buffer.
    public func grow(_ b: inout IOBuffer, room: Int, capacity: Int) {
        if b.writableCount >= room { return }
        if b.writableCount + b.start >= room { b.compact(); return }
        var bigger = IOBuffer(capacity: max(capacity, b.count + room))
        bigger.append(b.readPointer, b.count)
        give(b)
        b = bigger
    }

    @inlinable @inline(__always) public func give(_ b: IOBuffer) {
        var b = b
        b.clear()
        if b.capacity == BufferPool.standardSize {
            if standardCount < keepStandard {
                (standard + standardCount).initialize(to: b)
                standardCount += 1
                return
            }
        } else if b.capacity == BufferPool.largeSize && largeCount < keepLarge {
            (large + largeCount).initialize(to: b)
            largeCount += 1
            return
        }
        b.base.deallocate()  // pool full, or a buffer of another size (`grow`)
    }

    deinit {
        for i in 0..<standardCount { standard[i].base.deallocate() }
        for i in 0..<largeCount { large[i].base.deallocate() }
        standard.deallocate()
        large.deallocate()
    }
}

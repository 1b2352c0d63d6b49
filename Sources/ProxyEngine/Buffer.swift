/// A fixed-capacity byte buffer from a worker's pool: bytes live in `[start, end)`.
/// Parsers keep offsets into it (STYLE.md point 3); nothing here allocates after the pool warms up.
public struct IOBuffer {
    public let base: UnsafeMutablePointer<UInt8>
    public let capacity: Int
    public var start = 0
    public var end = 0

    init(capacity: Int) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    /// A view over memory someone else owns (never given to a pool).
    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always) public var count: Int { end - start }
    @inline(__always) public var isEmpty: Bool { start == end }
    @inline(__always) public var readPointer: UnsafeMutablePointer<UInt8> { base + start }
    @inline(__always) public var writePointer: UnsafeMutablePointer<UInt8> { base + end }
    @inline(__always) public var writableCount: Int { capacity - end }

    /// Drops `n` bytes from the front; an emptied buffer rewinds to offset 0.
    @inline(__always) public mutating func consume(_ n: Int) {
        start += n
        if start == end { start = 0; end = 0 }
    }

    @inline(__always) public mutating func clear() { start = 0; end = 0 }

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

    @inline(__always) public mutating func append(_ p: UnsafeRawPointer, _ n: Int) {
        precondition(n <= writableCount, "IOBuffer overflow")
        (base + end).update(from: p.assumingMemoryBound(to: UInt8.self), count: n)
        end += n
    }

    @inline(__always) public mutating func append(_ s: StaticString) {
        append(s.utf8Start, s.utf8CodeUnitCount)
    }

    @inline(__always) public mutating func append(byte: UInt8) {
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

/// Per-worker pools of standard (16 KiB) and large (64 KiB) buffers. A connection takes a buffer
/// only while it has bytes to hold, so an idle keep-alive connection holds none. At most 4 MiB of
/// free buffers stay pooled per worker; the rest go back to the allocator.
public final class BufferPool {
    public static let standardSize = 16 * 1024
    public static let largeSize = 64 * 1024
    private var standard: [IOBuffer] = []
    private var large: [IOBuffer] = []
    private let keepStandard: Int
    private let keepLarge: Int

    public init(keepStandard: Int = 256, keepLarge: Int = 16) {
        self.keepStandard = keepStandard
        self.keepLarge = keepLarge
        standard.reserveCapacity(keepStandard)
        large.reserveCapacity(keepLarge)
    }

    @inline(__always) public func take() -> IOBuffer {
        if let b = standard.popLast() { return b }
        return IOBuffer(capacity: BufferPool.standardSize)
    }

    public func takeLarge() -> IOBuffer {
        if let b = large.popLast() { return b }
        return IOBuffer(capacity: BufferPool.largeSize)
    }

    /// Makes room at the tail of a full buffer that holds an incomplete head: compact it, or move
    /// it into a large buffer. False when it is already a large buffer with no slack (the head
    /// limits keep that from happening with a valid configuration).
    func makeRoom(_ b: inout IOBuffer) -> Bool {
        if b.start > 0 { b.compact(); return true }
        guard b.capacity < BufferPool.largeSize else { return false }
        var large = takeLarge()
        large.append(b.readPointer, b.count)
        give(b)
        b = large
        return true
    }

    @inline(__always) public func give(_ b: IOBuffer) {
        var b = b
        b.clear()
        if b.capacity == BufferPool.standardSize {
            if standard.count < keepStandard { standard.append(b); return }
        } else if large.count < keepLarge {
            large.append(b); return
        }
        b.base.deallocate()
    }

    deinit {
        for b in standard { b.base.deallocate() }
        for b in large { b.base.deallocate() }
    }
}

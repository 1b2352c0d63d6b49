/// Name → certificate index, looked up on the raw SNI bytes during a handshake without building
/// a String: FNV-1a over the lowercased bytes, a sorted hash array, binary search, then a byte
/// comparison among the (rare) equal hashes.
struct NameIndex: Sendable {
    private var hashes: [UInt64] = []
    private var keys: [[UInt8]] = []
    private var targets: [Int] = []

    /// `entries` in priority order: when a name appears twice, the first entry keeps it.
    init(_ entries: [(key: [UInt8], target: Int)]) {
        var seen = Set<[UInt8]>()
        var rows: [(hash: UInt64, key: [UInt8], target: Int, order: Int)] = []
        for (order, e) in entries.enumerated() where seen.insert(e.key).inserted {
            let h = e.key.withUnsafeBytes { NameIndex.hash($0) }
            rows.append((h, e.key, e.target, order))
        }
        rows.sort { ($0.hash, $0.order) < ($1.hash, $1.order) }
        hashes = rows.map(\.hash)
        keys = rows.map(\.key)
        targets = rows.map(\.target)
    }

    var isEmpty: Bool { hashes.isEmpty }

    /// The target for `key` (any case; keys were stored lowercase).
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        let h = NameIndex.hash(key)
        var lo = 0, hi = hashes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if hashes[mid] < h { lo = mid + 1 } else { hi = mid }
        }
        while lo < hashes.count && hashes[lo] == h {
            if keys[lo].withUnsafeBytes({ HostName.equal($0, key) }) { return targets[lo] }
            lo += 1
        }
        return nil
    }

    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in b {
            h ^= UInt64(HostName.lower(byte))
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}

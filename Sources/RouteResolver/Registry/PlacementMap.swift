/// One shard's placements: (pool, key) → node, host port and creation time, in an open-addressing
/// table with linear probing.
///
/// Built for a million placements at a few dozen bytes each, looked up by raw key bytes without
/// creating a String: a `[String: ...]` would cost a String (and often a heap object) per key
/// and an allocation per lookup to build the String. Keys live back to back in one byte arena;
/// each slot holds the key's offset and length, 32 bits of its hash (to skip most compares) and
/// small ids for the pool and the node. Entries are rarely removed one by one (placements move,
/// they are not deleted, on the request path; `remove(at:)` serves deletions another writer made);
/// dropping a node's placements rebuilds the table, which also compacts the arena.
struct PlacementMap {
    /// 24 bytes; ordered widest first so Swift's layout adds no padding before the tail.
    struct Slot {
        var createdAt: Int64 = 0
        /// Low 32 bits of the key's hash, never 0: 0 marks an empty slot.
        var tag: UInt32 = 0
        var keyOffset: UInt32 = 0
        var node: UInt16 = 0
        var pool: UInt16 = 0
        var hostPort: UInt16 = 0
        var keyLength: UInt8 = 0
    }

    private(set) var slots: [Slot]
    private var keyBytes: [UInt8] = []
    /// Bytes of `keyBytes` that belong to removed keys.
    private var deadKeyBytes = 0
    private(set) var count = 0

    init(minimumCapacity: Int = 0) {
        var size = 16
        while size * 3 < minimumCapacity * 4 { size *= 2 }
        slots = Array(repeating: Slot(), count: size)
    }

    /// The tag stored for a key's 64-bit hash. The probe start is derived from the tag (not the
    /// full hash) so the table can rehash without the keys' full hashes.
    @inline(__always)
    static func tag(_ hash: UInt64) -> UInt32 {
        let low = UInt32(truncatingIfNeeded: hash)
        return low == 0 ? 1 : low
    }

    /// The slot holding (pool, key), or nil.
    @inline(__always)
    func find(pool: UInt16, key: UnsafeRawBufferPointer, tag: UInt32) -> Int? {
        let mask = slots.count - 1
        var i = Int(tag) & mask
        while true {
            let s = slots[i]
            if s.tag == 0 { return nil }
            if s.tag == tag, s.pool == pool, Int(s.keyLength) == key.count, keyEquals(s.keyOffset, key) {
                return i
            }
            i = (i + 1) & mask
        }
    }

    /// Adds (pool, key), which must not be present; returns its slot. Keys are at most 255 bytes
    /// (the registry accepts 64).
    mutating func insert(pool: UInt16, key: UnsafeRawBufferPointer, tag: UInt32,
                         node: UInt16, hostPort: UInt16, createdAt: Int64) -> Int {
        // Grow at 3/4 full: linear probing's expected probe length climbs steeply beyond that.
        if (count + 1) * 4 > slots.count * 3 { rehash(capacity: slots.count * 2) }
        let offset = UInt32(keyBytes.count)
        keyBytes.append(contentsOf: key)
        let slot = Slot(createdAt: createdAt, tag: tag, keyOffset: offset, node: node, pool: pool,
                        hostPort: hostPort, keyLength: UInt8(key.count))
        count += 1
        return place(slot)
    }

    /// Changes where an existing slot's key lives.
    mutating func setNode(_ node: UInt16, hostPort: UInt16, at index: Int) {
        slots[index].node = node
        slots[index].hostPort = hostPort
    }

    mutating func setHostPort(_ port: UInt16, at index: Int) {
        slots[index].hostPort = port
    }

    /// The key of an occupied slot, as a String (for store records and admin answers).
    func key(at index: Int) -> String {
        let s = slots[index]
        let start = Int(s.keyOffset)
        return String(decoding: keyBytes[start..<(start + Int(s.keyLength))], as: UTF8.self)
    }

    /// Calls `body` with every occupied slot's index.
    func forEachOccupied(_ body: (Int) -> Void) {
        for i in slots.indices where slots[i].tag != 0 { body(i) }
    }

    /// Removes every entry `shouldRemove` accepts, calling `removed` with each one's slot and
    /// key first; rebuilds the table and its key arena. Returns how many were removed.
    mutating func removeAll(where shouldRemove: (Slot) -> Bool, removed: (Slot, String) -> Void) -> Int {
        removeAll(whereKey: { slot, _ in shouldRemove(slot) }, removed: removed)
    }

    /// `removeAll(where:removed:)` deciding by the slot and its key bytes.
    mutating func removeAll(whereKey shouldRemove: (Slot, UnsafeRawBufferPointer) -> Bool, removed: (Slot, String) -> Void) -> Int {
        var kept = PlacementMap(minimumCapacity: count)
        var dropped = 0
        keyBytes.withUnsafeBytes { arena in
            for s in slots where s.tag != 0 {
                let key = UnsafeRawBufferPointer(rebasing: arena[Int(s.keyOffset)..<(Int(s.keyOffset) + Int(s.keyLength))])
                if shouldRemove(s, key) {
                    removed(s, String(decoding: key, as: UTF8.self))
                    dropped += 1
                } else {
                    _ = kept.insert(pool: s.pool, key: key, tag: s.tag, node: s.node, hostPort: s.hostPort,
                                    createdAt: s.createdAt)
                }
            }
        }
        self = kept
        return dropped
    }

    /// Removes one entry by backward-shift deletion (no tombstones, so lookups stay as short as
    /// before). The key's bytes stay in the arena until the next rehash or rebuild; a table with
    /// as many dead bytes as live ones is rebuilt at once.
    mutating func remove(at index: Int) {
        let mask = slots.count - 1
        var hole = index
        var j = index
        deadKeyBytes += Int(slots[hole].keyLength)
        slots[hole] = Slot()
        count -= 1
        defer { if deadKeyBytes > 4096 && deadKeyBytes * 2 > keyBytes.count { rehash(capacity: slots.count) } }
        while true {
            j = (j + 1) & mask
            let s = slots[j]
            if s.tag == 0 { return }
            let home = Int(s.tag) & mask
            // `s` may fill the hole only if its home is not in (hole, j] (cyclically): otherwise a
            // lookup starting at its home would stop at the hole before reaching it.
            let between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if between { continue }
            slots[hole] = s
            slots[j] = Slot()
            hole = j
        }
    }

    /// Bytes held by the table and its arena (capacity, not just use), for memory reports.
    var footprintBytes: Int {
        slots.capacity * MemoryLayout<Slot>.stride + keyBytes.capacity
    }

    // MARK: - Private

    @inline(__always)
    private func keyEquals(_ offset: UInt32, _ key: UnsafeRawBufferPointer) -> Bool {
        keyBytes.withUnsafeBytes { arena in
            let base = Int(offset)
            for j in 0..<key.count where arena[base + j] != key[j] { return false }
            return true
        }
    }

    /// Puts a slot into the first empty place of its probe sequence.
    private mutating func place(_ slot: Slot) -> Int {
        let mask = slots.count - 1
        var i = Int(slot.tag) & mask
        while slots[i].tag != 0 { i = (i + 1) & mask }
        slots[i] = slot
        return i
    }

    /// Grows the table; the key arena is rebuilt on the way, so the bytes of keys removed one by
    /// one (`remove(at:)`) are reclaimed here rather than growing the arena forever.
    private mutating func rehash(capacity: Int) {
        let old = slots
        let oldKeys = keyBytes
        slots = Array(repeating: Slot(), count: capacity)
        keyBytes = []
        deadKeyBytes = 0
        keyBytes.reserveCapacity(oldKeys.count)
        for var s in old where s.tag != 0 {
            let start = Int(s.keyOffset)
            s.keyOffset = UInt32(keyBytes.count)
            keyBytes.append(contentsOf: oldKeys[start..<(start + Int(s.keyLength))])
            _ = place(s)
        }
    }
}

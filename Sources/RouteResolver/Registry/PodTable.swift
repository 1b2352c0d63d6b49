/// One shard's pods: id → `PodRecord`, in an open-addressing index (linear probing) over the
/// records, looked up by raw key bytes. A `[String: PodRecord]` would need a String built from
/// the request's bytes for every lookup (a heap allocation past 15 bytes); here a lookup hashes
/// nothing more than `KeyDigest` already did and compares bytes in place.
///
/// Records live densely in `records` (removal swaps the last one in), so listing a shard is a
/// plain walk; each index slot holds the key's 32-bit tag (0: empty) and its record's position.
struct PodTable {
    struct Slot {
        /// `KeyDigest.tag` of the id, never 0: 0 marks an empty slot.
        var tag: UInt32 = 0
        var record: Int32 = 0
    }

    private(set) var records: [PodRecord] = []
    /// `tags[i]`: the tag of `records[i]`, to find its slot again when it moves.
    private var tags: [UInt32] = []
    private var slots: [Slot]

    init(minimumCapacity: Int = 0) {
        var size = 16
        while size * 3 < minimumCapacity * 4 { size *= 2 }
        slots = Array(repeating: Slot(), count: size)
    }

    var count: Int { records.count }

    /// The position in `records` of the pod whose id is `key`, or nil.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, tag: UInt32) -> Int? {
        slot(of: key, tag: tag).map { Int(slots[$0].record) }
    }

    /// Adds a pod whose id is not present.
    mutating func insert(_ record: PodRecord, tag: UInt32) {
        if (records.count + 1) * 4 > slots.count * 3 { rehash(capacity: slots.count * 2) }
        records.append(record)
        tags.append(tag)
        place(Slot(tag: tag, record: Int32(records.count - 1)))
    }

    /// Replaces the record at `index` (same id).
    mutating func replace(at index: Int, with record: PodRecord) {
        records[index] = record
    }

    /// Removes the record at `index`: its slot by backward-shift deletion (no tombstones), the
    /// record by moving the last one into its place.
    mutating func remove(at index: Int) {
        guard let hole = slot(pointingAt: index) else { preconditionFailure("pod table: record without a slot") }
        removeSlot(hole)
        let last = records.count - 1
        if index != last {
            guard let moved = slot(pointingAt: last) else { preconditionFailure("pod table: record without a slot") }
            slots[moved].record = Int32(index)
            records[index] = records[last]
            tags[index] = tags[last]
        }
        records.removeLast()
        tags.removeLast()
    }

    /// Keeps only the records `keep` accepts; calls `removed` with each other one.
    mutating func removeAll(keeping keep: (PodRecord) -> Bool, removed: (PodRecord) -> Void) -> Int {
        var kept = PodTable(minimumCapacity: records.count)
        var dropped = 0
        for (record, tag) in zip(records, tags) {
            if keep(record) { kept.insert(record, tag: tag) } else { removed(record); dropped += 1 }
        }
        self = kept
        return dropped
    }

    // MARK: - Private

    @inline(__always)
    private func slot(of key: UnsafeRawBufferPointer, tag: UInt32) -> Int? {
        let mask = slots.count - 1
        var i = Int(tag) & mask
        while true {
            let s = slots[i]
            if s.tag == 0 { return nil }
            if s.tag == tag, Self.equals(records[Int(s.record)].id, key) { return i }
            i = (i + 1) & mask
        }
    }

    /// Whether `id`'s UTF-8 is `key`, without copying either (a native String, small or not,
    /// has contiguous UTF-8).
    @inline(__always)
    private static func equals(_ id: String, _ key: UnsafeRawBufferPointer) -> Bool {
        let utf8 = id.utf8
        guard utf8.count == key.count else { return false }
        return utf8.withContiguousStorageIfAvailable { bytes in
            for j in 0..<bytes.count where bytes[j] != key[j] { return false }
            return true
        } ?? utf8.elementsEqual(key)
    }

    private func slot(pointingAt index: Int) -> Int? {
        let mask = slots.count - 1
        var i = Int(tags[index]) & mask
        while slots[i].tag != 0 {
            if Int(slots[i].record) == index { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    private mutating func removeSlot(_ index: Int) {
        let mask = slots.count - 1
        var hole = index
        var j = index
        slots[hole] = Slot()
        while true {
            j = (j + 1) & mask
            let s = slots[j]
            if s.tag == 0 { return }
            let home = Int(s.tag) & mask
            // `s` may fill the hole only if its home is not in (hole, j] (cyclically), as in
            // `PlacementMap.remove(at:)`.
            let between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if between { continue }
            slots[hole] = s
            slots[j] = Slot()
            hole = j
        }
    }

    private mutating func place(_ slot: Slot) {
        let mask = slots.count - 1
        var i = Int(slot.tag) & mask
        while slots[i].tag != 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func rehash(capacity: Int) {
        slots = Array(repeating: Slot(), count: capacity)
        for (i, tag) in tags.enumerated() { place(Slot(tag: tag, record: Int32(i))) }
    }
}

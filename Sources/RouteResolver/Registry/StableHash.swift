/// A 64-bit hash that is the same on every machine, every run and every gateway instance:
/// FNV-1a over the bytes, then the SplitMix64 finalizer.
///
/// Swift's `Hasher` is seeded per process, so it cannot decide where a user lives. FNV-1a is
/// tiny and byte-serial (so a key's state can be computed once and continued over each node's
/// name), but its low bits avalanche poorly; the SplitMix64 finalizer fixes that.
///
/// Never change these functions or their constants: the placement golden tests pin them, and a
/// change would send new users of every gateway instance to different nodes than before.
public enum StableHash {
    static let fnvOffsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    static let fnvPrime: UInt64 = 0x0000_0100_0000_01B3
    /// Separates the key from the node name in rendezvous hashing. It is in neither alphabet
    /// (keys are `[A-Za-z0-9_-]`, node names `[A-Za-z0-9._-]`), so ("ab", "c") and ("a", "bc")
    /// can never hash the same input.
    static let separator: UInt8 = 0xFF

    /// The hash of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        finalize(fnv1a(bytes, from: fnvOffsetBasis))
    }

    /// The rendezvous hash of a key on a node: `hash(key ‖ 0xFF ‖ node name)`.
    public static func hash(key: UnsafeRawBufferPointer, node: String) -> UInt64 {
        var name = node
        return name.withUTF8 { rendezvous(keyState: keyState(key), nodeName: UnsafeRawBufferPointer($0)) }
    }

    /// FNV-1a state after the key and the separator: the common prefix of every node's input,
    /// so choosing among N nodes reads the key's bytes once.
    @inline(__always)
    static func keyState(_ key: UnsafeRawBufferPointer) -> UInt64 {
        fnvStep(fnv1a(key, from: fnvOffsetBasis), separator)
    }

    /// Continues a `keyState` over a node's name and finalizes it.
    @inline(__always)
    static func rendezvous(keyState: UInt64, nodeName: UnsafeRawBufferPointer) -> UInt64 {
        finalize(fnv1a(nodeName, from: keyState))
    }

    @inline(__always)
    static func fnv1a(_ bytes: UnsafeRawBufferPointer, from state: UInt64) -> UInt64 {
        var h = state
        for b in bytes { h = fnvStep(h, b) }
        return h
    }

    @inline(__always)
    static func fnvStep(_ h: UInt64, _ byte: UInt8) -> UInt64 {
        (h ^ UInt64(byte)) &* fnvPrime
    }

    /// SplitMix64's output function (Steele, Lea, Flood 2014): every input bit flips each output
    /// bit with probability close to 1/2.
    @inline(__always)
    static func finalize(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A key's hashes, computed in one pass that also validates it: `tableHash` finds its shard and
/// slot, `keyState` continues into each node's name for rendezvous.
struct KeyDigest {
    let tableHash: UInt64
    let keyState: UInt64

    /// Nil unless `key` is 1...64 bytes of `[A-Za-z0-9_-]`: the registry stores only such keys.
    @inline(__always)
    init?(_ key: UnsafeRawBufferPointer) {
        guard key.count >= 1, key.count <= KeyExtractor.maxKeyLength else { return nil }
        var h = StableHash.fnvOffsetBasis
        for b in key {
            guard Self.isKeyByte(b) else { return nil }
            h = StableHash.fnvStep(h, b)
        }
        tableHash = StableHash.finalize(h)
        keyState = StableHash.fnvStep(h, StableHash.separator)
    }

    /// `[A-Za-z0-9_-]` as a 128-bit set: a shift and a mask per byte with no branch to
    /// mispredict. `KeyExtractor.isKeyByte` answers the same with compares; this loop runs on
    /// every lookup and profiles showed the compares costing as much as the hashing.
    @inline(__always)
    static func isKeyByte(_ b: UInt8) -> Bool {
        // Bits 45 ('-') and 48-57 ('0'-'9') of 0..<64; 'A'-'Z', '_' and 'a'-'z' of 64..<128.
        let low: UInt64 = 0x03FF_2000_0000_0000
        let high: UInt64 = 0x07FF_FFFE_87FF_FFFE
        let word = b < 64 ? low : high
        return b < 128 && (word >> UInt64(b & 63)) & 1 != 0
    }

    /// The high half picks the shard and the low half is the slot tag, so the two are independent.
    @inline(__always)
    func shard(of count: Int) -> Int { Int(truncatingIfNeeded: tableHash >> 32) & (count - 1) }

    @inline(__always)
    var tag: UInt32 { PlacementMap.tag(tableHash) }
}

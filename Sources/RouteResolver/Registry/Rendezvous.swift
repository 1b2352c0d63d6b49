/// Weighted rendezvous (highest random weight) hashing: every node gets a score for the key and
/// the highest score wins. With `score = weight / -ln(u)`, u uniform in (0, 1), a node wins with
/// probability weight / Σ weights, and adding a node only takes keys for itself: the other
/// nodes' scores for a key do not change, so a key either keeps its winner or moves to the new
/// node (Schindelhauer & Schomaker, "Weighted distributed hash tables", 2005).
public enum Rendezvous {
    /// The score of a node of `weight` for a stable hash of (key, node).
    @inline(__always)
    public static func score(weight: Int, hash: UInt64) -> Double {
        Double(weight) / negativeLog(unitInterval(hash))
    }

    /// Maps a hash to (0, 1), both ends excluded: 52 bits plus one half, scaled. Taking 53 bits
    /// would round the largest value up to exactly 1.0 (whose log is 0: an infinite score).
    @inline(__always)
    static func unitInterval(_ hash: UInt64) -> Double {
        (Double(hash >> 12) + 0.5) * 0x1p-52
    }

    /// -ln(u) for u in (0, 1), computed with + - * / only. The platform `log` may differ in the
    /// last bit between libm versions; these operations are exactly rounded by IEEE 754 on every
    /// machine, so every gateway instance computes the same scores and picks the same node.
    @inline(__always)
    static func negativeLog(_ u: Double) -> Double {
        -naturalLog(u)
    }

    /// ln(x) for finite x > 0: x = m·2^e with m in [√½, √2), then ln m = 2·atanh(s) with
    /// s = (m-1)/(m+1), |s| ≤ 0.1716, summed to s²¹ (the next term is below 1e-17 of the result).
    static func naturalLog(_ x: Double) -> Double {
        var e = Double(x.exponent)
        var m = x.significand
        if m > 1.414_213_562_373_095_1 {
            m *= 0.5
            e += 1
        }
        let s = (m - 1) / (m + 1)
        let s2 = s * s
        // Horner form of 1 + s²/3 + s⁴/5 + ... + s²²/23.
        var p = 1.0 / 23
        p = p * s2 + 1.0 / 21
        p = p * s2 + 1.0 / 19
        p = p * s2 + 1.0 / 17
        p = p * s2 + 1.0 / 15
        p = p * s2 + 1.0 / 13
        p = p * s2 + 1.0 / 11
        p = p * s2 + 1.0 / 9
        p = p * s2 + 1.0 / 7
        p = p * s2 + 1.0 / 5
        p = p * s2 + 1.0 / 3
        p = p * s2 + 1
        return e * 0.693_147_180_559_945_3 + 2 * s * p
    }
}

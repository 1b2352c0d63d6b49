import Foundation
import Testing
@testable import RouteResolver

/// Measurements for the bars (1,000,000 placements: lookup p99 ≤ 1 µs, ≤ 256 bytes per
/// placement). Printed, never asserted: timings depend on the machine and the build. Run with
/// `SWITCHYARD_BENCH=1 swift test [-c release] --filter RegistryBench`.
@Suite("Registry bench", .serialized, .enabled(if: ProcessInfo.processInfo.environment["SWITCHYARD_BENCH"] == "1"))
struct RegistryBenchTests {
    static let placements = 1_000_000
    static let keyLength = 24

    /// Writes key number `n` as 24 bytes like "user_000000000000123456": the length of a
    /// typical numeric or short-uuid user id with a prefix.
    static func writeKey(_ n: Int, into buffer: UnsafeMutableRawBufferPointer) {
        let prefix: StaticString = "user_"
        for i in 0..<prefix.utf8CodeUnitCount { buffer[i] = prefix.utf8Start[i] }
        var value = n
        for i in stride(from: keyLength - 1, through: prefix.utf8CodeUnitCount, by: -1) {
            buffer[i] = UInt8(ascii: "0") + UInt8(value % 10)
            value /= 10
        }
    }

    @Test("1M placements: memory per placement and existing-key lookup latency")
    func million() throws {
        let nodes = (0..<16).map { testNode("node-\($0)", weight: 100 + $0 * 10) }
        let rssBefore = residentBytes()
        let registry = try makeRegistry(nodes)
        let key = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.keyLength, alignment: 8)
        defer { key.deallocate() }
        let placeStart = monotonicNanos()
        for n in 0..<Self.placements {
            Self.writeKey(n, into: key)
            _ = registry.resolve(pool: "workspace", key: UnsafeRawBufferPointer(key), now: testNow)
        }
        let placeNanos = monotonicNanos() - placeStart
        let rssAfter = residentBytes()
        #expect(registry.placementCount == Self.placements)
        let tables = registry.shards.reduce(0) { sum, shard in sum + shard.state.withLock { $0.map.footprintBytes } }

        // Keys to look up, made before timing, in a scrambled order so lookups miss the caches
        // the way requests from many users do.
        let lookups = 2_000_000
        let keys = UnsafeMutableRawBufferPointer.allocate(byteCount: lookups * Self.keyLength, alignment: 8)
        defer { keys.deallocate() }
        for i in 0..<lookups {
            let n = Int(StableHash.finalize(UInt64(i)) % UInt64(Self.placements))
            Self.writeKey(n, into: UnsafeMutableRawBufferPointer(rebasing: keys[(i * Self.keyLength)...]))
        }
        for batch in [1, 16] {
            var perLookup: [Double] = []
            perLookup.reserveCapacity(lookups / batch)
            var misses = 0
            var i = 0
            while i + batch <= lookups {
                let start = monotonicNanos()
                for j in i..<(i + batch) {
                    let k = UnsafeRawBufferPointer(rebasing: keys[(j * Self.keyLength)..<((j + 1) * Self.keyLength)])
                    if case .routed(_, _, false) = registry.resolve(pool: "workspace", key: k, now: testNow) {} else { misses += 1 }
                }
                perLookup.append(Double(monotonicNanos() - start) / Double(batch))
                i += batch
            }
            perLookup.sort()
            func pct(_ p: Double) -> Double { perLookup[min(perLookup.count - 1, Int(Double(perLookup.count) * p))] }
            print("registry bench: lookup, batches of \(batch) (ns per lookup, incl. clock_gettime/\(batch)): "
                + "p50 \(Int(pct(0.50))) p99 \(Int(pct(0.99))) p99.9 \(Int(pct(0.999))) max \(Int(perLookup.last!)); misses \(misses)")
            #expect(misses == 0)
        }
        let grown = rssAfter - rssBefore
        print("registry bench: \(Self.placements) placements of \(Self.keyLength)-byte keys placed in "
            + "\(placeNanos / 1_000_000) ms (\(placeNanos / Int64(Self.placements)) ns each)")
        print("registry bench: RSS +\(grown / 1_048_576) MiB = \(grown / Self.placements) bytes per placement; "
            + "tables \(tables / Self.placements) bytes per placement")
    }

    @Test("1M placements loaded through init (the cold-start path after the store's read)")
    func load() throws {
        let nodes = (0..<16).map { testNode("node-\($0)") }
        let records = (0..<Self.placements).map {
            PlacementRecord(pool: "workspace", key: "user_\($0)", node: "node-\($0 % 16)", hostPort: 20_000, createdAt: 1)
        }
        let start = monotonicNanos()
        let registry = try makeRegistry(nodes, placements: records)
        let nanos = monotonicNanos() - start
        #expect(registry.placementCount == Self.placements)
        print("registry bench: init with \(Self.placements) placement records: \(nanos / 1_000_000) ms")
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// VmRSS from /proc/self/status, in bytes.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb * 1024
}

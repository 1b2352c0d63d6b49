import Foundation
import Testing
@testable import RegistryStore
import RouteResolver

/// Throughput and cold-start numbers for issue 3's bars. Prints, asserts nothing about time;
/// runs only with SWITCHYARD_BENCH=1.
@Suite("SQLiteStore: benchmark", .enabled(if: ProcessInfo.processInfo.environment["SWITCHYARD_BENCH"] == "1"))
struct StoreBenchmark {
    static let count = 1_000_000
    static let nodes = (0..<20).map { "ws-node-\($0)" }

    @Test func enqueueFlushAndLoadAMillionPlacements() throws {
        let dir = try StoreTestDirectory()
        let placements = (0..<Self.count).map { storePlacement($0, prefix: "user-", nodes: Self.nodes) }
        let clock = ContinuousClock()

        let store = try SQLiteStore(path: dir.databasePath)
        try store.applyNow(Self.nodes.map { .upsertNode(storeNode($0)) })
        var enqueueTime = Duration.zero
        let total = clock.measure {
            enqueueTime = clock.measure {
                for placement in placements { store.enqueue(.upsertPlacement(placement)) }
            }
            store.flush()
        }
        let stats = store.statistics
        store.close()
        print("store bench: \(Self.count) placements enqueue+flush \(total) -> "
            + "\(Int(Double(Self.count) / seconds(total))) placements/s; enqueue alone \(enqueueTime) "
            + "(\(Int(seconds(enqueueTime) * 1e9 / Double(Self.count))) ns each); "
            + "\(stats.committedBatches) batches, largest \(stats.largestBatch), dropped \(stats.droppedChanges)")

        let reopened = try SQLiteStore(path: dir.databasePath)
        var loaded: [PlacementRecord] = []
        let open = try clock.measure { _ = try SQLiteStore(path: dir.databasePath) }
        let load = try clock.measure { loaded = try reopened.loadAll().placements }
        print("store bench: loadAll of \(loaded.count) placements \(load); open \(open)")
        #expect(loaded.count == Self.count)

        // Steady updates against the full table (random keys already present: last_active bumps).
        var generator = SystemRandomNumberGenerator()
        let updates = (0..<100_000).map { _ in
            var p = placements[Int.random(in: 0..<Self.count, using: &generator)]
            p.lastActive += 1
            return p
        }
        let update = clock.measure {
            for placement in updates { reopened.enqueue(.upsertPlacement(placement)) }
            reopened.flush()
        }
        print("store bench: 100000 random upserts into 1M rows \(update) -> "
            + "\(Int(Double(updates.count) / seconds(update))) upserts/s; size of StoreChange "
            + "\(MemoryLayout<StoreChange>.stride) bytes")
        reopened.close()
    }
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

import Synchronization
import Testing
@testable import RouteResolver

@Suite("Registry under concurrent workers")
struct RegistryConcurrencyTests {
    @Test("4 threads racing to place the same new keys: one placement per key, one answer, exact counts")
    func samePlacementRace() throws {
        let store = RecordingStore()
        let registry = try makeRegistry((0..<5).map { testNode("n\($0)") }, store: store)
        let keys = testKeys(5_000)
        let answers = Mutex<[[String]]>(Array(repeating: [], count: 4))
        onThreads(4) { thread in
            // Each thread walks the keys from a different starting point, so they collide
            // everywhere rather than in lockstep.
            let offset = thread * keys.count / 4
            var mine = Array(repeating: "", count: keys.count)
            for step in keys.indices {
                let i = (step + offset) % keys.count
                mine[i] = registry.nodeName(keys[i]) ?? "none"
            }
            answers.withLock { $0[thread] = mine }
        }
        let all = answers.withLock { $0 }
        for thread in 1..<4 { #expect(all[thread] == all[0]) }
        #expect(!all[0].contains("none"))
        #expect(registry.placementCount == keys.count)
        #expect(store.placementUpserts.count == keys.count)
        #expect(Set(store.placementUpserts.map(\.key)).count == keys.count)
        let perNode = Dictionary(grouping: all[0], by: { $0 }).mapValues(\.count)
        for node in registry.nodes { #expect(node.placementCount == perNode[node.name, default: 0]) }
    }

    @Test("4 threads filling limited capacity with different keys never overshoot it")
    func capacityRace() throws {
        let registry = try makeRegistry([testNode("a", capacity: 300), testNode("b", capacity: 200)])
        let keys = testKeys(2_000)
        let counters = RaceCounters()
        onThreads(4) { thread in
            for key in keys[(thread * 500)..<((thread + 1) * 500)] {
                switch registry.resolve(key) {
                case .routed: counters.succeeded.add(1, ordering: .relaxed)
                case .insufficientCapacity: counters.failed.add(1, ordering: .relaxed)
                default: break
                }
            }
        }
        #expect(counters.succeeded.load(ordering: .relaxed) == 500)
        #expect(counters.failed.load(ordering: .relaxed) == 1_500)
        #expect(registry.count(on: "a") == 300)
        #expect(registry.count(on: "b") == 200)
        #expect(registry.placementCount == 500)
    }

    @Test("Lookups keep answering while nodes change on another thread")
    func readersDuringNodeChanges() throws {
        let registry = try makeRegistry((0..<4).map { testNode("n\($0)") })
        let keys = testKeys(2_000)
        let expected = keys.map { registry.nodeName($0) }
        let counters = RaceCounters()
        onThreads(3) { thread in
            if thread == 0 {
                for round in 0..<200 {
                    try? registry.upsertNode(testNode("extra-\(round % 7)", weight: 1 + round))
                    try? registry.setEnabled(name: "n\(round % 4)", round % 2 == 0, now: testNow)
                    _ = try? registry.heartbeat(name: "n\(round % 4)", now: testNow)
                }
            } else {
                for _ in 0..<5 {
                    for (key, node) in zip(keys, expected) where registry.nodeName(key) != node {
                        counters.failed.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        #expect(counters.failed.load(ordering: .relaxed) == 0)
        #expect(registry.placementCount == keys.count)
    }
}

/// Counters shared by test threads.
final class RaceCounters: Sendable {
    let succeeded = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
}

import Synchronization
import Testing
@testable import RouteResolver

/// `Registry.applyExternal`: changes another writer committed reach memory with the same effects
/// as local ones, and nothing goes back to the store.
@Suite("Registry: change feed")
struct RegistryFeedTests {
    let nodes = [testNode("n1"), testNode("n2"), testNode("n3")]

    @Test("A placement made elsewhere is routed here without placing anew or writing")
    func remotePlacementIsAdopted() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        // The node rendezvous would not pick, so the test sees the remote row win.
        let local = try #require(registry.wouldPlace("alice"))
        let remote = nodes.map(\.name).first { $0 != local }!
        let r = registry.applyExternal([.upsertPlacement(PlacementRecord(pool: "workspace", key: "alice", node: remote, hostPort: 20_001))])
        #expect(r == Registry.FeedResult.with(applied: 1))
        guard case .routed(let node, 20_001, false) = registry.resolve("alice") else { Issue.record("not adopted"); return }
        #expect(node.name == remote)
        #expect(registry.placementCount == 1 && registry.count(on: remote) == 1)
        #expect(store.recorded.isEmpty)
    }

    @Test("A move made elsewhere is announced (tunnels close here too) and the counts follow")
    func remoteMoveIsAnnounced() throws {
        let registry = try makeRegistry(nodes)
        let from = try #require(registry.nodeName("bob"))
        let to = nodes.map(\.name).first { $0 != from }!
        let heard = Mutex<[MovedPlacement]>([])
        registry.observeMoves { moved in heard.withLock { $0 += moved } }
        let r = registry.applyExternal([.upsertPlacement(PlacementRecord(pool: "workspace", key: "bob", node: to))])
        #expect(r.moved == [MovedPlacement(pool: "workspace", key: "bob", from: from, to: to)])
        #expect(heard.withLock { $0 } == r.moved)
        #expect(registry.nodeName("bob") == to)
        #expect(registry.count(on: from) == 0 && registry.count(on: to) == 1)
        // The same row again (a re-read): no move, nothing announced twice.
        #expect(registry.applyExternal([.upsertPlacement(PlacementRecord(pool: "workspace", key: "bob", node: to))]).moved.isEmpty)
        #expect(heard.withLock { $0.count } == 1)
    }

    @Test("Deleted placements and nodes leave memory; their keys are placed anew")
    func remoteDeletions() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        let keys = testKeys(300)
        for key in keys { _ = registry.resolve(key) }
        let onN1 = keys.filter { registry.nodeName($0) == "n1" }
        let gone = keys.filter { registry.nodeName($0) != "n1" }.prefix(50)
        var r = registry.applyExternal(gone.map { .deletePlacement(pool: "workspace", key: $0) })
        #expect(r.applied == 50 && r.skipped == 0)
        #expect(registry.placementCount == 250)
        // Every other key is still found where it was (deletion keeps probe chains intact).
        for key in keys where !gone.contains(key) { #expect(registry.placement(pool: "workspace", key: key) != nil) }
        for key in gone { #expect(registry.placement(pool: "workspace", key: key) == nil) }

        r = registry.applyExternal([.deleteNode(name: "n1")])
        #expect(r.applied == 1)
        #expect(registry.node(named: "n1") == nil)
        #expect(registry.placementCount == 250 - onN1.count)
        // Deletions of what is already gone (this instance's own, read back) change nothing.
        let before = store.recorded.count
        let count = registry.placementCount
        #expect(registry.applyExternal([.deleteNode(name: "n1"), .deletePlacement(pool: "workspace", key: "nobody")]).skipped == 0)
        #expect(store.recorded.count == before && registry.placementCount == count)
    }

    @Test("A node made elsewhere becomes selectable; one recreated in another pool replaces it; an invalid record is refused")
    func remoteNodes() throws {
        let registry = try makeRegistry([testNode("n1", enabled: false)])
        #expect(registry.nodeName("carol") == nil)
        #expect(registry.applyExternal([.upsertNode(testNode("n9"))]) == Registry.FeedResult.with(applied: 1))
        #expect(registry.nodeName("carol") == "n9")
        // Deleted and created again in another pool elsewhere: its placements here go with it.
        var moved = testNode("n9")
        moved.pool = "runtime"
        var bad = testNode("n8")
        bad.weight = 0
        let r = registry.applyExternal([.upsertNode(moved), .upsertNode(bad)])
        #expect(r.applied == 1 && r.skipped == 1)
        #expect(registry.node(named: "n9")?.pool == "runtime" && registry.node(named: "n8") == nil)
        #expect(registry.placement(pool: "workspace", key: "carol") == nil && registry.placementCount == 0)
    }

    @Test("A row that differs only by a later heartbeat moves the heartbeat and nothing else")
    func heartbeatOnly() throws {
        let registry = try makeRegistry([testNode("n1", heartbeatAgeMs: 50_000)])
        let before = try #require(registry.node(named: "n1"))
        var later = before.record
        later.lastHeartbeat = testNow
        #expect(registry.applyExternal([.upsertNode(later)]).applied == 1)
        #expect(registry.node(named: "n1") === before, "no new node object, no new snapshot")
        #expect(before.lastHeartbeat == testNow)
        var earlier = later
        earlier.lastHeartbeat = testNow - 100_000
        registry.applyExternal([.upsertNode(earlier), .heartbeat(name: "n1", at: testNow - 1)])
        #expect(before.lastHeartbeat == testNow, "heartbeats only move forward")
    }

    @Test("Resync: memory becomes what the store holds")
    func resync() throws {
        let registry = try makeRegistry([testNode("n1"), testNode("n2"), testNode("gone")])
        let keys = testKeys(200)
        for key in keys { _ = registry.resolve(key) }
        let kept = Array(keys.prefix(50))
        let stored = kept.map { PlacementRecord(pool: "workspace", key: $0, node: "n2") }
        let r = registry.resync(StoreContents(nodes: [testNode("n1"), testNode("n2")], placements: stored, pods: [], edges: []))
        #expect(registry.node(named: "gone") == nil)
        #expect(registry.placementCount == 50 && registry.count(on: "n2") == 50 && registry.count(on: "n1") == 0)
        for key in kept { #expect(registry.nodeName(key) == "n2") }
        #expect(registry.placement(pool: "workspace", key: keys[60]) == nil)
        #expect(r.moved.allSatisfy { $0.to == "n2" })
    }

    @Test("A row read back while this instance still has an uncommitted write for it is deferred: memory is newer")
    func pendingWritesWin() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        let first = try #require(registry.nodeName("erin"))
        let other = nodes.map(\.name).first { $0 != first }!
        store.pendingRows.withLock { $0 = [StoreRow(pool: "workspace", key: "erin"), StoreRow(node: "n1")] }
        var disabled = testNode("n1")
        disabled.enabled = false
        let r = registry.applyExternal([.upsertPlacement(PlacementRecord(pool: "workspace", key: "erin", node: other)),
                                        .upsertNode(disabled), .deletePlacement(pool: "workspace", key: "erin")])
        #expect(r.deferred == 3 && r.applied == 0)
        #expect(registry.nodeName("erin") == first && registry.node(named: "n1")?.enabled == true)
        store.pendingRows.withLock { $0 = [] }
        #expect(registry.applyExternal([.upsertNode(disabled)]).applied == 1)
        #expect(registry.node(named: "n1")?.enabled == false)
    }

    @Test("A row read before this instance's own later commit of it is deferred; read after it, applied")
    func laterOwnCommitsWin() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        let first = try #require(registry.nodeName("erin"))
        let other = nodes.map(\.name).first { $0 != first }!
        // This instance reassigned erin at log position 10 (memory has it); a follower read
        // from before that still shows erin on `other`.
        store.committedRows.withLock { $0 = [StoreRow(pool: "workspace", key: "erin"): 10] }
        let stale = StoreChange.upsertPlacement(PlacementRecord(pool: "workspace", key: "erin", node: other))
        #expect(registry.applyExternal([stale], through: 9).deferred == 1)
        #expect(registry.nodeName("erin") == first)
        #expect(registry.applyExternal([stale], through: 10).applied == 1)
        #expect(registry.nodeName("erin") == other)

        // A resync read before a placement this instance made since keeps that placement.
        let fresh = try #require(registry.nodeName("frank"))
        store.committedRows.withLock { $0[StoreRow(pool: "workspace", key: "frank")] = 20 }
        registry.resync(StoreContents(nodes: nodes, placements: [PlacementRecord(pool: "workspace", key: "erin", node: other)], pods: [], edges: []), through: 19)
        #expect(registry.nodeName("frank") == fresh && registry.placementCount == 2)
        registry.resync(StoreContents(nodes: nodes, placements: [PlacementRecord(pool: "workspace", key: "erin", node: other)], pods: [], edges: []), through: 20)
        #expect(registry.placement(pool: "workspace", key: "frank") == nil && registry.placementCount == 1)
    }

    @Test("A placement on a node this instance does not know is skipped, not half-applied")
    func unknownNode() throws {
        let registry = try makeRegistry(nodes)
        let r = registry.applyExternal([.upsertPlacement(PlacementRecord(pool: "workspace", key: "dave", node: "elsewhere"))])
        #expect(r.skipped == 1 && registry.placementCount == 0)
    }
}

@Suite("PlacementMap: one-by-one removal")
struct PlacementMapRemovalTests {
    @Test("Random inserts and removals agree with a dictionary", arguments: [1, 2, 3] as [UInt64])
    func againstDictionary(seed: UInt64) {
        var map = PlacementMap()
        var expected: [String: UInt16] = [:]
        var rng = XorShift(state: seed)
        for step in 0..<20_000 {
            let key = "k\(rng.next() % 3_000)"
            let present = expected[key] != nil
            var scratch = key
            scratch.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                // Eight tag bits: probe chains collide and wrap, so the shifting is exercised.
                let tag = UInt32(StableHash.hash(bytes) & 0xFF) | 1
                let slot = map.find(pool: 0, key: bytes, tag: tag)
                #expect((slot != nil) == present)
                if let slot, rng.next() % 2 == 0 {
                    map.remove(at: slot)
                    expected[key] = nil
                } else if slot == nil {
                    _ = map.insert(pool: 0, key: bytes, tag: tag, node: UInt16(step % 100), hostPort: 0, createdAt: 0)
                    expected[key] = UInt16(step % 100)
                }
            }
        }
        #expect(map.count == expected.count)
        for (key, node) in expected {
            var k = key
            k.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                let tag = UInt32(StableHash.hash(bytes) & 0xFF) | 1
                #expect(map.find(pool: 0, key: bytes, tag: tag).map { map.slots[$0].node } == node)
            }
        }
    }
}

/// Marsaglia's xorshift64: deterministic per seed, enough to shuffle operations.
struct XorShift {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

extension Registry.FeedResult {
    static func with(applied: Int) -> Registry.FeedResult {
        var r = Registry.FeedResult()
        r.applied = applied
        return r
    }

    @Test("Heartbeats of 1,000 nodes to three instances: freshness is shared, so the store gets about one write per node per write interval, not three per heartbeat")
    func heartbeatsCoalesce() throws {
        let names = (0..<1_000).map { "h\($0)" }
        let records = names.map { testNode($0, heartbeatAgeMs: 0) }
        // 60 s threshold: a write interval of 15 s; every node heartbeats every 5 s to all three.
        let stores = (0..<3).map { _ in RecordingStore() }
        let registries = try stores.map { try makeRegistry(records, store: $0) }
        var delivered = [0, 0, 0]
        /// What each store recorded since the last call reaches the other two, as the feed would
        /// (at once: the worst case for coalescing is a slower feed, see below).
        func propagate() {
            for (i, store) in stores.enumerated() {
                let fresh = Array(store.recorded.dropFirst(delivered[i]))
                delivered[i] = store.recorded.count
                for (j, other) in registries.enumerated() where j != i { other.applyExternal(fresh) }
            }
        }
        let intervals = 12
        for round in 1...intervals {
            for (n, name) in names.enumerated() {
                // The three copies of one heartbeat arrive a few ms apart, one instance after another.
                for (i, registry) in registries.enumerated() {
                    try registry.heartbeat(name: name, now: testNow + Int64(round) * 5_000 + Int64(n % 100) + Int64(i))
                    propagate()
                }
            }
        }
        let writes = stores.reduce(0) { $0 + $1.recorded.filter { if case .heartbeat = $0 { true } else { false } }.count }
        let perInterval = Double(writes) / Double(intervals)
        // Each node: one write per 15 s (every third round), so about a third of the nodes write
        // in each interval: ~333 writes, where writing every heartbeat would make 3,000.
        #expect(perInterval <= Double(names.count) / 2, "\(writes) writes in \(intervals) intervals (\(perInterval) per interval)")
        #expect(writes >= names.count * intervals / 3, "too few writes (\(writes)): stored freshness would go stale")
        // Every instance knows every node as fresh (memory takes every heartbeat).
        let last = testNow + Int64(intervals) * 5_000
        for registry in registries {
            #expect(names.allSatisfy { (registry.node(named: $0)?.lastHeartbeat ?? 0) >= last })
        }

        // With no feed at all (three instances that never hear of each other's writes), each
        // instance still writes only once per interval of its own.
        let lone = RecordingStore()
        let alone = try makeRegistry([testNode("solo", heartbeatAgeMs: 0)], store: lone)
        for t in stride(from: Int64(1_000), through: 60_000, by: 1_000) { try alone.heartbeat(name: "solo", now: testNow + t) }
        #expect(lone.recorded.count == 4, "\(lone.recorded)")

        // A heartbeat the store's queue refused (full) does not count as stored: the next one
        // is written, however soon.
        let full = RecordingStore()
        let refusing = try makeRegistry([testNode("busy", heartbeatAgeMs: 60_000)], store: full)
        full.refusing.withLock { $0 = true }
        #expect(try !refusing.heartbeat(name: "busy", now: testNow))
        #expect(refusing.node(named: "busy")?.lastHeartbeat == testNow, "memory takes it anyway")
        full.refusing.withLock { $0 = false }
        #expect(try refusing.heartbeat(name: "busy", now: testNow + 1_000))
        #expect(full.recorded == [.heartbeat(name: "busy", at: testNow + 1_000)])
    }
}

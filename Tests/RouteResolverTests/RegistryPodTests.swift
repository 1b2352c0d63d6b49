import Synchronization
import Testing
@testable import RouteResolver

/// Data pods in the registry: who owns a pod (the hot path), the operator's writes (create,
/// delete, migrate) and pod rows from the change feed.
@Suite("Registry: pods")
struct RegistryPodTests {
    let centers = [testNode("c1", pool: "center"), testNode("c2", pool: "center"),
                   testNode("c3", pool: "center", heartbeatAgeMs: 120_000),
                   testNode("c4", pool: "center", enabled: false), testNode("w1")]

    func makePodRegistry(_ pods: [PodRecord] = [], store: RecordingStore? = nil) throws -> Registry {
        try Registry(nodes: centers, placements: [], pods: pods,
                     pools: ["center": PoolSettings(onNodeDown: .fail(retryAfterSeconds: 7))], store: store)
    }

    @Test("resolvePod: a fresh owner, a stale, unregistered, disabled or foreign one, an unknown pod, an invalid key")
    func resolveEveryCase() throws {
        let registry = try makePodRegistry([
            pod("alice", on: "c1"), pod("stale", on: "c3"), pod("orphan", on: "c9"), pod("off", on: "c4"),
            pod("foreign", on: "w1"), pod("a_pod_id_longer_than_fifteen_bytes", on: "c2"),
        ])
        guard case .owner(let node) = registry.resolvePod("alice") else { Issue.record("alice"); return }
        #expect(node.name == "c1")
        guard case .owner(let long) = registry.resolvePod("a_pod_id_longer_than_fifteen_bytes") else { Issue.record("long"); return }
        #expect(long.name == "c2")
        guard case .ownerDown("c3", let stale?, 7) = registry.resolvePod("stale") else { Issue.record("stale"); return }
        #expect(stale.name == "c3")
        guard case .ownerDown("c9", nil, 7) = registry.resolvePod("orphan") else { Issue.record("orphan"); return }
        guard case .ownerDown("c4", let off?, 7) = registry.resolvePod("off") else { Issue.record("off"); return }
        #expect(!off.enabled)
        guard case .ownerDown("w1", let foreign?, 7) = registry.resolvePod("foreign") else { Issue.record("foreign"); return }
        #expect(foreign.pool == "workspace")
        guard case .unknownPod = registry.resolvePod("nobody") else { Issue.record("unknown"); return }
        for bad in ["", "a.b", "x y", String(repeating: "a", count: 65)] {
            guard case .invalidKey = registry.resolvePod(bad) else { Issue.record("\(bad) accepted"); return }
        }
        // A stale owner heartbeats again: fresh at once, nothing rebuilt for the pod.
        try registry.heartbeat(name: "c3", now: testNow)
        guard case .owner = registry.resolvePod("stale") else { Issue.record("stale after heartbeat"); return }
        // A pool unknown to the registry: the owner is not one of its centers.
        guard case .ownerDown("c1", _, let retry) = registry.resolvePod("alice", centerPool: "nowhere") else { Issue.record("pool"); return }
        #expect(retry >= 1)
    }

    @Test("A stale owner's Retry-After under onNodeDown: replace is the heartbeat threshold in seconds, at least 1")
    func retryAfterUnderReplace() throws {
        let registry = try Registry(nodes: centers, placements: [], pods: [pod("stale", on: "c3")],
                                    pools: ["center": PoolSettings(heartbeatThresholdMs: 45_000, onNodeDown: .replace)])
        guard case .ownerDown(_, _, 45) = registry.resolvePod("stale") else { Issue.record("retry"); return }
    }

    @Test("createPods is idempotent, refuses a differing pod unless replace, and stores in one transaction")
    func createIdempotentAndReplace() throws {
        let store = RecordingStore()
        let registry = try makePodRegistry(store: store)
        let alice = pod("alice", on: "c1", baseURL: "https://alice.pods.example/")
        var r = try registry.createPods([alice, pod("bob", on: "c2")], replace: false, now: testNow)
        #expect(r == (2, 0, 0))
        #expect(registry.podCount == 2)
        #expect(store.recorded.count == 2)
        #expect(registry.pod(id: "alice")?.createdAt == testNow - 1_000, "given times are kept")
        #expect(try registry.createPods([PodRecord(id: "zed", nodeID: "c1")], replace: false, now: testNow) == (1, 0, 0))
        #expect(registry.pod(id: "zed")?.createdAt == testNow && registry.pod(id: "zed")?.updatedAt == testNow)
        // The same again, times aside: nothing written.
        var again = alice
        again.createdAt = 5
        r = try registry.createPods([again], replace: false, now: testNow + 1)
        #expect(r == (0, 0, 1))
        #expect(store.recorded.count == 3)
        // Different fields: refused, nothing changed — unless replace.
        var moved = alice
        moved.nodeID = "c2"
        #expect(throws: RegistryError.podExists("alice")) { try registry.createPods([pod("carol", on: "c1"), moved], replace: false, now: testNow) }
        #expect(registry.pod(id: "carol") == nil && store.recorded.count == 3)
        let heard = Mutex<[MovedPlacement]>([])
        registry.observeMoves { m in heard.withLock { $0 += m } }
        r = try registry.createPods([moved], replace: true, now: testNow + 10)
        #expect(r == (0, 1, 0))
        let now = try #require(registry.pod(id: "alice"))
        #expect(now.nodeID == "c2" && now.createdAt == testNow - 1_000 && now.updatedAt == testNow + 10)
        #expect(heard.withLock { $0 } == [MovedPlacement(pool: Registry.podTunnelPool, key: "alice", from: "c1", to: "c2")])
        #expect(registry.podCounts() == ["c2": 2, "c1": 1])
    }

    @Test("createPods validates every record first: one bad record (or a store failure) creates none")
    func createAllOrNone() throws {
        let store = RecordingStore()
        let registry = try makePodRegistry(store: store)
        let good = pod("good", on: "c1")
        let bad: [PodRecord] = [
            pod("a.b", on: "c1"), pod("ok", on: "bad name"), pod("ok", on: ""),
            PodRecord(id: "ok", nodeID: "c1", migrationProgress: 101),
            PodRecord(id: "ok", baseURL: "ftp://x", nodeID: "c1"),
            PodRecord(id: "ok", nodeID: "c1", migrationTargetNode: "no/way"),
        ]
        for record in bad {
            #expect(throws: RegistryError.self) { try registry.createPods([good, record], replace: false, now: testNow) }
        }
        #expect(throws: RegistryError.invalidPod("good: listed twice")) { try registry.createPods([good, good], replace: false, now: testNow) }
        #expect(registry.podCount == 0 && store.recorded.isEmpty)
        // A center not registered yet is fine (pods are imported before their centers start).
        #expect(try registry.createPods([pod("early", on: "c-later")], replace: false, now: testNow) == (1, 0, 0))
        store.failing.withLock { $0 = true }
        #expect(throws: RegistryError.self) { try registry.createPods([good], replace: false, now: testNow) }
        #expect(registry.pod(id: "good") == nil && registry.podCount == 1)
    }

    @Test("deletePod: gone from memory and the store; an unknown pod is refused")
    func delete() throws {
        let store = RecordingStore()
        let registry = try makePodRegistry([pod("alice", on: "c1"), pod("bob", on: "c1")], store: store)
        try registry.deletePod(id: "alice")
        #expect(registry.pod(id: "alice") == nil && registry.podCount == 1)
        #expect(store.recorded == [.deletePod(id: "alice")])
        #expect(throws: RegistryError.unknownPod("alice")) { try registry.deletePod(id: "alice") }
        guard case .unknownPod = registry.resolvePod("alice") else { Issue.record("still routed"); return }
        guard case .owner = registry.resolvePod("bob") else { Issue.record("bob lost"); return }
    }

    @Test("migratePod: one row update, memory after the store, announced; bad targets are refused")
    func migrate() throws {
        let store = RecordingStore()
        let registry = try makePodRegistry([pod("alice", on: "c1", progress: 0)], store: store)
        let heard = Mutex<[MovedPlacement]>([])
        registry.observeMoves { m in heard.withLock { $0 += m } }
        #expect(throws: RegistryError.unknownPod("nobody")) { try registry.migratePod(id: "nobody", to: "c2", centerPool: "center", now: testNow) }
        #expect(throws: RegistryError.unknownNode("c9")) { try registry.migratePod(id: "alice", to: "c9", centerPool: "center", now: testNow) }
        #expect(throws: RegistryError.wrongPool(node: "w1", pool: "center")) { try registry.migratePod(id: "alice", to: "w1", centerPool: "center", now: testNow) }
        #expect(throws: RegistryError.unusableTarget("c3")) { try registry.migratePod(id: "alice", to: "c3", centerPool: "center", now: testNow) }
        #expect(throws: RegistryError.unusableTarget("c4")) { try registry.migratePod(id: "alice", to: "c4", centerPool: "center", now: testNow) }
        #expect(throws: RegistryError.sameNode("c1")) { try registry.migratePod(id: "alice", to: "c1", centerPool: "center", now: testNow) }
        store.failing.withLock { $0 = true }
        #expect(throws: RegistryError.self) { try registry.migratePod(id: "alice", to: "c2", centerPool: "center", now: testNow) }
        #expect(registry.pod(id: "alice")?.nodeID == "c1" && heard.withLock { $0 }.isEmpty && store.recorded.isEmpty)
        store.failing.withLock { $0 = false }

        let (before, after) = try registry.migratePod(id: "alice", to: "c2", centerPool: "center", now: testNow + 5)
        #expect(before.nodeID == "c1")
        #expect(after == PodRecord(id: "alice", baseURL: before.baseURL, accountID: before.accountID, nodeID: "c2",
                                   migrationStatus: .done, migrationTargetNode: "c2", migrationProgress: 100,
                                   createdAt: before.createdAt, updatedAt: testNow + 5))
        #expect(store.recorded == [.upsertPod(after)])
        #expect(registry.pod(id: "alice") == after)
        #expect(heard.withLock { $0 } == [MovedPlacement(pool: ".pods", key: "alice", from: "c1", to: "c2")])
        guard case .owner(let owner) = registry.resolvePod("alice"), owner.name == "c2" else { Issue.record("not moved"); return }
    }

    @Test("Pod rows from the feed: adopted, moves announced, deletions applied, this instance's newer writes deferred, bad rows skipped")
    func feed() throws {
        let store = RecordingStore()
        let registry = try makePodRegistry([pod("alice", on: "c1")], store: store)
        let heard = Mutex<[MovedPlacement]>([])
        registry.observeMoves { m in heard.withLock { $0 += m } }
        var r = registry.applyExternal([.upsertPod(pod("bob", on: "c2")), .upsertPod(pod("alice", on: "c2")),
                                        .upsertPod(pod("x.y", on: "c1"))])
        #expect(r.applied == 2 && r.skipped == 1)
        #expect(r.moved == [MovedPlacement(pool: Registry.podTunnelPool, key: "alice", from: "c1", to: "c2")])
        #expect(heard.withLock { $0 } == r.moved)
        #expect(registry.podCount == 2 && registry.pod(id: "alice")?.nodeID == "c2")
        // The same row again: no move.
        #expect(registry.applyExternal([.upsertPod(pod("alice", on: "c2"))]).moved.isEmpty)
        // A pod this instance wrote after the read: memory is newer.
        store.committedRows.withLock { $0 = [StoreRow(pod: "alice"): 10] }
        r = registry.applyExternal([.upsertPod(pod("alice", on: "c1")), .deletePod(id: "alice")], through: 9)
        #expect(r.deferred == 2 && registry.pod(id: "alice")?.nodeID == "c2")
        r = registry.applyExternal([.deletePod(id: "bob"), .deletePod(id: "never")], through: 9)
        #expect(r.applied == 2 && registry.pod(id: "bob") == nil && registry.podCount == 1)
        #expect(store.recorded.isEmpty, "nothing from the feed goes back to the store")
    }

    @Test("resync makes pods match the store, keeping this instance's newer writes, announcing owner changes")
    func resync() throws {
        let store = RecordingStore()
        let registry = try makePodRegistry([pod("alice", on: "c1"), pod("bob", on: "c1"), pod("mine", on: "c1")], store: store)
        store.pendingRows.withLock { $0 = [StoreRow(pod: "mine")] }
        let r = registry.resync(StoreContents(nodes: centers, placements: [], pods: [pod("alice", on: "c2"), pod("dave", on: "c1")], edges: []))
        #expect(Set(registry.pods(after: nil, limit: 10).map(\.id)) == ["alice", "dave", "mine"])
        #expect(registry.podCount == 3)
        #expect(r.moved == [MovedPlacement(pool: ".pods", key: "alice", from: "c1", to: "c2")])
    }

    @Test("Paging: sorted by id, after a cursor, at most limit; counts per node")
    func paging() throws {
        let ids = testKeys(500, prefix: "p")
        let registry = try makePodRegistry(ids.enumerated().map { pod($1, on: $0 % 2 == 0 ? "c1" : "c2") })
        var seen: [String] = []
        var cursor: String?
        while true {
            let page = registry.pods(after: cursor, limit: 37)
            if page.isEmpty { break }
            #expect(page.count <= 37)
            seen += page.map(\.id)
            cursor = page.last?.id
        }
        #expect(seen == ids.sorted())
        #expect(registry.pods(after: nil, limit: 0).isEmpty)
        #expect(registry.podCount == 500)
        #expect(registry.podCounts() == ["c1": 250, "c2": 250])
    }

    @Test("Many pods added and deleted one by one: every remaining one is still found (the index stays intact)")
    func churn() throws {
        let registry = try makePodRegistry()
        let ids = testKeys(3_000, prefix: "q")
        _ = try registry.createPods(ids.map { pod($0, on: "c1") }, replace: false, now: testNow)
        for id in ids.enumerated().filter({ $0.offset % 3 == 0 }).map(\.element) { try registry.deletePod(id: id) }
        for (i, id) in ids.enumerated() {
            #expect((registry.pod(id: id) != nil) == (i % 3 != 0))
        }
        #expect(registry.podCount == 2_000)
    }

    @Test("Pods at load: invalid records are skipped and counted, a duplicate id keeps the later record")
    func load() throws {
        let registry = try makePodRegistry([pod("alice", on: "c1"), pod("bad id", on: "c1"), pod("alice", on: "c2")])
        #expect(registry.podCount == 1 && registry.podsSkippedAtLoad == 1)
        #expect(registry.pod(id: "alice")?.nodeID == "c2")
    }
}

func pod(_ id: String, on node: String, baseURL: String = "", progress: Int = 0) -> PodRecord {
    PodRecord(id: id, baseURL: baseURL.isEmpty ? "https://\(id).pods.example/" : baseURL, accountID: "acct-\(id)",
              nodeID: node, migrationProgress: progress, createdAt: testNow - 1_000, updatedAt: testNow - 1_000)
}

extension Registry {
    /// `resolvePod` with a String key, as a test writes it.
    func resolvePod(_ key: String, centerPool: String = "center", now: Int64 = testNow) -> PodResolution {
        var copy = key
        return copy.withUTF8 { resolvePod(UnsafeRawBufferPointer($0), centerPool: centerPool, now: now) }
    }
}

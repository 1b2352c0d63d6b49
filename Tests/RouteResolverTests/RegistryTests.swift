import Testing
@testable import RouteResolver

@Suite("Registry")
struct RegistryTests {
    let nodes = [testNode("n1"), testNode("n2"), testNode("n3")]

    @Test("A new key is placed once and then found: created only the first time, one store upsert")
    func stickyAndStored() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        guard case .routed(let first, 0, true) = registry.resolve("alice") else { Issue.record("not placed"); return }
        for _ in 0..<5 {
            guard case .routed(let again, 0, false) = registry.resolve("alice") else { Issue.record("not found"); return }
            #expect(again.name == first.name)
        }
        #expect(registry.placementCount == 1)
        #expect(store.placementUpserts == [PlacementRecord(pool: "workspace", key: "alice", node: first.name,
                                                           lastActive: testNow, createdAt: testNow, updatedAt: testNow)])
        #expect(registry.placement(pool: "workspace", key: "alice")?.node == first.name)
    }

    @Test("The store gets exactly one upsert per new placement, none for lookups")
    func oneUpsertPerPlacement() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        let keys = testKeys(500)
        for _ in 0..<3 { for key in keys { _ = registry.resolve(key) } }
        let upserts = store.placementUpserts
        #expect(upserts.count == keys.count)
        #expect(Set(upserts.map(\.key)) == Set(keys))
        #expect(store.recorded.count == keys.count)
    }

    @Test("Resolution carries what the engine needs")
    func resolutionContents() throws {
        let record = NodeRecord(name: "ws1", pool: "workspace", address: "10.1.2.3:80", previewBaseURL: "http://10.1.2.3",
                                apiBaseURL: "http://10.1.2.3:7001", lastHeartbeat: testNow)
        let registry = try makeRegistry([record])
        let node = try #require(registry.resolve("bob").routedNode)
        #expect((node.name, node.address, node.previewBaseURL, node.apiBaseURL)
            == ("ws1", "10.1.2.3:80", "http://10.1.2.3", "http://10.1.2.3:7001"))
        try registry.setHostPort(pool: "workspace", key: "bob", port: 20_017, now: testNow)
        guard case .routed(_, 20_017, false) = registry.resolve("bob") else { Issue.record("port not carried"); return }
    }

    @Test("Existing placements never move when nodes are added, reweighted, disabled or filled")
    func placementsDoNotMove() throws {
        let registry = try makeRegistry(nodes)
        let keys = testKeys(1_000)
        let before = keys.map { registry.nodeName($0) }
        try registry.upsertNode(testNode("n4", weight: 10_000))
        var heavier = testNode("n1", weight: 5_000)
        heavier.capacity = 1
        try registry.upsertNode(heavier)
        try registry.setEnabled(name: "n2", false, now: testNow)
        #expect(keys.map { registry.nodeName($0) } == before)
        #expect(registry.placementCount == keys.count)
    }

    @Test("A disabled node keeps its users and gets no new ones")
    func disabledKeepsUsers() throws {
        let registry = try makeRegistry(nodes)
        let keys = testKeys(300)
        let onN1 = keys.filter { registry.nodeName($0) == "n1" }
        try #require(!onN1.isEmpty)
        try registry.setEnabled(name: "n1", false, now: testNow)
        for key in onN1 { #expect(registry.nodeName(key) == "n1") }
        for key in testKeys(300, prefix: "new") { #expect(registry.nodeName(key) != "n1") }
        #expect(registry.count(on: "n1") == onN1.count)
        #expect(registry.node(named: "n1")?.enabled == false)
    }

    @Test("onNodeDown fail: a key on a stale node gets nodeDown with Retry-After and stays")
    func nodeDownFail() throws {
        let settings = PoolSettings(onNodeDown: .fail(retryAfterSeconds: 7))
        let registry = try makeRegistry(nodes, placements: [PlacementRecord(pool: "workspace", key: "u", node: "n1")],
                                        settings: settings)
        let later = testNow + 61_000
        try registry.heartbeat(name: "n2", now: later)
        guard case .nodeDown(let node, 7) = registry.resolve("u", now: later) else { Issue.record("not nodeDown"); return }
        #expect(node.name == "n1")
        #expect(registry.placement(pool: "workspace", key: "u")?.node == "n1")
        // A fresh heartbeat brings the user back to the same node.
        try registry.heartbeat(name: "n1", now: later)
        #expect(registry.nodeName("u", now: later) == "n1")
    }

    @Test("onNodeDown replace: the key moves to a selectable node once, counts and store follow")
    func nodeDownReplace() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, placements: [PlacementRecord(pool: "workspace", key: "u", node: "n1",
                                                                            hostPort: 20_001, createdAt: 5)],
                                        settings: PoolSettings(onNodeDown: .replace), store: store)
        let later = testNow + 61_000
        try registry.heartbeat(name: "n3", now: later)
        guard case .routed(let node, 0, true) = registry.resolve("u", now: later) else { Issue.record("not replaced"); return }
        #expect(node.name == "n3")
        #expect(registry.nodeName("u", now: later) == "n3")
        #expect((registry.count(on: "n1"), registry.count(on: "n3"), registry.placementCount) == (0, 1, 1))
        #expect(store.placementUpserts == [PlacementRecord(pool: "workspace", key: "u", node: "n3", hostPort: 0,
                                                           lastActive: later, createdAt: 5, updatedAt: later)])
    }

    @Test("onNodeDown replace with nowhere to go: the error, and the placement stays")
    func nodeDownReplaceNowhere() throws {
        let registry = try makeRegistry([testNode("n1")], placements: [PlacementRecord(pool: "workspace", key: "u", node: "n1")],
                                        settings: PoolSettings(onNodeDown: .replace))
        guard case .noHealthyNode = registry.resolve("u", now: testNow + 120_000) else { Issue.record("expected error"); return }
        #expect(registry.placement(pool: "workspace", key: "u")?.node == "n1")
        #expect(registry.count(on: "n1") == 1)
    }

    @Test("removeNode drops its placements (deletes queued before the node's) and they are placed anew")
    func removeNode() throws {
        let store = RecordingStore()
        let registry = try makeRegistry(nodes, store: store)
        let keys = testKeys(300)
        let placedOn = keys.map { registry.nodeName($0) }
        let onN2 = zip(keys, placedOn).filter { $0.1 == "n2" }.map(\.0)
        #expect(try registry.removeNode(name: "n2") == onN2.count)
        #expect(registry.placementCount == keys.count - onN2.count)
        #expect(registry.node(named: "n2") == nil)
        let tail = store.recorded.suffix(onN2.count + 1)
        let deleted = tail.dropLast().compactMap { change -> String? in
            if case .deletePlacement("workspace", let key) = change { return key } else { return nil }
        }
        #expect(deleted.count == onN2.count)
        #expect(Set(deleted) == Set(onN2))
        #expect(tail.last == .deleteNode(name: "n2"))
        for key in onN2 { #expect(registry.placement(pool: "workspace", key: key) == nil) }
        for (key, node) in zip(keys, placedOn) where node != "n2" { #expect(registry.nodeName(key) == node) }
        for key in onN2 { #expect(["n1", "n3"].contains(registry.nodeName(key))) }
        #expect(registry.placementCount == keys.count)
        #expect(throws: RegistryError.unknownNode("n2")) { try registry.removeNode(name: "n2") }
    }

    @Test("A node added after a removal reuses the free id without inheriting placements")
    func idReuse() throws {
        let registry = try makeRegistry(nodes)
        for key in testKeys(100) { _ = registry.resolve(key) }
        try registry.removeNode(name: "n1")
        try registry.upsertNode(testNode("fresh"))
        #expect(registry.count(on: "fresh") == 0)
        #expect(registry.placementCount == (registry.count(on: "n2") ?? 0) + (registry.count(on: "n3") ?? 0))
    }

    @Test("Node changes are queued on the store; heartbeats only move forward")
    func nodeChangesStored() throws {
        let store = RecordingStore()
        let registry = try makeRegistry([testNode("n1")], store: store)
        try registry.upsertNode(testNode("n2"))
        try registry.setEnabled(name: "n2", false, now: testNow + 1)
        // The default write interval is a quarter of the 60 s threshold: 15 s.
        #expect(try registry.heartbeat(name: "n2", now: testNow + 20_000))
        #expect(try !registry.heartbeat(name: "n2", now: testNow + 21_000))
        #expect(try !registry.heartbeat(name: "n2", now: testNow + 2))
        let records = store.recorded.compactMap { if case .upsertNode(let n) = $0 { return n } else { return nil } }
        #expect(records.map(\.enabled) == [true, false])
        #expect(records[1].updatedAt == testNow + 1)
        // Heartbeats are written as the time alone, so they never carry a stale record over an
        // operator's change made elsewhere; the store keeps the later of the stored and new time.
        let beats = store.recorded.compactMap { if case .heartbeat(let name, let at) = $0 { return "\(name)@\(at)" } else { return nil } }
        #expect(beats == ["n2@\(testNow + 20_000)"])
        #expect(registry.node(named: "n2")?.lastHeartbeat == testNow + 21_000)
        #expect(throws: RegistryError.unknownNode("nope")) { try registry.heartbeat(name: "nope", now: testNow) }
        #expect(throws: RegistryError.unknownNode("nope")) { try registry.setEnabled(name: "nope", true, now: testNow) }
    }

    @Test("Invalid node records are refused and change nothing",
          arguments: [testNode(""), testNode("bad name"), testNode("n", weight: 0), testNode("n", weight: 10_001),
                      testNode("n", capacity: -1), testNode("n", pool: "")])
    func invalidNodes(_ record: NodeRecord) throws {
        let store = RecordingStore()
        let registry = try makeRegistry([testNode("n1")], store: store)
        #expect(throws: RegistryError.self) { try registry.upsertNode(record) }
        #expect(registry.nodes.map(\.name) == ["n1"])
        #expect(store.recorded.isEmpty)
    }

    @Test("Keys must be 1-64 bytes of [A-Za-z0-9_-]")
    func keyValidation() throws {
        let registry = try makeRegistry(nodes)
        for bad in ["", String(repeating: "a", count: 65), "a.b", "a b", "ü", "a/b", "%41"] {
            guard case .invalidKey = registry.resolve(bad) else { Issue.record("accepted \(bad)"); continue }
        }
        #expect(registry.placementCount == 0)
        #expect(registry.nodeName(String(repeating: "Z", count: 64)) != nil)
        #expect(throws: RegistryError.invalidKey("a.b")) {
            try registry.setHostPort(pool: "workspace", key: "a.b", port: 1, now: testNow)
        }
        #expect(throws: RegistryError.unknownPlacement(pool: "workspace", key: "nobody")) {
            try registry.setHostPort(pool: "workspace", key: "nobody", port: 1, now: testNow)
        }
    }

    @Test("The registry's key alphabet is exactly the extractor's, for all 256 byte values")
    func keyAlphabet() {
        for b in 0...255 { #expect(KeyDigest.isKeyByte(UInt8(b)) == KeyExtractor.isKeyByte(UInt8(b)), "byte \(b)") }
    }

    @Test("Loading: counts per node, later duplicates win, unknown nodes and wrong pools skipped")
    func loading() throws {
        let registry = try makeRegistry([testNode("n1"), testNode("r1", pool: "runtime")], placements: [
            PlacementRecord(pool: "workspace", key: "a", node: "n1", hostPort: 20_000),
            PlacementRecord(pool: "workspace", key: "b", node: "n1"),
            PlacementRecord(pool: "workspace", key: "b", node: "n1", hostPort: 20_002),
            PlacementRecord(pool: "workspace", key: "c", node: "gone"),
            PlacementRecord(pool: "workspace", key: "d", node: "r1"),
            PlacementRecord(pool: "workspace", key: "bad key", node: "n1"),
            PlacementRecord(pool: "runtime", key: "a", node: "r1"),
        ])
        #expect(registry.placementCount == 3)
        #expect(registry.skippedAtLoad == 3)
        #expect((registry.count(on: "n1"), registry.count(on: "r1")) == (2, 1))
        #expect(registry.placement(pool: "workspace", key: "b")?.hostPort == 20_002)
        // The same key in two pools is two placements.
        #expect(registry.nodeName("a", pool: "runtime") == "r1")
        #expect(registry.nodeName("a") == "n1")
    }

    @Test("explain answers without creating anything, and agrees with what resolve then does")
    func explain() throws {
        let registry = try makeRegistry(nodes + [testNode("off", enabled: false)])
        let answer = registry.explain(pool: "workspace", key: "carol", now: testNow)
        guard case .wouldPlace(let predicted) = answer.outcome else { Issue.record("\(answer.outcome)"); return }
        #expect(registry.placementCount == 0)
        #expect(answer.candidates.map(\.name) == ["n1", "n2", "n3", "off"])
        #expect(answer.candidates.map(\.selectable) == [true, true, true, false])
        #expect(answer.candidates.filter(\.selectable).max { $0.score < $1.score }?.name == predicted)
        #expect(registry.nodeName("carol") == predicted)
        #expect(registry.explain(pool: "workspace", key: "carol", now: testNow).outcome
            == .existing(node: predicted, hostPort: 0))
        #expect(registry.explain(pool: "nope", key: "carol", now: testNow).outcome == .unknownPool)
        #expect(registry.explain(pool: "workspace", key: "a.b", now: testNow).outcome == .invalidKey)
    }

    @Test("Pool settings change at runtime without touching placements")
    func poolSettingsChange() throws {
        let registry = try makeRegistry(nodes, placements: [PlacementRecord(pool: "workspace", key: "u", node: "n1")])
        registry.setPoolSettings(PoolSettings(heartbeatThresholdMs: 500), for: "workspace")
        guard case .nodeDown = registry.resolve("u") else { Issue.record("threshold not applied"); return }
        guard case .noHealthyNode = registry.resolve("new") else { Issue.record("threshold not applied"); return }
        registry.setPoolSettings(PoolSettings(), for: "workspace")
        #expect(registry.nodeName("u") == "n1")
    }
}

import Testing
@testable import RouteResolver

@Suite("Placement policies")
struct PlacementPolicyTests {
    @Test("Disabled, stale and full nodes are never chosen for new keys")
    func onlySelectable() throws {
        let registry = try makeRegistry([
            testNode("ok-1"), testNode("ok-2"),
            testNode("disabled", weight: 10_000, enabled: false),
            testNode("stale", weight: 10_000, heartbeatAgeMs: 60_001),
            testNode("full", weight: 10_000, capacity: 1),
        ], placements: [PlacementRecord(pool: "workspace", key: "already", node: "full")])
        var seen = Set<String>()
        for key in testKeys(2_000) { seen.insert(try #require(registry.nodeName(key))) }
        #expect(seen == ["ok-1", "ok-2"])
    }

    @Test("A heartbeat exactly at the threshold is fresh; one millisecond older is stale")
    func thresholdEdge() throws {
        let edge = try makeRegistry([testNode("n", heartbeatAgeMs: 60_000)])
        #expect(edge.nodeName("k") == "n")
        let late = try makeRegistry([testNode("n", heartbeatAgeMs: 60_001)])
        guard case .noHealthyNode = late.resolve("k") else { Issue.record("stale node chosen"); return }
    }

    @Test("The pool's heartbeat threshold applies")
    func customThreshold() throws {
        let settings = PoolSettings(heartbeatThresholdMs: 5_000)
        let registry = try makeRegistry([testNode("old", heartbeatAgeMs: 6_000), testNode("new", heartbeatAgeMs: 4_000)],
                                        settings: settings)
        for key in testKeys(200) { #expect(registry.nodeName(key) == "new") }
    }

    @Test("Static nodes ignore heartbeats entirely")
    func staticNodes() throws {
        let never = NodeRecord(name: "static", pool: "workspace", address: "10.0.0.9:80", lastHeartbeat: 0, isStatic: true)
        let registry = try makeRegistry([never])
        #expect(registry.nodeName("k") == "static")
        // And its placements are never "down".
        #expect(registry.nodeName("k", now: testNow * 2) == "static")
    }

    @Test("No selectable node is no_healthy_node; healthy but all full is insufficient_capacity")
    func errors() throws {
        let none = try makeRegistry([testNode("off", enabled: false), testNode("stale", heartbeatAgeMs: 120_000)])
        guard case .noHealthyNode = none.resolve("k") else { Issue.record("expected noHealthyNode"); return }
        let empty = try makeRegistry([])
        guard case .noHealthyNode = empty.resolve("k") else { Issue.record("empty pool"); return }
        guard case .noHealthyNode = empty.resolve("k", pool: "no-such-pool") else { Issue.record("unknown pool"); return }

        let full = try makeRegistry([testNode("a", capacity: 1), testNode("off", enabled: false)],
                                    placements: [PlacementRecord(pool: "workspace", key: "first", node: "a")])
        guard case .insufficientCapacity = full.resolve("k") else { Issue.record("expected insufficientCapacity"); return }
        #expect(full.placementCount == 1)
        // The existing user is still served.
        #expect(full.nodeName("first") == "a")
    }

    @Test("Capacity is a hard limit: a node takes exactly `capacity` new keys")
    func capacityLimit() throws {
        let registry = try makeRegistry([testNode("a", capacity: 3), testNode("b", capacity: 2)])
        var outcomes: [String] = []
        for key in testKeys(7) {
            switch registry.resolve(key) {
            case .routed(let node, _, _): outcomes.append(node.name)
            case .insufficientCapacity: outcomes.append("full")
            default: outcomes.append("other")
            }
        }
        #expect(outcomes.filter { $0 == "a" }.count == 3)
        #expect(outcomes.filter { $0 == "b" }.count == 2)
        #expect(outcomes.suffix(2) == ["full", "full"])
    }

    @Test("spread: lowest utilisation first, so unequal capacities fill evenly")
    func spread() throws {
        let registry = try makeRegistry([testNode("small", capacity: 10), testNode("large", capacity: 30)],
                                        settings: PoolSettings(policy: .spread))
        for key in testKeys(20) { _ = registry.resolve(key) }
        // Greedy lowest-utilisation placement reaches 5/10 and 15/30 after 20 keys, exactly.
        #expect(registry.count(on: "small") == 5)
        #expect(registry.count(on: "large") == 15)
    }

    @Test("spread counts existing placements, and prefers the emptier node")
    func spreadUsesCounts() throws {
        let loaded = (0..<8).map { PlacementRecord(pool: "workspace", key: "old\($0)", node: "busy") }
        let registry = try makeRegistry([testNode("busy", capacity: 10), testNode("idle", capacity: 10)],
                                        placements: loaded, settings: PoolSettings(policy: .spread))
        for key in testKeys(6) { #expect(registry.nodeName(key) == "idle") }
    }

    @Test("best_fit: fills the fullest node that has room; unlimited nodes only after the rest")
    func bestFit() throws {
        let loaded = (0..<3).map { PlacementRecord(pool: "workspace", key: "old\($0)", node: "fuller") }
        let registry = try makeRegistry(
            [testNode("emptier", capacity: 4), testNode("fuller", capacity: 4), testNode("unlimited")],
            placements: loaded, settings: PoolSettings(policy: .bestFit))
        let order = testKeys(6).map { registry.nodeName($0) }
        #expect(order == ["fuller", "emptier", "emptier", "emptier", "emptier", "unlimited"])
    }

    @Test("round_robin: name order, skipping nodes that are not selectable")
    func roundRobin() throws {
        let registry = try makeRegistry([testNode("c"), testNode("a"), testNode("b")],
                                        settings: PoolSettings(policy: .roundRobin))
        #expect(testKeys(6).map { registry.nodeName($0) } == ["a", "b", "c", "a", "b", "c"])
        try registry.setEnabled(name: "b", false, now: testNow)
        #expect(testKeys(4, prefix: "v").map { registry.nodeName($0) } == ["a", "c", "a", "c"])
    }

    @Test("round_robin: explain does not advance the turn")
    func roundRobinExplain() throws {
        let registry = try makeRegistry([testNode("a"), testNode("b")], settings: PoolSettings(policy: .roundRobin))
        #expect(registry.wouldPlace("x") == "a")
        #expect(registry.wouldPlace("y") == "a")
        #expect(registry.nodeName("x") == "a")
        #expect(registry.wouldPlace("y") == "b")
    }

    @Test("affinity: only nodes carrying every wanted label while any is selectable")
    func affinity() throws {
        let policy = PlacementPolicy.affinity(labels: ["zone": "eu", "gpu": "yes"])
        let registry = try makeRegistry([
            testNode("eu-gpu", labels: ["zone": "eu", "gpu": "yes", "extra": "1"]),
            testNode("eu-cpu", weight: 10_000, labels: ["zone": "eu"]),
            testNode("us-gpu", weight: 10_000, labels: ["zone": "us", "gpu": "yes"]),
        ], settings: PoolSettings(policy: policy))
        for key in testKeys(300) { #expect(registry.nodeName(key) == "eu-gpu") }
    }

    @Test("affinity falls back to rendezvous over all selectable nodes when no match can take the key")
    func affinityFallback() throws {
        let policy = PlacementPolicy.affinity(labels: ["zone": "eu"])
        let noMatch = try makeRegistry([testNode("us-1", labels: ["zone": "us"]), testNode("us-2")],
                                       settings: PoolSettings(policy: policy))
        let plain = try makeRegistry([testNode("us-1", labels: ["zone": "us"]), testNode("us-2")])
        for key in testKeys(300) { #expect(noMatch.nodeName(key) == plain.wouldPlace(key)) }

        let matchFull = try makeRegistry(
            [testNode("eu", capacity: 1, labels: ["zone": "eu"]), testNode("us", labels: ["zone": "us"])],
            settings: PoolSettings(policy: policy))
        #expect(matchFull.nodeName("first") == "eu")
        #expect(matchFull.nodeName("second") == "us")
    }

    @Test("Policy names parse as configuration spells them")
    func names() {
        #expect(PlacementPolicy(name: "rendezvous") == .rendezvous)
        #expect(PlacementPolicy(name: "spread") == .spread)
        #expect(PlacementPolicy(name: "round_robin") == .roundRobin)
        #expect(PlacementPolicy(name: "best_fit") == .bestFit)
        #expect(PlacementPolicy(name: "affinity", labels: ["a": "b"]) == .affinity(labels: ["a": "b"]))
        #expect(PlacementPolicy(name: "roundRobin") == nil)
        #expect(PlacementPolicy(name: "") == nil)
    }
}

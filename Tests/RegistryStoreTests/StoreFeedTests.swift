import Foundation
import Synchronization
import Testing
@testable import RegistryStore
@testable import RouteResolver

/// The SQLite change feed: two store instances on one file (what two gateway processes are),
/// each following the other's commits.
@Suite("SQLiteStore: change feed")
struct StoreFeedTests {
    @Test("Another writer's commits arrive as the rows are now, in order; own upserts do not, own conditional writes do")
    func followsOtherWriter() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        let b = try SQLiteStore(path: dir.databasePath)
        defer { a.close(); b.close() }
        _ = try b.loadAll()
        let inbox = FeedInbox()
        try b.follow { event in inbox.add(event) }

        try b.applyNow([.upsertNode(storeNode("own"))])
        try a.applyNow([.upsertNode(storeNode("n1")), .upsertNode(storeNode("n2"))])
        a.enqueue(.upsertPlacement(storePlacement(1, nodes: ["n1"])))
        a.enqueue(.upsertPlacement(PlacementRecord(pool: "workspace", key: "u1", node: "n2", hostPort: 20_002)))
        a.flush()
        #expect(eventually { inbox.changes.contains { if case .upsertPlacement(let p) = $0 { p.node == "n2" } else { false } } })
        let changes = inbox.changes
        #expect(!changes.contains(.upsertNode(storeNode("own"))))
        #expect(changes.prefix(2) == [.upsertNode(storeNode("n1")), .upsertNode(storeNode("n2"))])
        // Whether u1 came once or twice depends on the batches; its last state is the current row.
        let u1 = changes.compactMap { if case .upsertPlacement(let p) = $0, p.key == "u1" { p } else { nil } }
        #expect(u1.last?.node == "n2" && u1.last?.hostPort == 20_002)

        // Own conditional writes are read back by their writer too (it may have lost a race).
        b.enqueue(.heartbeat(name: "n1", at: 1_700_000_000_500))
        b.flush()
        #expect(eventually { inbox.changes.contains { if case .upsertNode(let n) = $0 { n.name == "n1" && n.lastHeartbeat == 1_700_000_000_500 } else { false } } })

        try a.applyNow([.deletePlacement(pool: "workspace", key: "u1"), .deleteNode(name: "n2")])
        #expect(eventually { inbox.changes.contains(.deleteNode(name: "n2")) })
        #expect(inbox.changes.suffix(2) == [.deletePlacement(pool: "workspace", key: "u1"), .deleteNode(name: "n2")])
    }

    @Test("Changes committed before loadAll are not replayed; those after it are")
    func startsAtLoad() throws {
        let dir = try StoreTestDirectory()
        let a = try SQLiteStore(path: dir.databasePath)
        defer { a.close() }
        try a.applyNow([.upsertNode(storeNode("early"))])
        let b = try SQLiteStore(path: dir.databasePath)
        defer { b.close() }
        #expect(try b.loadAll().nodes.map(\.name) == ["early"])
        let inbox = FeedInbox()
        try b.follow { event in inbox.add(event) }
        try a.applyNow([.upsertNode(storeNode("late"))])
        #expect(eventually { !inbox.changes.isEmpty })
        #expect(inbox.changes == [.upsertNode(storeNode("late"))])
    }

    @Test("Own commits count as newer than a read from before them, until the follower has read past them")
    func ownWritesNewerThanOlderReads() throws {
        // The queue's bookkeeping: pending, then committed at a log position, then forgotten.
        var queue = WriteQueue(limit: 8)
        queue.recordsCommittedRows = true
        let change = StoreChange.upsertPlacement(storePlacement(1, nodes: ["n1"]))
        let row = StoreRow(change)
        #expect(queue.push(change).accepted)
        #expect(queue.hasNewerWrites(for: row, than: .max), "queued: newer than any read")
        var batch = queue.takeAll()
        #expect(queue.hasNewerWrites(for: row, than: .max), "in the writer's batch: still newer")
        // About to commit as log row 5: a read that saw through 5 saw this write (it committed);
        // one through 4 did not. A failed commit makes it pending again, a retry marks it anew.
        queue.markWritten(batch, sequence: [5])
        #expect(queue.hasNewerWrites(for: row, than: 4) && !queue.hasNewerWrites(for: row, than: 5))
        queue.unmarkWritten(batch)
        #expect(queue.hasNewerWrites(for: row, than: .max), "the commit failed: pending again")
        queue.markWritten(batch, sequence: [5])
        queue.committed(&batch, sequence: [5], rejected: 0, rejection: nil)
        #expect(queue.hasNewerWrites(for: row, than: 4) && !queue.hasNewerWrites(for: row, than: 5))
        queue.forgetCommitted(through: 5)
        #expect(queue.committedRows.isEmpty)

        // The real store: applyNow records its log position before it returns; the follower's
        // reads forget it once they are past it.
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        defer { store.close() }
        _ = try store.loadAll()
        let core = store.core
        core.queueLock.withLock { core.queue.recordsCommittedRows = true }
        let position = { () throws -> Int64 in try core.withDatabase { s throws(StoreError) in try s.lastChangeSeq() } }
        let before = try position()
        try store.applyNow([.upsertNode(storeNode("n1"))])
        let after = try position()
        let node = StoreRow(node: "n1")
        #expect(after > before)
        #expect(store.hasNewerWrites(for: node, than: before) && !store.hasNewerWrites(for: node, than: after))
        try store.follow { _ in }
        try store.applyNow([.upsertNode(storeNode("n2"))])
        #expect(eventually { core.queueLock.withLock { core.queue.committedRows.isEmpty } }, "the follower read past both")
    }

    @Test("Two registries on one file: a reassign through one routes the user on the other")
    func registriesAgree() throws {
        let dir = try StoreTestDirectory()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let nodes = ["n1", "n2"].map {
            NodeRecord(name: $0, pool: "workspace", address: "127.0.0.1:80", previewBaseURL: "http://127.0.0.1:80",
                       lastHeartbeat: now, isStatic: true)
        }
        let storeA = try SQLiteStore(path: dir.databasePath)
        try storeA.applyNow(nodes.map { .upsertNode($0) })
        let storeB = try SQLiteStore(path: dir.databasePath)
        defer { storeA.close(); storeB.close() }
        let a = try Registry(nodes: try storeA.loadAll().nodes, placements: [], store: storeA)
        let b = try Registry(nodes: try storeB.loadAll().nodes, placements: [], store: storeB)
        for (store, registry) in [(storeA, a), (storeB, b)] {
            try store.follow { event in if case .changes(let c, let through) = event { registry.applyExternal(c, through: through) } }
        }
        let key = Array("alice".utf8)
        let first = try #require(key.withUnsafeBytes { a.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name)
        #expect(eventually { b.placement(pool: "workspace", key: "alice")?.node == first })
        let other = first == "n1" ? "n2" : "n1"
        let moved = Mutex<[MovedPlacement]>([])
        b.observeMoves { m in moved.withLock { $0 += m } }
        try a.reassign(pool: "workspace", key: "alice", to: other, now: now)
        #expect(eventually { moved.withLock { !$0.isEmpty } })
        #expect(key.withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name == other)
        #expect(moved.withLock { $0 } == [MovedPlacement(pool: "workspace", key: "alice", from: first, to: other)])
        #expect(b.node(named: other)?.placementCount == 1 && b.node(named: first)?.placementCount == 0)
    }

    /// Two registries, each on its own store of one file, each following the file.
    func twoRegistries(_ dir: StoreTestDirectory, now: Int64) throws -> (SQLiteStore, Registry, SQLiteStore, Registry) {
        let nodes = ["n1", "n2"].map {
            NodeRecord(name: $0, pool: "workspace", address: "127.0.0.1:80", previewBaseURL: "http://127.0.0.1:80",
                       lastHeartbeat: now, isStatic: true)
        }
        let storeA = try SQLiteStore(path: dir.databasePath)
        try storeA.applyNow(nodes.map { .upsertNode($0) })
        let storeB = try SQLiteStore(path: dir.databasePath)
        let a = try Registry(nodes: try storeA.loadAll().nodes, placements: [], pools: ["workspace": PoolSettings(policy: .roundRobin)], store: storeA)
        let b = try Registry(nodes: try storeB.loadAll().nodes, placements: [], pools: ["workspace": PoolSettings(policy: .roundRobin)], store: storeB)
        for (store, registry) in [(storeA, a), (storeB, b)] {
            try store.follow { event in if case .changes(let c, let through) = event { registry.applyExternal(c, through: through) } }
        }
        return (storeA, a, storeB, b)
    }

    @Test("Two writers place one new key on different nodes at once: the first commit wins, both adopt it")
    func racingPlacementsConverge() throws {
        let dir = try StoreTestDirectory()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (storeA, a, storeB, b) = try twoRegistries(dir, now: now)
        defer { storeA.close(); storeB.close() }
        // Round robin: B's cursor is moved on once so the two pick different nodes for "race".
        _ = Array("warm".utf8).withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }
        let pa = Array("race".utf8).withUnsafeBytes { a.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name
        let pb = Array("race".utf8).withUnsafeBytes { b.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name
        #expect(pa != nil && pb != nil && pa != pb, "the race needs two different choices")
        storeA.flush()
        storeB.flush()
        let stored = try storeA.loadAll().placements.first { $0.key == "race" }?.node
        #expect(stored != nil)
        #expect(eventually { a.placement(pool: "workspace", key: "race")?.node == stored && b.placement(pool: "workspace", key: "race")?.node == stored })
        // B's "warm" reaches A through the feed on its own time: the counts converge, they need not be equal at once.
        #expect(eventually { a.placementCount == 2 && b.placementCount == 2 }, "a: \(a.placementCount), b: \(b.placementCount)")
    }

    @Test("A stale port or heartbeat from one writer never undoes the other's reassignment or disable")
    func staleWritesDoNotUndo() throws {
        let dir = try StoreTestDirectory()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let (storeA, a, storeB, b) = try twoRegistries(dir, now: now)
        defer { storeA.close(); storeB.close() }
        let first = try #require(Array("dana".utf8).withUnsafeBytes { a.resolve(pool: "workspace", key: $0, now: now) }.routedNode?.name)
        #expect(eventually { b.placement(pool: "workspace", key: "dana")?.node == first })
        let other = first == "n1" ? "n2" : "n1"
        // B still sees dana on `first` when it records a container port: A moves her meanwhile.
        try a.reassign(pool: "workspace", key: "dana", to: other, now: now)
        storeB.enqueue(.setHostPort(PlacementRecord(pool: "workspace", key: "dana", node: first, hostPort: 20_009,
                                                    lastActive: now, updatedAt: now)))
        storeB.flush()
        #expect(try storeA.loadAll().placements.first { $0.key == "dana" }?.node == other)
        #expect(eventually { b.placement(pool: "workspace", key: "dana")?.node == other })
        // A disables n1; a heartbeat B writes afterwards (past the 15 s write interval) keeps it
        // disabled.
        try a.setEnabled(name: "n1", false, now: now + 1)
        #expect(try b.heartbeat(name: "n1", now: now + 20_000))
        storeA.flush()
        storeB.flush()
        let n1 = try #require(try storeA.loadAll().nodes.first { $0.name == "n1" })
        #expect(!n1.enabled && n1.lastHeartbeat == now + 20_000)
        #expect(eventually { b.node(named: "n1")?.enabled == false })
    }
}

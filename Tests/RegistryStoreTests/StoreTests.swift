import CSQLite
import Testing
@testable import RegistryStore
import RouteResolver

@Suite("SQLiteStore: records")
struct StoreRecordTests {
    @Test func nodesAndPlacementsRoundTrip() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        let labelled = storeNode("ws-1", labels: ["zone": "eu-1", "gpu": "yes", "quote\"\\": "tab\tnew\nline é"])
        let plain = storeNode("rt-1", pool: "runtime")
        let placements = [
            PlacementRecord(pool: "workspace", key: "alice", node: "ws-1", hostPort: 20_001,
                            lastActive: 5, createdAt: 6, updatedAt: 7),
            PlacementRecord(pool: "runtime", key: "app_42", node: "rt-1", hostPort: 65_535),
            PlacementRecord(pool: "workspace", key: "bob", node: "ws-1"),
        ]
        try store.applyNow([.upsertNode(labelled), .upsertNode(plain)] + placements.map { .upsertPlacement($0) })

        let loaded = try store.loadAll()
        #expect(loaded.nodes == [plain, labelled])  // ordered by name
        #expect(byKey(loaded.placements) == byKey(placements))
    }

    @Test func upsertOverwritesEveryField() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        store.enqueue(.upsertNode(storeNode("a")))
        store.enqueue(.upsertNode(storeNode("b")))
        store.enqueue(.upsertPlacement(PlacementRecord(pool: "workspace", key: "k", node: "a", hostPort: 1)))
        store.flush()

        var node = storeNode("a", labels: ["x": "1"])
        node.enabled = false
        node.weight = 7
        node.capacity = 0
        node.address = "10.9.9.9:80"
        node.updatedAt = 99
        let moved = PlacementRecord(pool: "workspace", key: "k", node: "b", hostPort: 2, lastActive: 3,
                                    createdAt: 4, updatedAt: 5)
        store.enqueue(.upsertNode(node))
        store.enqueue(.upsertPlacement(moved))
        store.flush()

        let loaded = try store.loadAll()
        #expect(loaded.nodes.first { $0.name == "a" } == node)
        #expect(loaded.placements == [moved])
    }

    @Test func deletesRemoveRows() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        try store.applyNow([
            .upsertNode(storeNode("a")), .upsertNode(storeNode("b")),
            .upsertPlacement(storePlacement(1, nodes: ["a"])), .upsertPlacement(storePlacement(2, nodes: ["a"])),
        ])
        store.enqueue(.deletePlacement(pool: "workspace", key: "u1"))
        store.enqueue(.deleteNode(name: "b"))
        // Deleting what is not there is not an error: the store mirrors memory, idempotently.
        store.enqueue(.deletePlacement(pool: "workspace", key: "never-existed"))
        store.flush()

        let loaded = try store.loadAll()
        #expect(loaded.nodes.map(\.name) == ["a"])
        #expect(loaded.placements == [storePlacement(2, nodes: ["a"])])
        #expect(store.statistics.rejectedChanges == 0)
    }

    @Test func reopenKeepsEverything() throws {
        let dir = try StoreTestDirectory()
        let nodes = [storeNode("a", labels: ["tier": "gold"]), storeNode("b")]
        let placements = (0..<500).map { storePlacement($0, nodes: ["a", "b"]) }
        do {
            let store = try SQLiteStore(path: dir.databasePath)
            for node in nodes { store.enqueue(.upsertNode(node)) }
            for placement in placements { store.enqueue(.upsertPlacement(placement)) }
            store.close()
            store.close()  // idempotent
            #expect(throws: StoreError.closed) { try store.loadAll() }
        }
        let reopened = try SQLiteStore(path: dir.databasePath)
        let loaded = try reopened.loadAll()
        #expect(loaded.nodes == nodes)
        #expect(byKey(loaded.placements) == byKey(placements))
    }

    @Test func applyNowIsAllOrNothing() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        try store.applyNow([.upsertNode(storeNode("a")), .upsertPlacement(storePlacement(1, nodes: ["a"]))])
        let before = try store.loadAll()

        // The last change names a node that does not exist: the foreign key refuses it, and the
        // new node, the moved placement and the new placement before it must not stay either.
        var moved = storePlacement(1, nodes: ["b"])
        moved.hostPort = 30_000
        let batch: [StoreChange] = [
            .upsertNode(storeNode("b")), .upsertPlacement(moved), .upsertPlacement(storePlacement(2, nodes: ["a"])),
            .upsertPlacement(PlacementRecord(pool: "workspace", key: "ghost", node: "no-such-node")),
        ]
        let error = #expect(throws: StoreError.self) { try store.applyNow(batch) }
        #expect(error?.primaryCode == SQLITE_CONSTRAINT)
        #expect(try sameContents(store.loadAll(), before))

        // A node that still holds placements cannot be deleted (drain first); nothing else of the
        // batch is applied either.
        let drainless: [StoreChange] = [.upsertNode(storeNode("c")), .deleteNode(name: "a")]
        #expect(throws: StoreError.self) { try store.applyNow(drainless) }
        #expect(try sameContents(store.loadAll(), before))
    }

    @Test func writerSkipsRefusedChangesAndKeepsTheRest() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        store.enqueue(.upsertNode(storeNode("a")))
        store.enqueue(.upsertPlacement(PlacementRecord(pool: "workspace", key: "orphan", node: "missing")))
        store.enqueue(.upsertPlacement(storePlacement(1, nodes: ["a"])))
        store.flush()

        #expect(try store.loadAll().placements == [storePlacement(1, nodes: ["a"])])
        let stats = store.statistics
        #expect(stats.rejectedChanges == 1)
        #expect(stats.committedChanges == 2)
        #expect(stats.lastError?.primaryCode == SQLITE_CONSTRAINT)
    }

    @Test func closedStoreDropsAndRefuses() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        store.close()
        store.enqueue(.upsertNode(storeNode("a")))
        store.flush()  // returns: nothing was accepted
        #expect(store.statistics.droppedChanges == 1)
        #expect(throws: StoreError.closed) { try store.applyNow([.upsertNode(storeNode("a"))]) }
    }
}

private func sameContents(_ a: (nodes: [NodeRecord], placements: [PlacementRecord]),
                          _ b: (nodes: [NodeRecord], placements: [PlacementRecord])) -> Bool {
    a.nodes == b.nodes && a.placements == b.placements
}

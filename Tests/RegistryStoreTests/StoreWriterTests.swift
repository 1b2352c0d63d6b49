import CSQLite
import Foundation
import Testing
@testable import RegistryStore
import RouteResolver

@Suite("SQLiteStore: writer thread")
struct StoreWriterTests {
    static let nodes = ["n0", "n1", "n2"]

    @Test func fourThreadsEnqueueThenFlush() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        try store.applyNow(Self.nodes.map { .upsertNode(storeNode($0)) })

        let perThread = 10_000
        let done = DispatchGroup()
        for thread in 0..<4 {
            done.enter()
            Thread.detachNewThread {
                for index in 0..<perThread {
                    store.enqueue(.upsertPlacement(storePlacement(index, prefix: "t\(thread)-", nodes: Self.nodes)))
                }
                done.leave()
            }
        }
        done.wait()
        store.flush()

        // Read through a second store on the same file: flush must have committed, not merely
        // handed the changes to this store's connection.
        let reader = try SQLiteStore(path: dir.databasePath)
        let loaded = byKey(try reader.loadAll().placements)
        #expect(loaded.count == 4 * perThread)
        var wrong = 0
        for thread in 0..<4 {
            for index in 0..<perThread {
                let expected = storePlacement(index, prefix: "t\(thread)-", nodes: Self.nodes)
                if loaded["workspace/\(expected.key)"] != expected { wrong += 1 }
            }
        }
        #expect(wrong == 0)
        let stats = store.statistics
        #expect(stats.committedChanges == UInt64(4 * perThread))  // applyNow is not counted
        #expect(stats.pendingChanges == 0)
        #expect(stats.droppedChanges == 0)
    }

    @Test func flushedChangesAreVisibleToAnIndependentConnection() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        store.enqueue(.upsertNode(storeNode("n0")))
        for index in 0..<1_000 { store.enqueue(.upsertPlacement(storePlacement(index, nodes: ["n0"]))) }
        store.flush()

        // The store stays open (no close, no checkpoint): this is what a process killed with
        // SIGKILL right after flush leaves on disk, read by a connection that shares nothing.
        let raw = try RawDatabase(path: dir.databasePath)
        #expect(try raw.integer("SELECT count(*) FROM placements") == 1_000)
        #expect(try raw.integer("SELECT host_port FROM placements WHERE key = 'u999'") == 20_999)
        withExtendedLifetime(store) {}
    }

    @Test func lockedDatabaseIsRetriedWithoutLosingChanges() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath, busyTimeoutMilliseconds: 10)
        try store.applyNow([.upsertNode(storeNode("n0"))])

        // Another connection holds the write lock, so the writer's batch fails with SQLITE_BUSY.
        let other = try RawDatabase(path: dir.databasePath)
        try other.execute("BEGIN IMMEDIATE")
        store.enqueue(.upsertPlacement(storePlacement(7, nodes: ["n0"])))
        var waited = 0
        while store.statistics.failedBatches == 0 && waited < 1_000 {
            usleep(10_000)
            waited += 1
        }
        #expect(store.statistics.failedBatches > 0)
        #expect(store.statistics.lastError?.primaryCode == SQLITE_BUSY)
        try other.execute("COMMIT")

        store.flush()
        #expect(try other.integer("SELECT last_active FROM placements WHERE key = 'u7'") == 7)
        #expect(store.statistics.pendingChanges == 0)
    }

    @Test func fullQueueDropsInsteadOfGrowing() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath, queueLimit: 4, busyTimeoutMilliseconds: 10)
        try store.applyNow([.upsertNode(storeNode("n0"))])
        let other = try RawDatabase(path: dir.databasePath)
        try other.execute("BEGIN IMMEDIATE")

        // With the database locked nothing can drain: the queue holds at most 4 changes, plus at
        // most 4 more in a batch the writer took before failing (it gives them back).
        for index in 0..<20 { store.enqueue(.upsertPlacement(storePlacement(index, nodes: ["n0"]))) }
        #expect(store.statistics.droppedChanges >= 12)

        try other.execute("COMMIT")
        store.flush()
        let stored = try other.integer("SELECT count(*) FROM placements")
        #expect(stored == 20 - Int64(store.statistics.droppedChanges))
    }
}

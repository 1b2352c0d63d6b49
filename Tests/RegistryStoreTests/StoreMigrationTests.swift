import CSQLite
import Foundation
import Testing
@testable import RegistryStore
import RouteResolver

@Suite("SQLiteStore: schema migrations")
struct StoreMigrationTests {
    @Test func emptyFileIsMigratedAndReopenIsIdempotent() throws {
        let dir = try StoreTestDirectory()
        try FileManager.default.createDirectory(atPath: dir.url.appendingPathComponent("var").path,
                                                withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: dir.databasePath, contents: Data()))

        let store = try SQLiteStore(path: dir.databasePath)
        #expect(try store.schemaVersion() == SQLiteStore.latestSchemaVersion)
        try store.applyNow([.upsertNode(storeNode("a")), .upsertPlacement(storePlacement(1, nodes: ["a"]))])
        store.close()

        for _ in 0..<2 {
            let again = try SQLiteStore(path: dir.databasePath)
            #expect(try again.schemaVersion() == SQLiteStore.latestSchemaVersion)
            #expect(try again.loadAll().placements.count == 1)
            again.close()
        }
        let raw = try RawDatabase(path: dir.databasePath)
        // One row per migration, however often the file was opened.
        #expect(try raw.integer("SELECT count(*) FROM schema_version") == Int64(SQLiteStore.latestSchemaVersion))
    }

    @Test func journalIsWAL() throws {
        let dir = try StoreTestDirectory()
        let store = try SQLiteStore(path: dir.databasePath)
        defer { store.close() }
        #expect(FileManager.default.fileExists(atPath: dir.databasePath + "-wal"))
    }

    @Test func newerSchemaIsRefusedAndLeftUntouched() throws {
        let dir = try StoreTestDirectory()
        do {
            let store = try SQLiteStore(path: dir.databasePath)
            try store.applyNow([.upsertNode(storeNode("a"))])
            store.close()
        }
        let future = SQLiteStore.latestSchemaVersion + 1
        try RawDatabase(path: dir.databasePath).execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (\(future), 'from the future', 0)")

        #expect(throws: StoreError.schemaTooNew(found: future, supported: SQLiteStore.latestSchemaVersion)) {
            _ = try SQLiteStore(path: dir.databasePath)
        }
        let raw = try RawDatabase(path: dir.databasePath)
        #expect(try raw.integer("SELECT count(*) FROM nodes") == 1)
        #expect(try raw.integer("SELECT MAX(version) FROM schema_version") == Int64(future))
    }

    @Test func migrationsApplyInOrderOnceEach() throws {
        let dir = try StoreTestDirectory()
        let path = dir.url.appendingPathComponent("m.db").path
        let steps = [
            SchemaMigration(version: 1, name: "one", sql: "CREATE TABLE one (x INTEGER)"),
            // Depends on step 1: running out of order would fail.
            SchemaMigration(version: 2, name: "two", sql: "INSERT INTO one VALUES (2)"),
            SchemaMigration(version: 3, name: "three", sql: "CREATE TABLE three (y INTEGER)"),
        ]
        let db = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 100)
        try Schema.migrate(db, migrations: Array(steps.prefix(2)))
        #expect(try Schema.currentVersion(db) == 2)
        // Reopening with one more step runs only that step: step 2 would insert a second row.
        try Schema.migrate(db, migrations: steps)
        try Schema.migrate(db, migrations: steps)
        #expect(try Schema.currentVersion(db) == 3)
        db.close()
        let raw = try RawDatabase(path: path)
        #expect(try raw.integer("SELECT count(*) FROM one") == 1)
        #expect(try raw.integer("SELECT count(*) FROM three") == 0)
    }

    @Test func failedMigrationLeavesNothingBehind() throws {
        let dir = try StoreTestDirectory()
        let path = dir.url.appendingPathComponent("m.db").path
        let steps = [
            SchemaMigration(version: 1, name: "one", sql: "CREATE TABLE one (x INTEGER)"),
            SchemaMigration(version: 2, name: "broken", sql: "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1)"),
        ]
        let db = try SQLiteConnection(path: path, busyTimeoutMilliseconds: 100)
        let error = #expect(throws: StoreError.self) { try Schema.migrate(db, migrations: steps) }
        #expect(error?.primaryCode == SQLITE_ERROR)
        #expect(try Schema.currentVersion(db) == 1)
        db.close()
        let raw = try RawDatabase(path: path)
        #expect(try raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'half'") == 0)
        #expect(try raw.integer("SELECT count(*) FROM sqlite_schema WHERE name = 'one'") == 1)
    }
}

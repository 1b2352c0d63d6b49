import CSQLite
import Foundation
@testable import RegistryStore
import RouteResolver

/// A fresh directory for one test's database, removed when the test is done with it.
final class StoreTestDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// The database path inside the directory (in a subdirectory, so the store must create it).
    var databasePath: String { url.appendingPathComponent("var/registry.db").path }
}

/// A second, independent SQLite connection to a store's file: what another process (or the
/// gateway after a `kill -9`) would see. Written against the C API directly so it shares no code
/// with the store under test.
final class RawDatabase {
    private var handle: OpaquePointer?

    init(path: String) throws {
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else {
            defer { sqlite3_close_v2(handle) }
            throw RawDatabaseError(message: String(cString: sqlite3_errmsg(handle)))
        }
    }

    deinit { sqlite3_close_v2(handle) }

    func execute(_ sql: String) throws {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else {
            throw RawDatabaseError(message: String(cString: sqlite3_errmsg(handle)))
        }
    }

    /// The first column of the first row, as an integer.
    func integer(_ sql: String) throws -> Int64 {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
            throw RawDatabaseError(message: String(cString: sqlite3_errmsg(handle)))
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else {
            throw RawDatabaseError(message: String(cString: sqlite3_errmsg(handle)))
        }
        return sqlite3_column_int64(statement, 0)
    }
}

struct RawDatabaseError: Error {
    let message: String
}

func storeNode(_ name: String, pool: String = "workspace", labels: [String: String] = [:]) -> NodeRecord {
    NodeRecord(name: name, pool: pool, address: "10.0.0.\(name.utf8.count):80",
               previewBaseURL: "http://\(name):80", apiBaseURL: "http://\(name):7001",
               enabled: true, weight: 100, capacity: 500, labels: labels, lastHeartbeat: 1_700_000_000_000,
               isStatic: false, createdAt: 1_700_000_000_001, updatedAt: 1_700_000_000_002)
}

/// A placement whose every field is derived from `index`, so a reader can check values.
func storePlacement(_ index: Int, prefix: String = "u", nodes: [String]) -> PlacementRecord {
    PlacementRecord(pool: "workspace", key: "\(prefix)\(index)", node: nodes[index % nodes.count],
                    hostPort: UInt16(20_000 + index % 30_000), lastActive: Int64(index),
                    createdAt: Int64(index) * 2, updatedAt: Int64(index) * 3)
}

/// Placements keyed by "pool/key", for comparing loads regardless of order.
func byKey(_ placements: [PlacementRecord]) -> [String: PlacementRecord] {
    Dictionary(uniqueKeysWithValues: placements.map { ("\($0.pool)/\($0.key)", $0) })
}

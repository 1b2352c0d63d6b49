import RouteResolver
import CSQLite

/// Owns one `sqlite3*` and closes it in `deinit`.
///
/// Not thread-safe by itself: the connection is opened with `SQLITE_OPEN_NOMUTEX` because the
/// store already serialises every use behind its own database lock, and SQLite's per-call mutex
/// would only add cost.
final class SQLiteConnection {
    private(set) var handle: OpaquePointer?

    init(path: String, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            // Even a failed open may allocate a handle that carries the message; free it here.
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw .sqlite(code: rc, message: message, operation: "open \(path)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        // Another process (a second gateway, the sqlite3 shell) may hold the write lock briefly;
        // wait for it instead of failing at once.
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit { close() }

    /// Rows the last INSERT, UPDATE or DELETE on this connection changed.
    var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }

    /// Closes the handle; statements still alive keep it as a zombie until they are finalized
    /// (`sqlite3_close_v2`), so the order of deinits does not matter.
    func close() {
        guard let db = handle else { return }
        handle = nil
        sqlite3_close_v2(db)
    }

    /// Runs SQL without results (DDL, pragmas that return nothing).
    func execute(_ sql: String, operation: String) throws(StoreError) {
        let db = try open(operation)
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        guard rc == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw .sqlite(code: rc, message: message, operation: operation)
        }
    }

    func prepare(_ sql: String, operation: String) throws(StoreError) -> SQLiteStatement {
        let db = try open(operation)
        var statement: OpaquePointer?
        // PERSISTENT: these statements live as long as the store, so SQLite may keep them out of
        // its lookaside memory.
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw error(rc, operation: "prepare \(operation)")
        }
        return SQLiteStatement(handle: statement, connection: self, operation: operation)
    }

    /// The error SQLite reports for the last call on this connection.
    func error(_ code: Int32, operation: String) -> StoreError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
        return .sqlite(code: code, message: message, operation: operation)
    }

    private func open(_ operation: String) throws(StoreError) -> OpaquePointer {
        guard let handle else { throw .closed }
        return handle
    }
}

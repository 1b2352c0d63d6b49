import RouteResolver
import CSQLite

/// Owns one prepared `sqlite3_stmt*`, finalized in `deinit`. Prepared once, reused for every
/// execution: bind, step, reset.
final class SQLiteStatement {
    private let handle: OpaquePointer
    /// Strong: the connection must outlive its statements.
    private let connection: SQLiteConnection
    let operation: String
    /// A failed bind is remembered and reported by the next `step`, so callers bind without a
    /// `try` on every column.
    private var bindFailure: Int32 = SQLITE_OK

    init(handle: OpaquePointer, connection: SQLiteConnection, operation: String) {
        self.handle = handle
        self.connection = connection
        self.operation = operation
    }

    deinit { sqlite3_finalize(handle) }

    /// The rowid the last successful INSERT on this statement's connection assigned.
    var lastInsertRowID: Int64 { connection.handle.map { sqlite3_last_insert_rowid($0) } ?? 0 }

    func bind(_ index: Int32, _ value: String) {
        // TRANSIENT: SQLite copies the bytes, because Swift's C-string bridge only lives for the
        // duration of the call.
        note(sqlite3_bind_text(handle, index, value, -1, csqlite_transient()))
    }

    func bind(_ index: Int32, _ value: Int64) {
        note(sqlite3_bind_int64(handle, index, value))
    }

    /// nil binds SQL NULL.
    func bind(_ index: Int32, _ value: String?) {
        if let value { self.bind(index, value) } else { note(sqlite3_bind_null(handle, index)) }
    }

    func bind(_ index: Int32, _ value: Bool) {
        note(sqlite3_bind_int64(handle, index, value ? 1 : 0))
    }

    /// Advances one row: true when a row is available, false when done.
    func step() throws(StoreError) -> Bool {
        if bindFailure != SQLITE_OK {
            let code = bindFailure
            bindFailure = SQLITE_OK
            throw connection.error(code, operation: "bind \(operation)")
        }
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, operation: operation)
        }
    }

    /// Runs a statement that returns no rows, then resets it.
    func run() throws(StoreError) {
        defer { reset() }
        _ = try step()
    }

    /// Makes the statement ready for the next execution; the step's error was already reported.
    func reset() {
        sqlite3_reset(handle)
    }

    func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    /// nil for SQL NULL.
    func optionalText(_ column: Int32) -> String? {
        isNull(column) ? nil : text(column)
    }

    func text(_ column: Int32) -> String {
        // column_text before column_bytes: the byte count is of the text form.
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    private func note(_ rc: Int32) {
        if rc != SQLITE_OK && bindFailure == SQLITE_OK { bindFailure = rc }
    }
}

import RouteResolver
import CSQLite

/// Why the persistent store refused or failed an operation.
///
/// SQLite failures keep the (extended) result code, SQLite's own message and the operation we
/// were doing, so a log line says both what failed and where; PostgreSQL failures keep the
/// SQLSTATE the same way (empty when the connection itself failed).
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// SQLite returned `code` (an extended result code) while doing `operation`.
    case sqlite(code: Int32, message: String, operation: String)
    /// The file was written by a newer Switchyard (schema `found`); this build knows up to
    /// `supported`. Refused rather than guessed at: a downgrade must not corrupt newer data.
    case schemaTooNew(found: Int, supported: Int)
    /// The store was closed.
    case closed
    /// The parent directory of the database could not be created (`errno`).
    case directory(path: String, errno: Int32)
    /// PostgreSQL answered SQLSTATE `sqlstate` (empty: no answer, the connection failed).
    case postgres(sqlstate: String, message: String, operation: String)

    /// The primary SQLite result code (`SQLITE_CONSTRAINT`, `SQLITE_BUSY`, ...), or nil.
    public var primaryCode: Int32? {
        if case .sqlite(let code, _, _) = self { return code & 0xFF }
        return nil
    }

    /// True when the change itself was refused (a constraint, a type mismatch, a value too
    /// large): retrying the same change can never succeed.
    public var isRejection: Bool {
        // Class 23: integrity constraint violation; class 22: data exception.
        if case .postgres(let state, _, _) = self { return state.hasPrefix("23") || state.hasPrefix("22") }
        guard let code = primaryCode else { return false }
        return code == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH || code == SQLITE_TOOBIG
    }

    public var description: String {
        switch self {
        case .sqlite(let code, let message, let operation):
            return "sqlite error \(code) during \(operation): \(message)"
        case .schemaTooNew(let found, let supported):
            return "database schema version \(found) is newer than this build supports (\(supported)); "
                + "refusing to open it"
        case .closed:
            return "the store is closed"
        case .directory(let path, let errno):
            return "cannot create directory \(path) (errno \(errno))"
        case .postgres(let state, let message, let operation):
            return state.isEmpty ? "postgres: \(operation): \(message)" : "postgres error \(state) during \(operation): \(message)"
        }
    }
}

import RouteResolver

/// What the write path needs of a database engine: transactions, one change with its
/// change-log row, pruning. `StoreCore` runs the queue, the writer thread and `applyNow` on top of
/// it the same way for every engine (SQLite: `StoreStatements`; PostgreSQL: `PostgresStatements`).
/// Called under the core's database lock only.
protocol StoreEngine: AnyObject {
    /// A refused statement aborts the whole transaction (PostgreSQL), not just itself (SQLite):
    /// a batch with a refused change is then retried with a savepoint around each change.
    static var refusalAbortsTransaction: Bool { get }
    /// Opens a write transaction; when it throws, no transaction is left open.
    func beginTransaction() throws(StoreError)
    /// A read-only snapshot: reads inside it agree with each other.
    func beginReadTransaction() throws(StoreError)
    func commitTransaction() throws(StoreError)
    /// Undoes an open transaction; its own failure is ignored (the first error is the one to
    /// report).
    func rollbackTransaction()
    func savepoint() throws(StoreError)
    func releaseSavepoint() throws(StoreError)
    func rollbackToSavepoint() throws(StoreError)
    /// Writes `change` and its change-log row; returns the row's sequence number.
    func apply(_ change: StoreChange, at now: Int64) throws(StoreError) -> Int64
    /// Writes every change in order, all or none (the first error is thrown and, where
    /// `refusalAbortsTransaction`, has aborted the transaction); returns each one's log row.
    /// PostgreSQL sends them pipelined, so a batch costs a few round trips, not one per change.
    func applyAll(_ changes: [StoreChange], at now: Int64) throws(StoreError) -> [Int64]
    /// Drops change-log rows written before `cutoff` (Unix ms).
    func pruneChangeLog(before cutoff: Int64) throws(StoreError)
    /// Closes the connection; later calls fail.
    func close()
}

extension StoreEngine {
    static var refusalAbortsTransaction: Bool { false }
    func savepoint() throws(StoreError) {}
    func releaseSavepoint() throws(StoreError) {}
    func rollbackToSavepoint() throws(StoreError) {}

    func applyAll(_ changes: [StoreChange], at now: Int64) throws(StoreError) -> [Int64] {
        var sequence: [Int64] = []
        sequence.reserveCapacity(changes.count)
        for change in changes { sequence.append(try apply(change, at: now)) }
        return sequence
    }
}

enum StoreIdentity {
    /// A store instance's id in the change log. The system generator reads getrandom(2); 128
    /// bits keep two instances apart.
    static func randomWriterID() -> String {
        String(UInt64.random(in: .min ... .max), radix: 16) + "-" + String(UInt64.random(in: .min ... .max), radix: 16)
    }
}

import CLibpq
import Glibc
import RouteResolver

/// Owns one libpq connection (`PGconn*`) and closes it in one place (`close`, or `deinit`).
///
/// Not thread-safe by itself: each user (the store's writer, the follower) has its own and uses
/// it from one thread at a time. Queries with parameters are prepared once per connection and run
/// with `PQexecPrepared` (text parameters, so values are never spliced into SQL; no parse and
/// plan per change on the writer's path).
final class PGConnection {
    private var handle: OpaquePointer?
    /// The URL with any password removed: what messages may show.
    let target: String
    private let url: String
    private let password: String?
    /// SQL text → name of the prepared statement on this connection (cleared when it closes).
    private var prepared: [String: String] = [:]

    /// Connects to `url` (`postgres://user@host:port/db?sslmode=...`, as libpq parses it) with
    /// `password` when one is given apart from the URL. Blocks up to `connect_timeout` seconds.
    init(url: String, password: String?, connectTimeoutSeconds: Int = 5) throws(StoreError) {
        self.url = url
        self.password = password
        target = PostgresURL.redacted(url)
        handle = try Self.connect(url: url, password: password, timeout: connectTimeoutSeconds, target: target)
    }

    deinit { close() }

    func close() {
        guard let h = handle else { return }
        handle = nil
        prepared = [:]
        PQfinish(h)
    }

    /// The connection is up (it may still break at the next call).
    var isUp: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Connects again after a failure (a restarted server, a dropped socket). Blocks up to the
    /// connect timeout; throws when the server is still unreachable.
    func reconnect() throws(StoreError) {
        close()
        handle = try Self.connect(url: url, password: password, timeout: 5, target: target)
    }

    /// The socket libpq reads notifications from (-1 when closed).
    var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    /// Runs one or more statements without parameters (DDL, BEGIN/COMMIT, LISTEN); results are
    /// dropped, the first error is thrown.
    func execute(_ sql: String, operation: String) throws(StoreError) {
        let h = try open(operation)
        var failure: StoreError?
        guard PQsendQuery(h, sql) == 1 else { throw connectionError(operation) }
        while let r = PQgetResult(h) {
            let status = PQresultStatus(r)
            if failure == nil && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY {
                failure = Self.error(r, operation: operation, connection: h)
            }
            PQclear(r)
        }
        if let failure { throw failure }
    }

    /// Runs one statement with text parameters (`$1`, `$2`, ...; nil is SQL NULL) and returns
    /// its rows.
    func query(_ sql: String, _ parameters: [String?] = [], operation: String) throws(StoreError) -> PGRows {
        let h = try open(operation)
        var copies: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.flatMap { strdup($0) } }
        defer { for p in copies { free(p) } }
        let name = parameters.isEmpty ? nil : try statementName(sql, parameters.count, h, operation: operation)
        let result = copies.withUnsafeMutableBufferPointer { values in
            values.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(values.count, 1)) { p in
                if let name { return PQexecPrepared(h, name, Int32(parameters.count), p, nil, nil, 0) }
                return PQexecParams(h, sql, 0, nil, nil, nil, nil, 0)
            }
        }
        guard let result else { throw connectionError(operation) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let e = Self.error(result, operation: operation, connection: h)
            PQclear(result)
            throw e
        }
        return PGRows(result)
    }

    /// Statements per pipeline sync: small enough that neither side's socket buffer fills while
    /// the other waits (blocking mode), large enough that round trips stop mattering.
    static let pipelineChunk = 256

    /// Runs `statements` (text parameters, prepared once each) in pipeline mode: a chunk is sent
    /// without waiting for any answer, then its answers are read. Returns each statement's first
    /// column of its first row (0 without a row). Statements after a failed one do not run; the
    /// first error is thrown once its chunk was read to the end. A broken exchange closes the
    /// connection (the next transaction connects again).
    func pipeline(_ statements: [(sql: String, parameters: [String?])], operation: String) throws(StoreError) -> [Int64] {
        let h = try open(operation)
        var names: [String] = []
        names.reserveCapacity(statements.count)
        for s in statements { names.append(try statementName(s.sql, s.parameters.count, h, operation: operation)) }
        guard PQenterPipelineMode(h) == 1 else { throw connectionError(operation) }
        var out: [Int64] = []
        out.reserveCapacity(statements.count)
        var failure: StoreError?
        var start = 0
        do throws(StoreError) {
            while start < statements.count && failure == nil {
                let end = min(start + Self.pipelineChunk, statements.count)
                for i in start..<end {
                    var copies: [UnsafeMutablePointer<CChar>?] = statements[i].parameters.map { $0.flatMap { strdup($0) } }
                    // libpq copies the values into its output buffer before returning.
                    let sent = copies.withUnsafeMutableBufferPointer { values in
                        values.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(values.count, 1)) { p in
                            PQsendQueryPrepared(h, names[i], Int32(values.count), p, nil, nil, 0)
                        }
                    }
                    for p in copies { free(p) }
                    guard sent == 1 else { throw connectionError(operation) }
                }
                guard PQpipelineSync(h) == 1 else { throw connectionError(operation) }
                for _ in start..<end {
                    guard let r = PQgetResult(h) else { throw connectionError(operation) }
                    switch PQresultStatus(r) {
                    case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
                        out.append(PQntuples(r) > 0 ? Int64(String(cString: PQgetvalue(r, 0, 0))) ?? 0 : 0)
                    case PGRES_PIPELINE_ABORTED:
                        out.append(0)
                    default:
                        if failure == nil { failure = Self.error(r, operation: operation, connection: h) }
                        out.append(0)
                    }
                    PQclear(r)
                    // Each statement's results end with a null.
                    if let extra = PQgetResult(h) {
                        PQclear(extra)
                        throw .postgres(sqlstate: "", message: "unexpected extra result in a pipeline", operation: operation)
                    }
                }
                guard let sync = PQgetResult(h) else { throw connectionError(operation) }
                let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
                PQclear(sync)
                guard synced else { throw .postgres(sqlstate: "", message: "pipeline out of step", operation: operation) }
                start = end
            }
            guard PQexitPipelineMode(h) == 1 else { throw connectionError(operation) }
        } catch {
            close()
            throw error
        }
        if let failure { throw failure }
        return out
    }

    /// The prepared statement for `sql` on this connection, prepared now if it is new.
    private func statementName(_ sql: String, _ count: Int, _ h: OpaquePointer, operation: String) throws(StoreError) -> String {
        if let name = prepared[sql] { return name }
        let name = "s\(prepared.count)"
        guard let r = PQprepare(h, name, sql, Int32(count), nil) else { throw connectionError(operation) }
        defer { PQclear(r) }
        guard PQresultStatus(r) == PGRES_COMMAND_OK else { throw Self.error(r, operation: operation, connection: h) }
        prepared[sql] = name
        return name
    }

    /// Reads what the server sent (notifications) without blocking and returns the payloads of
    /// the notifications received so far. Throws when the connection broke.
    func takeNotifications() throws(StoreError) -> [String] {
        let h = try open("read notifications")
        guard PQconsumeInput(h) == 1 else { throw connectionError("read notifications") }
        var payloads: [String] = []
        while let n = PQnotifies(h) {
            payloads.append(String(cString: n.pointee.extra))
            PQfreemem(n)
        }
        return payloads
    }

    private func open(_ operation: String) throws(StoreError) -> OpaquePointer {
        guard let handle else { throw .postgres(sqlstate: "", message: "not connected to \(target)", operation: operation) }
        return handle
    }

    private func connectionError(_ operation: String) -> StoreError {
        let message = handle.map { String(cString: PQerrorMessage($0)) } ?? "not connected"
        return .postgres(sqlstate: "", message: Self.trimmed(message), operation: operation)
    }

    private static func error(_ r: OpaquePointer, operation: String, connection: OpaquePointer) -> StoreError {
        let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
        var message = String(cString: PQresultErrorMessage(r))
        if message.isEmpty { message = String(cString: PQerrorMessage(connection)) }
        return .postgres(sqlstate: state, message: trimmed(message), operation: operation)
    }

    private static func trimmed(_ s: String) -> String {
        var s = Substring(s)
        if s.hasPrefix("ERROR:") { s = s.dropFirst(6) }
        while let c = s.first, c == " " { s = s.dropFirst() }
        while let c = s.last, c == "\n" || c == " " { s = s.dropLast() }
        return String(s)
    }

    private static func connect(url: String, password: String?, timeout: Int, target: String) throws(StoreError) -> OpaquePointer {
        // expand_dbname: the "dbname" value is the URL, which libpq parses; a password given
        // apart (file, environment) is one more keyword and never part of a message. The
        // keywords before it are defaults the URL may override: a connect timeout, and TCP
        // keepalives plus a user timeout so a silent network partition fails a call within
        // ~15 s instead of hanging the writer for the kernel's two hours.
        var keys = ["connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                    "tcp_user_timeout", "dbname", "fallback_application_name"]
        var values = [String(timeout), "1", "10", "5", "3", "15000", url, "switchyard"]
        if let password { keys.append("password"); values.append(password) }
        let k = keys.map { strdup($0) } + [nil]
        let v = values.map { strdup($0) } + [nil]
        defer { for p in k + v { free(p) } }
        let h = k.map { UnsafePointer($0) }.withUnsafeBufferPointer { kp in
            v.map { UnsafePointer($0) }.withUnsafeBufferPointer { vp in
                PQconnectdbParams(kp.baseAddress!, vp.baseAddress!, 1)
            }
        }
        guard let h else { throw .postgres(sqlstate: "", message: "out of memory", operation: "connect to \(target)") }
        guard PQstatus(h) == CONNECTION_OK else {
            let message = trimmed(String(cString: PQerrorMessage(h)))
            PQfinish(h)
            throw .postgres(sqlstate: "", message: message, operation: "connect to \(target)")
        }
        // Server notices ("relation already exists, skipping") are not ours to print.
        PQsetNoticeProcessor(h, { _, _ in }, nil)
        return h
    }
}

/// The rows of one query result; frees it in `deinit`.
final class PGRows {
    private let result: OpaquePointer
    let count: Int

    init(_ result: OpaquePointer) {
        self.result = result
        count = Int(PQntuples(result))
    }

    deinit { PQclear(result) }

    func text(_ row: Int, _ column: Int) -> String {
        guard let p = PQgetvalue(result, Int32(row), Int32(column)) else { return "" }
        return String(cString: p)
    }

    func int64(_ row: Int, _ column: Int) -> Int64 {
        Int64(text(row, column)) ?? 0
    }

    /// PostgreSQL's text form of a boolean is `t` or `f`.
    func bool(_ row: Int, _ column: Int) -> Bool {
        text(row, column) == "t"
    }

    func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(result, Int32(row), Int32(column)) == 1
    }
}

/// `registry.database` values that name a PostgreSQL server.
public enum PostgresURL {
    /// Whether `database` is a PostgreSQL URL (else it is a SQLite path).
    public static func matches(_ database: String) -> Bool {
        database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
    }

    /// `url` with the password (`user:secret@`, `password=` in the query) replaced by `***`, for
    /// logs and error messages.
    public static func redacted(_ url: String) -> String {
        var s = url
        if let colon = s.firstIndex(of: ":"), s[colon...].hasPrefix("://") {
            let rest = s[s.index(colon, offsetBy: 3)...]
            let hostEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            if let at = rest[..<hostEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                s.replaceSubrange(rest.index(after: colon)..<at, with: "***")
            }
        }
        if let q = s.firstIndex(of: "?") {
            let query = s[s.index(after: q)...].split(separator: "&", omittingEmptySubsequences: false).map { part in
                part.hasPrefix("password=") ? "password=***" : String(part)
            }
            s = String(s[...q]) + query.joined(separator: "&")
        }
        return s
    }
}

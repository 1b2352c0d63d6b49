// Shared by the store's tests and the end-to-end tests (several gateways on one database): a
// library target of the test tree, linked by no product.

import Foundation
import Glibc

/// A real PostgreSQL server for one test: `initdb` into a temporary directory, `pg_ctl start` on
/// a free loopback port, stopped (immediately) and removed in `deinit`, also when the test
/// failed. PostgreSQL refuses to run as root, so under root (CI) every server command runs as the
/// `postgres` user, which owns the directory.
public final class PostgresServer: @unchecked Sendable {
    // @unchecked: `running` is touched by the test's own thread only (start, stop, deinit).
    public let directory: URL
    public let port: UInt16
    private let bin: String
    private var running = false

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init() throws {
        bin = try Self.binDirectory()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run("/bin/chown", ["postgres:postgres", directory.path], asPostgres: false) }
        port = try Self.freePort()
        try Self.run("\(bin)/initdb", ["-D", dataPath, "-U", "switchyard", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
                     asPostgres: true)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public var dataPath: String { directory.appendingPathComponent("data").path }

    /// The URL of a database on this server (`postgres` exists from initdb).
    public func url(database: String = "postgres") -> String { "postgres://switchyard@127.0.0.1:\(port)/\(database)" }

    /// A fresh database of its own, for a test that wants more than one.
    public func createDatabase(_ name: String) throws -> String {
        try Self.run("\(bin)/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "switchyard", name], asPostgres: false)
        return url(database: name)
    }

    /// Runs `query` with psql against `database`; its rows, unaligned, one per line.
    public func sql(_ query: String, database: String = "postgres") throws -> String {
        try Self.run("\(bin)/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "switchyard", "-d", database,
                                    "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query], asPostgres: false)
    }

    public func start() throws {
        // fsync off: a test server need not survive a power cut; the socket directory is ours.
        try Self.run("\(bin)/pg_ctl", ["-D", dataPath, "-l", directory.appendingPathComponent("log").path, "-w", "-t", "30",
                                      "-o", "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                     asPostgres: true)
        running = true
    }

    /// Stops the server at once (`immediate`: as a crash would, no checkpoint).
    public func stop() {
        guard running else { return }
        running = false
        try? Self.run("\(bin)/pg_ctl", ["-D", dataPath, "-m", "immediate", "-w", "stop"], asPostgres: true)
    }

    public var log: String { (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? "" }

    private static func binDirectory() throws -> String {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        guard let v = versions.last, FileManager.default.isExecutableFile(atPath: "\(base)/\(v)/bin/initdb") else {
            throw Failure(description: "PostgreSQL server binaries not found under \(base) (apt install postgresql; make test does)")
        }
        return "\(base)/\(v)/bin"
    }

    /// Runs a command to its end (posix_spawn and waitpid: Foundation's Process waits for
    /// descriptors the server pg_ctl starts keeps inheriting). Output goes to a file, shown on
    /// failure.
    @discardableResult
    private static func run(_ executable: String, _ arguments: [String], asPostgres: Bool) throws -> String {
        var argv = [executable] + arguments
        if asPostgres && getuid() == 0 { argv = ["/usr/sbin/runuser", "-u", "postgres", "--"] + argv }
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-pg-out-\(UUID().uuidString.prefix(8))").path
        defer { unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { throw Failure(description: "cannot start \(argv[0]) (errno \(rc))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            throw Failure(description: "\(argv.joined(separator: " ")): status \(status): \(output)")
        }
        return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    }

    /// A port nothing listens on now (bound to 0 and released; PostgreSQL takes it next).
    private static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw Failure(description: "no free port (errno \(errno))") }
        return UInt16(bigEndian: a.sin_port)
    }
}

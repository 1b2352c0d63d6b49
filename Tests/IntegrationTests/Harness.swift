// End-to-end harness: finds the built gateway, runs child processes with a
// deadline, and guarantees that nothing a test started outlives it.
//
// Everything here blocks the calling thread on purpose: the tests drive real
// processes and sockets, and plain blocking code keeps each test readable.

import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where the package, the gateway binary and the peer scripts live.
enum Paths {
    /// `<root>/Tests/IntegrationTests/Harness.swift` → `<root>`.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    static let peers: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .appendingPathComponent("peers")

    /// The binary under test; `SWITCHYARD_BIN` overrides the debug build.
    static var gateway: String {
        if let bin = ProcessInfo.processInfo.environment["SWITCHYARD_BIN"], !bin.isEmpty {
            return bin
        }
        return packageRoot.appendingPathComponent(".build/debug/switchyard").path
    }

    /// Resolves a program on PATH (plus the usual system directories).
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"]
        for dir in dirs {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A failure of the harness itself (a peer would not start, a port never opened).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Child bookkeeping

/// Every child still running, so an exiting test process can kill leftovers
/// (a crashed or timed-out test never reaches its `defer`).
private let liveChildren = Mutex<Set<Int32>>([])
private let exitHookInstalled = Mutex<Bool>(false)

private func registerChild(_ pid: Int32) {
    exitHookInstalled.withLock { installed in
        if !installed {
            installed = true
            atexit {
                for pid in liveChildren.withLock({ $0 }) { kill(pid, SIGKILL) }
            }
        }
    }
    _ = liveChildren.withLock { $0.insert(pid) }
}

private func unregisterChild(_ pid: Int32) {
    _ = liveChildren.withLock { $0.remove(pid) }
}

/// A started child process whose output goes to files in the test's directory.
final class Child: @unchecked Sendable {
    let name: String
    let process: Process
    let stdoutURL: URL
    let stderrURL: URL

    init(name: String, executable: String, arguments: [String], dir: URL,
         environment: [String: String]? = nil, stdin: FileHandle? = nil) throws {
        self.name = name
        self.stdoutURL = dir.appendingPathComponent("\(name).stdout")
        self.stderrURL = dir.appendingPathComponent("\(name).stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = dir
        if let environment { process.environment = environment }
        let out = try FileHandle(forWritingTo: stdoutURL)
        let err = try FileHandle(forWritingTo: stderrURL)
        // The child has its own copies once started; ours would only leak.
        defer { try? out.close(); try? err.close() }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin ?? FileHandle.nullDevice
        self.process = process
        try process.run()
        registerChild(process.processIdentifier)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Waits for exit up to `timeout`; nil if still running then.
    @discardableResult
    func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(10_000)
        }
        unregisterChild(pid)
        return process.terminationStatus
    }

    /// Signal-terminated processes report the signal number; tell them apart.
    var exitedNormally: Bool { process.terminationReason == .exit }

    func signal(_ sig: Int32) {
        if process.isRunning { kill(pid, sig) }
    }

    /// SIGTERM, then SIGKILL if it does not leave within `grace` seconds.
    func stop(grace: Double = 3) {
        guard process.isRunning else { unregisterChild(pid); return }
        kill(pid, SIGTERM)
        if wait(timeout: grace) == nil {
            kill(pid, SIGKILL)
            wait(timeout: 5)
        }
        unregisterChild(pid)
    }

    /// Resident set size in KiB from /proc/<pid>/status (VmRSS), nil once gone.
    func rssKiB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.dropFirst("VmRSS:".count).filter(\.isNumber)
            return Int(digits)
        }
        return nil
    }
}

/// One test's world: a temp directory and every child it started; `close()`
/// (and, as a backstop, `deinit`) stops them all and removes the directory.
final class Scope: @unchecked Sendable {
    let dir: URL
    private var children: [Child] = []
    private let lock = NSLock()
    private var closed = false

    init(_ label: String = "t") throws {
        let base = FileManager.default.temporaryDirectory
        dir = base.appendingPathComponent("switchyard-it-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    deinit { close() }

    func close() {
        let all: [Child] = lock.withLock {
            if closed { return [] }
            closed = true
            return children
        }
        for child in all.reversed() { child.stop(grace: 2) }
        try? FileManager.default.removeItem(at: dir)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func spawn(_ name: String, _ executable: String, _ arguments: [String],
               stdin: FileHandle? = nil) throws -> Child {
        let child = try Child(name: name, executable: executable, arguments: arguments, dir: dir, stdin: stdin)
        lock.withLock { children.append(child) }
        return child
    }

    /// Runs a program to completion (killed after `timeout`) and returns its output.
    func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> RunResult {
        let name = "run-\(UUID().uuidString.prefix(8))"
        let child = try spawn(name, executable, arguments)
        let status = child.wait(timeout: timeout)
        if status == nil { child.stop(grace: 1) }
        let out = (try? Data(contentsOf: child.stdoutURL)) ?? Data()
        let err = child.stderr
        try? FileManager.default.removeItem(at: child.stdoutURL)
        try? FileManager.default.removeItem(at: child.stderrURL)
        return RunResult(status: status ?? -1, timedOut: status == nil, stdout: out, stderr: err)
    }
}

struct RunResult {
    let status: Int32
    let timedOut: Bool
    let stdout: Data
    let stderr: String
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

// MARK: - Ports

enum Ports {
    /// Ports handed out in this test process. The kernel may give the same ephemeral port to two
    /// quick bind-and-close calls (tests run in parallel, and one config asks for several
    /// ports before anything listens), so a port is never handed out twice.
    private static let given = Mutex<Set<Int>>([])

    /// A port nothing listens on right now and no other caller in this process was given.
    static func free() throws -> Int {
        for _ in 0..<64 {
            let port = try unbound()
            if given.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw HarnessError("no unused port after 64 tries")
    }

    /// A port nothing listens on right now: bind port 0, read it, close.
    private static func unbound() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        defer { Glibc.close(fd) }
        var addr = loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw HarnessError("bind: errno \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// Outcome of one TCP connect attempt to 127.0.0.1:port.
    enum ConnectOutcome: Equatable { case accepted, refused, other(Int32) }

    static func tryConnect(_ port: Int) -> ConnectOutcome {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .other(errno) }
        defer { Glibc.close(fd) }
        var addr = loopback(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc == 0 { return .accepted }
        return errno == ECONNREFUSED ? .refused : .other(errno)
    }

    /// Polls until something accepts on `port`; fails early if `child` died.
    static func waitUntilOpen(_ port: Int, child: Child? = nil, timeout: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if tryConnect(port) == .accepted { return }
            if let child, !child.isRunning {
                throw HarnessError("\(child.name) exited (status \(child.process.terminationStatus)) before listening on \(port); stderr:\n\(child.stderr.suffix(2000))")
            }
            usleep(20_000)
        }
        throw HarnessError("nothing listened on 127.0.0.1:\(port) within \(timeout)s; stderr:\n\(child?.stderr.suffix(2000) ?? "")")
    }
}

// MARK: - Small helpers

extension Data {
    func json() -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: self)) as? [String: Any]
    }
}

/// Lowercase hex of exactly 32 characters: the gateway's generated request id.
func isGeneratedRequestId(_ s: String?) -> Bool {
    guard let s, s.count == 32 else { return false }
    return s.allSatisfy { $0.isHexDigit }
}

/// Samples a process's RSS on its own thread until stopped.
final class RSSSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [Int] = []
    private var running = true
    private let child: Child
    private let interval: Double

    init(_ child: Child, every interval: Double = 0.01) {
        self.child = child
        self.interval = interval
        let thread = Thread { [self] in self.loop() }
        thread.start()
    }

    private func loop() {
        while lock.withLock({ running }) {
            if let kib = child.rssKiB() { lock.withLock { samples.append(kib) } }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// Stops sampling; returns (samples taken, peak KiB).
    func stop() -> (count: Int, peakKiB: Int) {
        lock.withLock {
            running = false
            return (samples.count, samples.max() ?? 0)
        }
    }
}

/// Polls `body` every 10 ms until it returns true or `seconds` pass; its last answer.
func eventually(_ seconds: Double = 10, _ body: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try body() { return true }
        usleep(10_000)
    }
    return try body()
}

import ArgumentParser
import Foundation
import RegistryStore
import RouteResolver
import Synchronization

/// `switchyard bench-placement`: the placement bars of issue 3, measured on the real registry and
/// store, SQLite or PostgreSQL (bench/placement.sh and bench/registry.sh run it and keep the
/// numbers in bench/README.md).
struct BenchPlacement: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-placement",
        abstract: "Measure placement: persist rate, cold start, memory per placement, lookup latency.")

    @Option(help: "Placements to create and load.") var placements = 1_000_000
    @Option(help: "SQLite file to use (deleted first), or a PostgreSQL URL of an empty database.")
    var database = "/tmp/switchyard-bench-placement.db"
    @Option(help: "Nodes in the pool.") var nodes = 16
    @Option(help: "Lookups to time.") var lookups = 2_000_000
    @Option(help: "New placements per second during the loaded lookup run.") var rate = 10_000
    @Flag(help: "Only load what --database holds and report start-up time and memory, in this fresh process.")
    var loadOnly = false

    var engine: String { PostgresURL.matches(database) ? "PostgreSQL" : "SQLite" }

    /// The store under test. SQLite: the file is deleted first when `fresh`; PostgreSQL: the
    /// database must hold no placements (the bench never deletes someone's registry).
    func open(fresh: Bool) throws -> any RegistryStore {
        let postgres = PostgresURL.matches(database)
        if fresh && !postgres { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) } }
        let store = try StickySetup.openStore(database, password: try StickySetup.password(file: nil))
        if fresh && postgres, try !store.loadAll().placements.isEmpty {
            store.close()
            throw StickySetup.Failure(description: "\(PostgresURL.redacted(database)) already holds placements: give the bench an empty database")
        }
        return store
    }

    func run() throws {
        if loadOnly {
            // A fresh process: RSS before the load holds no freed memory of an earlier phase.
            let store = try open(fresh: false)
            defer { store.close() }
            let cold = try coldStart(store)
            print(cold.line)
            print("memory (fresh process): " + memoryLine(cold))
            return
        }
        let nodeRecords = (0..<nodes).map {
            NodeRecord(name: "node-\($0)", pool: "workspace", address: "10.0.0.\($0 + 1):80", isStatic: true)
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)

        // 1. Create and persist.
        var store: (any RegistryStore)? = try open(fresh: true)
        var registry: Registry? = try Registry(nodes: [], placements: [], store: store)
        for n in nodeRecords { try registry!.upsertNode(n) }
        let t0 = DispatchTime.now()
        for i in 0..<placements { _ = resolve(registry!, key: i, now: now) }
        let placeSeconds = seconds(since: t0)
        store!.flush()
        let persistSeconds = seconds(since: t0)
        print(String(format: "create:      %d placements placed in %.2f s, persisted (flush) after %.2f s: %.0f placements/s persisted",
                     placements, placeSeconds, persistSeconds, Double(placements) / persistSeconds))
        registry = nil
        store!.close()
        store = nil

        // 2. Cold start: load everything and build the registry, as `serve` does.
        let reopened = try open(fresh: false)
        let cold = try coldStart(reopened)
        let warm = cold.registry
        print(cold.line)
        print("memory:      " + memoryLine(cold) + " (this process freed the first registry: see --load-only)")

        // 3. Lookups of existing keys, each timed alone.
        let idle = timeLookups(warm, now: now)
        print("lookup:      existing keys, 1 thread: " + idle)

        // 4. The same while another thread places `rate` new keys per second (persisted).
        let stop = Atomic<Bool>(false)
        let placed = Atomic<Int>(0)
        let writer = Thread { [placements, rate] in
            var next = placements
            let start = DispatchTime.now()
            while !stop.load(ordering: .relaxed) {
                let due = Int(Double(rate) * Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
                while next - placements < due {
                    _ = resolve(warm, key: next, now: now)
                    next += 1
                }
                placed.store(next - placements, ordering: .relaxed)
                usleep(1000)
            }
        }
        writer.start()
        let t1 = DispatchTime.now()
        let busy = timeLookups(warm, now: now)
        stop.store(true, ordering: .relaxed)
        let busySeconds = seconds(since: t1)
        usleep(5000)
        reopened.flush()
        print(String(format: "lookup:      while placing %.0f new keys/s (%d placed and persisted): ",
                     Double(placed.load(ordering: .relaxed)) / busySeconds, placed.load(ordering: .relaxed)) + busy)
        reopened.close()
    }

    struct ColdStart {
        let registry: Registry
        let line: String
        let rssBefore: Int
        let rssAfter: Int
    }

    /// Loads everything from `store` and builds the registry, timed, with the RSS around it.
    private func coldStart(_ store: any RegistryStore) throws -> ColdStart {
        let rssBefore = residentBytes()
        let t0 = DispatchTime.now()
        let (loadedNodes, loadedPlacements) = try store.loadAll()
        let loadSeconds = seconds(since: t0)
        let warm = try Registry(nodes: loadedNodes, placements: loadedPlacements, store: store)
        let coldSeconds = seconds(since: t0)
        _ = consume loadedPlacements
        let line = String(format: "cold start:  %d placements loaded from \(engine) in %.2f s, registry ready in %.2f s (bar: <= 2 s SQLite, 3 s PostgreSQL)",
                          warm.placementCount, loadSeconds, coldSeconds)
        return ColdStart(registry: warm, line: line, rssBefore: rssBefore, rssAfter: residentBytes())
    }

    private func memoryLine(_ c: ColdStart) -> String {
        String(format: "%.0f bytes per placement (RSS %.1f -> %.1f MiB; bar: <= 256)",
               Double(c.rssAfter - c.rssBefore) / Double(max(c.registry.placementCount, 1)),
               Double(c.rssBefore) / 1_048_576, Double(c.rssAfter) / 1_048_576)
    }

    private func resolve(_ r: Registry, key i: Int, now: Int64) -> Resolution {
        var k = "user-\(i)"
        return k.withUTF8 { r.resolve(pool: "workspace", key: UnsafeRawBufferPointer($0), now: now) }
    }

    /// Times `lookups` resolves of random existing keys one by one; returns percentiles.
    private func timeLookups(_ r: Registry, now: Int64) -> String {
        // Keys prepared up front so key formatting is not timed.
        let sample = min(lookups, 200_000)
        var keys: [[UInt8]] = []
        keys.reserveCapacity(sample)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<sample { keys.append(Array("user-\(Int.random(in: 0..<placements, using: &rng))".utf8)) }
        var times = [UInt64](repeating: 0, count: lookups)
        for i in 0..<lookups {
            keys[i % sample].withUnsafeBytes { k in
                let a = DispatchTime.now().uptimeNanoseconds
                let res = r.resolve(pool: "workspace", key: k, now: now)
                let b = DispatchTime.now().uptimeNanoseconds
                if case .routed = res {} else { fatalError("lookup of an existing key failed: \(res)") }
                times[i] = b - a
            }
        }
        times.sort()
        func p(_ q: Double) -> Double { Double(times[min(times.count - 1, Int(Double(times.count) * q))]) }
        return String(format: "p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns (bar: p99 <= 1000 ns; %d lookups, clock read included)",
                      p(0.50), p(0.99), p(0.999), lookups)
    }

    private func seconds(since t: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e9
    }

    private func residentBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }
}

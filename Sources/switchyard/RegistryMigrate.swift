import ArgumentParser
import Foundation
import RegistryStore
import RouteResolver

/// `switchyard registry ...`: offline work on a registry database.
struct RegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Work on a registry database directly (no gateway needed).",
        subcommands: [RegistryMigrate.self, RegistryImport.self])
}

/// `switchyard registry migrate --from sqlite:var/switchyard.db --to postgres://...`: copies every
/// node, placement and pod, so an operator moves from the embedded default to the shared engine
/// without re-placing a single user.
///
/// Idempotent: a row the destination already holds is left alone when it says the same, and
/// kept (counted as differing) when it does not, unless `--overwrite`; running it again copies
/// nothing (a pod is "the same" when it differs only by its times). Nodes go first (placements refer to them), all through the store's own batched
/// writer, and the destination is read back to check the counts.
struct RegistryMigrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy nodes, placements and pods from one registry database to another (idempotent).",
        discussion: """
            A location is a PostgreSQL URL (postgres://user@host:port/db?sslmode=...) or a SQLite
            file (sqlite:PATH, or a bare path). The password of a PostgreSQL side comes from
            --password-file or SWITCHYARD_REGISTRY_PASSWORD, never from the command line. Stop
            the gateways writing to the source first; changes made during the copy are not
            copied (run it again).
            """)

    @Option(help: "The registry to copy from (it must exist).") var from: String
    @Option(help: "The registry to copy into (its schema is created or brought up to date).") var to: String
    @Option(name: .customLong("password-file"), help: "A file holding the PostgreSQL password (one line).")
    var passwordFile: String?
    @Flag(help: "Where the destination holds a different row for a node, key or pod, replace it with the source's.")
    var overwrite = false

    func run() throws {
        do {
            print(try migrate())
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("switchyard registry migrate: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    struct Counts: Equatable {
        var new = 0, same = 0, differing = 0, replaced = 0
    }

    func migrate() throws -> String {
        guard from != to else { throw StickySetup.Failure(description: "--from and --to are the same registry") }
        let password = try StickySetup.password(file: passwordFile, key: "--password-file")
        let source = try StickySetup.openStore(from, password: password, mustExist: true)
        defer { source.close() }
        let (nodes, placements) = try source.loadAll()
        let pods = try source.loadPods()
        let destination = try StickySetup.openStore(to, password: password)
        defer { destination.close() }
        let (haveNodes, havePlacements) = try destination.loadAll()
        let havePods = try destination.loadPods()

        var nodeCounts = Counts(), placementCounts = Counts()
        let stored = Dictionary(haveNodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var changes: [StoreChange] = []
        for n in nodes {
            guard let current = stored[n.name] else {
                nodeCounts.new += 1
                changes.append(.upsertNode(n))
                continue
            }
            if Self.sameNode(current, n) { nodeCounts.same += 1; continue }
            nodeCounts.differing += 1
            if overwrite { nodeCounts.replaced += 1; changes.append(.upsertNode(n)) }
        }
        var placed: [String: [String: String]] = [:]
        for p in havePlacements { placed[p.pool, default: [:]][p.key] = p.node }
        for p in placements {
            guard let node = placed[p.pool]?[p.key] else {
                placementCounts.new += 1
                changes.append(.insertPlacement(p))
                continue
            }
            if node == p.node { placementCounts.same += 1; continue }
            placementCounts.differing += 1
            if overwrite { placementCounts.replaced += 1; changes.append(.upsertPlacement(p)) }
        }
        var podCounts = Counts()
        let storedPods = Dictionary(havePods.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for p in pods {
            guard let current = storedPods[p.id] else {
                podCounts.new += 1
                changes.append(.upsertPod(p))
                continue
            }
            if current.sameFields(as: p) { podCounts.same += 1; continue }
            podCounts.differing += 1
            if overwrite { podCounts.replaced += 1; changes.append(.upsertPod(p)) }
        }
        var edgeCounts = Counts()
        let edges = try source.loadEdges()
        let storedEdges = Dictionary(try destination.loadEdges().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for e in edges {
            guard let current = storedEdges[e.id] else {
                edgeCounts.new += 1
                changes.append(.upsertEdge(e))
                continue
            }
            if current == e { edgeCounts.same += 1; continue }
            edgeCounts.differing += 1
            if overwrite { edgeCounts.replaced += 1; changes.append(.upsertEdge(e)) }
        }
        for c in changes { destination.enqueue(c) }
        destination.flush()
        let s = destination.statistics
        if s.rejectedChanges + s.droppedChanges + s.abandonedChanges > 0 {
            throw StickySetup.Failure(description: "the destination refused \(s.rejectedChanges + s.droppedChanges + s.abandonedChanges) of \(changes.count) row(s): \(s.lastError.map { "\($0)" } ?? "no reason given"); nothing is lost at the source, run it again once fixed")
        }
        // Read back: every source key is there now.
        let (afterNodes, afterPlacements) = try destination.loadAll()
        var after: Set<String> = []
        for p in afterPlacements { after.insert(p.pool + "\u{0}" + p.key) }
        let missing = placements.filter { !after.contains($0.pool + "\u{0}" + $0.key) }.count
        guard missing == 0, Set(afterNodes.map(\.name)).isSuperset(of: nodes.map(\.name)) else {
            throw StickySetup.Failure(description: "after the copy \(missing) placement(s) are missing from the destination")
        }
        let afterPods = try destination.loadPods()
        let missingPods = Set(pods.map(\.id)).subtracting(afterPods.map(\.id)).count
        guard missingPods == 0 else {
            throw StickySetup.Failure(description: "after the copy \(missingPods) pod(s) are missing from the destination")
        }
        func line(_ what: String, _ total: Int, _ c: Counts) -> String {
            var s = "\(total) \(what): \(c.new) copied, \(c.same) already there"
            if c.differing > 0 {
                s += overwrite ? ", \(c.replaced) differing replaced" : ", \(c.differing) differing kept (--overwrite replaces them)"
            }
            return s
        }
        return """
            registry migrate: \(PostgresURL.redacted(from)) -> \(PostgresURL.redacted(to))
              \(line("node(s)", nodes.count, nodeCounts))
              \(line("placement(s)", placements.count, placementCounts))
              \(line("pod(s)", pods.count, podCounts))
              \(line("edge(s)", edges.count, edgeCounts))
              destination now holds \(afterNodes.count) node(s), \(afterPlacements.count) placement(s), \(afterPods.count) pod(s)
            """
    }

    /// The same node but for what changes by itself (heartbeat, timestamps).
    static func sameNode(_ a: NodeRecord, _ b: NodeRecord) -> Bool {
        var x = a, y = b
        x.lastHeartbeat = 0; y.lastHeartbeat = 0
        x.createdAt = 0; y.createdAt = 0
        x.updatedAt = 0; y.updatedAt = 0
        return x == y
    }
}

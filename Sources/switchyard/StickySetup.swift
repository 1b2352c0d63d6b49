import Foundation
import ProxyEngine
import RegistryStore
import RouteResolver

/// Opens the registry when the configuration uses sticky routing: the SQLite store under
/// `registry.database`, everything it holds, then the nodes declared in the configuration
/// (upserted, so they win over stored copies and are persisted).
enum StickySetup {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func needed(_ config: EngineConfig) -> Bool {
        !config.sticky.nodes.isEmpty || !config.sticky.edges.isEmpty || config.cluster != nil
            || config.routes.routes.contains { if case .upstreams = $0.target { false } else { true } }
    }

    /// Follows other writers of the same file (a second gateway, `switchyard` admin tools run
    /// against it): their changes, and the rows that won a race with ours, are applied here as
    /// they commit. Started once the engine's move observers are registered, so a move that
    /// arrives through the feed closes the moved user's tunnels too.
    static func follow(_ store: any RegistryStore, _ registry: Registry) throws {
        try store.follow { event in
            switch event {
            case .changes(let changes, let through):
                let r = registry.applyExternal(changes, through: through)
                if r.skipped > 0 {
                    FileHandle.standardError.write(Data("switchyard: registry feed: \(r.skipped) row(s) could not apply here\n".utf8))
                }
            case .resync(let contents, let through):
                let r = registry.resync(contents, through: through)
                FileHandle.standardError.write(Data(
                    "switchyard: registry feed: fell behind the change log; reloaded \(contents.nodes.count) node(s), \(contents.placements.count) placement(s), \(contents.pods.count) pod(s), \(r.moved.count) moved\n".utf8))
            case .failed(let why):
                FileHandle.standardError.write(Data("switchyard: registry feed: \(why)\n".utf8))
            }
        }
    }

    /// The PostgreSQL password given apart from the URL: `registry.password_file` (one line; a
    /// trailing newline is dropped), else `SWITCHYARD_REGISTRY_PASSWORD`, else none (the URL's, or
    /// libpq's own ~/.pgpass).
    static func password(file: String?, key: String = "registry.password_file") throws -> String? {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw Failure(description: "\(key) \(file): cannot be read")
            }
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        return ProcessInfo.processInfo.environment["SWITCHYARD_REGISTRY_PASSWORD"]
    }

    /// The store at `location`: a PostgreSQL URL, or a SQLite file (`sqlite:PATH` or a bare
    /// path), created with its directory unless `mustExist`.
    static func openStore(_ location: String, password: @autoclosure () throws -> String?, mustExist: Bool = false) throws -> any RegistryStore & StatisticsReporting {
        if PostgresURL.matches(location) { return try PostgresStore(url: location, password: try password()) }
        let path = location.hasPrefix("sqlite:") ? String(location.dropFirst("sqlite:".count)) : location
        guard !path.isEmpty else { throw Failure(description: "\(location): no file named") }
        // SQLiteStore creates the file and its directory; a source to read must exist already.
        if mustExist, !FileManager.default.fileExists(atPath: path) { throw Failure(description: "\(path): no such file") }
        return try SQLiteStore(path: path)
    }

    /// Sets `config.registry`; returns the store to close at shutdown (nil when not needed).
    static func open(_ config: inout EngineConfig) throws -> (any RegistryStore)? {
        guard needed(config) else { return nil }
        let path = config.sticky.database
        let store = try openStore(path, password: try password(file: config.sticky.databasePasswordFile))
        do {
            let (nodes, placements) = try store.loadAll()
            let pods = try store.loadPods()
            let registry = try Registry(nodes: nodes, placements: placements, pods: pods, pools: config.sticky.pools, store: store)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for var node in config.sticky.nodes {
                let stored = nodes.first { $0.name == node.name }
                node.createdAt = stored?.createdAt ?? now
                node.updatedAt = now
                try registry.upsertNode(node)
            }
            // Stored edges first (created through the admin API, or by another center); a
            // declared one then wins for what the configuration says, keeping the stored
            // runtime state: who holds its tunnel, and its mode's reason while the mode is the same.
            let storedEdges = try store.loadEdges()
            let center = config.cluster?.nodeID ?? EngineConfig.localCenter
            registry.loadEdges(storedEdges, center: center, now: now)
            for var edge in config.sticky.edges {
                let stored = storedEdges.first { $0.id == edge.id }
                edge.createdAt = stored?.createdAt ?? now
                edge.updatedAt = now
                if let stored, stored.mode == edge.mode {
                    edge.modeReason = stored.modeReason
                    edge.modeChangedAt = stored.modeChangedAt
                } else {
                    edge.modeChangedAt = now
                }
                if let stored, stored.tunnelCenter != center {
                    edge.tunnelCenter = stored.tunnelCenter
                    edge.tunnelSeenAt = stored.tunnelSeenAt
                }
                try registry.upsertEdge(edge)
            }
            config.registry = registry
            FileHandle.standardError.write(Data(
                "switchyard: registry \(PostgresURL.redacted(path)): \(nodes.count) stored node(s), \(config.sticky.nodes.count) from config, \(placements.count) placement(s), \(registry.podCount) pod(s), \(registry.edgeCount) edge(s)\n".utf8))
            if registry.podsSkippedAtLoad > 0 {
                FileHandle.standardError.write(Data("switchyard: registry: \(registry.podsSkippedAtLoad) stored pod(s) break the record rules and were not loaded\n".utf8))
            }
            return store
        } catch {
            store.close()
            throw error
        }
    }
}

import AdminPlane
import ArgumentParser
import Foundation
import ProxyEngine
import RegistryStore
import RouteResolver

@main
struct Switchyard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A Layer-7 gateway: sticky routing, HTTP/1.1, WebSocket and TLS in one process.",
        subcommands: [Serve.self, Check.self, BenchPlacement.self, NodesCommand.self, PlacementsCommand.self, RouteCommand.self,
                      RegistryCommand.self, PodsCommand.self, EdgeAgentCommand.self],
        defaultSubcommand: Serve.self
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "The YAML configuration file.")
    var config: String = "config/switchyard.yaml"

    func load() throws -> GatewayConfig {
        do {
            return try ConfigLoader.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(config): \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway in the foreground until SIGTERM or SIGINT.")
    @OptionGroup var options: ConfigOption

    func run() throws {
        var config = try options.load()
        var center: CenterNode?
        if let settings = config.cluster {
            do { center = try CenterNode(settings, listeners: config.listeners, pools: config.sticky.pools) } catch {
                FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
                throw ExitCode(2)
            }
            config.engine.cluster = center?.identity
        }
        let store: (any RegistryStore)?
        do {
            store = try StickySetup.open(&config.engine)
        } catch {
            FileHandle.standardError.write(Data("switchyard: cannot open the registry: \(error)\n".utf8))
            throw ExitCode(1)
        }
        defer { store?.close() }
        if let center, let registry = config.registry {
            do { try center.register(in: registry) } catch {
                FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
                throw ExitCode(1)
            }
            center.startHeartbeats(registry)
            FileHandle.standardError.write(Data("switchyard: center \(center.id) (pool \(center.pool)), internal \(center.internalAddress)\n".utf8))
        }
        let certificates: ListenerCertificates?
        do {
            certificates = config.listeners.contains { $0.tls != nil } ? try ListenerCertificates(config: config.engine) : nil
        } catch {
            FileHandle.standardError.write(Data("switchyard: cannot load certificates: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let engine = Engine(config: config.engine, certificates: certificates)
        // A moved placement closes that user's tunnels, so the HMR client reconnects to its new node.
        let tunnels = engine.tunnels
        config.registry?.observeMoves { moved in
            tunnels.closeTunnels(of: moved.map { TunnelKey(pool: $0.pool, key: Array($0.key.utf8)) })
        }
        if let store, let registry = config.registry {
            do { try StickySetup.follow(store, registry) } catch {
                FileHandle.standardError.write(Data("switchyard: cannot follow the registry: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        var admin: AdminServer?
        if let address = config.admin.address {
            do {
                let token = try AdminToken.load(config.admin)
                let server = AdminServer(config: config.admin, router: engine.router,
                                         pools: config.sticky.pools, engine: EngineAdapter(engine),
                                         token: token, audit: AuditLog())
                try server.start()
                admin = server
                FileHandle.standardError.write(Data("switchyard: admin on \(address.text)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("switchyard: cannot start the admin listener on \(address.text): \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        do {
            try engine.run {
                admin?.setReady(true)
                let addresses = config.listeners.map { $0.address.text }.joined(separator: ", ")
                FileHandle.standardError.write(Data("switchyard: serving on \(addresses) with \(config.workers) worker(s)\n".utf8))
            } onDrain: {
                admin?.setReady(false)
            }
        } catch {
            FileHandle.standardError.write(Data("switchyard: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        admin?.stop()
        FileHandle.standardError.write(Data("switchyard: stopped\n".utf8))
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration file and print a summary.")
    @OptionGroup var options: ConfigOption

    func run() throws {
        let c = try options.load()
        print(ConfigSummary.render(c, path: options.config))
    }
}

enum ConfigSummary {
    static func render(_ c: GatewayConfig, path: String) -> String {
        var lines = ["\(path): OK", "workers: \(c.workers)"]
        for l in c.listeners { lines.append("listener \(l.name): \(l.address.text)") }
        for (i, r) in c.routes.routes.enumerated() {
            let host: String
            switch r.host {
            case .none: host = "*"
            case .exact(let b): host = String(decoding: b, as: UTF8.self)
            case .suffix(let b): host = "*" + String(decoding: b, as: UTF8.self)
            }
            let target: String
            switch r.target {
            case .upstreams:
                target = c.routeUpstreams[i].map { c.upstreamAddresses[$0].text }.joined(separator: ", ")
            case .edges:
                target = "edge nodes by host (307 direct, tunnel proxy)"
            case .pods(let p):
                let source = p.baseDomain.map { "host under \($0)" } ?? "first path segment"
                target = "pods by \(source), local \(p.upstreams.joined(separator: ", "))"
            case .keyed(let k):
                let source: String
                switch k.source {
                case .pathSegment(let p): source = "path segment after \(String(decoding: p, as: UTF8.self))"
                case .cookie(let n): source = "cookie \(String(decoding: n, as: UTF8.self))"
                case .query(let n): source = "query \(String(decoding: n, as: UTF8.self))"
                case .header(let n): source = "header \(String(decoding: n, as: UTF8.self))"
                }
                let cookie = k.setCookie.map { ", sets cookie \(String(decoding: $0, as: UTF8.self))" } ?? ""
                target = "pool \(k.pool) by \(source)\(cookie)"
            }
            lines.append("route \(r.name): host \(host) path \(String(decoding: r.pathPrefix, as: UTF8.self)) -> \(target)")
        }
        if let cl = c.cluster {
            lines.append("cluster: node \(cl.nodeID)\(cl.nodeID == "auto" ? " (\(cl.nodeIDFile))" : ""), pool \(cl.pool), internal \(cl.internalAddress ?? "the cluster listener's"), max_hops \(cl.maxHops)")
        }
        if StickySetup.needed(c.engine) || c.cluster != nil { lines.append("registry: \(PostgresURL.redacted(c.sticky.database))") }
        for n in c.sticky.nodes {
            lines.append("node \(n.name): pool \(n.pool) \(n.previewBaseURL) weight \(n.weight)\(n.capacity > 0 ? " capacity \(n.capacity)" : "")\(n.isStatic ? " (no heartbeats)" : "")\(n.enabled ? "" : " disabled")")
        }
        let t = c.timeouts
        lines.append("timeouts (ms): client_header \(t.clientHeader), client_body \(t.clientBody), client_idle \(t.clientIdle), upstream_connect \(t.upstreamConnect), upstream_first_byte \(t.upstreamFirstByte), upstream_read \(t.upstreamRead), send \(t.send), drain \(t.drain)")
        return lines.joined(separator: "\n")
    }
}

import ArgumentParser
import CLinux
import EdgeTunnel
import Foundation
import IOCore
import Yams

/// `switchyard edge-agent`: the edge node's side of the reverse tunnels (docs/edge-tunnel.md,
/// "The agent"). Flags override the keys of `--config`; everything is checked before the first
/// dial, so a typo fails at start with the key or flag it concerns.
struct EdgeAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-agent",
        abstract: "Keep reverse tunnels to a cluster open and carry its connections to this node's entrypoints."
    )

    @Option(help: "The cluster's tunnel listener, host:port.") var cluster: String?
    @Option(name: .customLong("node-id"), help: "This edge node's id.") var nodeID: String?
    @Option(name: .customLong("token-file"), help: "A file holding the edge token.") var tokenFile: String?
    @Option(help: "Where TLS connections go, ip:port (e.g. 127.0.0.1:443).") var forward: String?
    @Option(name: .customLong("http-forward"), help: "Where plain HTTP connections go, ip:port (none: they get 404).")
    var httpForward: String?
    @Option(help: "Parallel tunnels, 1 to 16 (default 2).") var tunnels: Int?
    @Option(name: .customLong("ca-file"), help: "PEM roots to verify the cluster with (default: the system's).") var caFile: String?
    @Option(name: .customLong("server-name"), help: "The name the cluster's certificate must carry (default: the cluster host).")
    var serverName: String?
    @Option(help: "Host names this node claims, comma-separated.") var hostnames: String?
    @Option(name: .shortAndLong, help: "A YAML file with the same keys (cluster, node_id, token_file, forward, ...).")
    var config: String?

    func run() throws {
        let settings: EdgeAgentSettings
        do { settings = try resolve() } catch {
            FileHandle.standardError.write(Data("switchyard: edge-agent: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let agent: EdgeAgent
        do { agent = try EdgeAgent(settings: settings) } catch {
            FileHandle.standardError.write(Data("switchyard: edge-agent: \(error)\n".utf8))
            throw ExitCode(1)
        }
        // SIGTERM/SIGINT end the loop: a thread waits for them (blocked everywhere else).
        cl_block_signals()
        let stopper = agent.stopper
        let waiter = Thread {
            while true {
                let sig = cl_wait_signal()
                if sig == SIGTERM || sig == SIGINT { break }
            }
            stopper.stop()
        }
        waiter.start()
        FileHandle.standardError.write(Data("switchyard: edge_agent start node=\(settings.nodeID) cluster=\(settings.clusterText) tunnels=\(settings.tunnels)\n".utf8))
        agent.run()
        FileHandle.standardError.write(Data("switchyard: edge_agent stopped node=\(settings.nodeID)\n".utf8))
    }

    /// The settings from the file's keys, overridden by the flags, all checked.
    func resolve() throws(ConfigError) -> EdgeAgentSettings {
        var file = EdgeAgentFile()
        if let config { file = try EdgeAgentFile.load(path: config) }
        func pick(_ flag: String?, _ key: String?) -> String? { flag ?? key }

        guard let clusterText = pick(cluster, file.cluster) else { throw ConfigError(key: "cluster", reason: "required (--cluster host:port)") }
        guard let (host, port) = EdgeAgentSettings.splitHostPort(clusterText) else {
            throw ConfigError(key: "cluster", reason: "\"\(clusterText)\" is not host:port")
        }
        guard let node = pick(nodeID, file.nodeID) else { throw ConfigError(key: "node_id", reason: "required (--node-id)") }
        guard !node.isEmpty, node.utf8.count <= 64,
              node.utf8.allSatisfy({ $0 < 128 && (isalnum(Int32($0)) != 0 || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")) }) else {
            throw ConfigError(key: "node_id", reason: "\"\(node)\" must be 1 to 64 of A-Z a-z 0-9 . _ -")
        }
        guard let tokenPath = pick(tokenFile, file.tokenFile) else { throw ConfigError(key: "token_file", reason: "required (--token-file)") }
        let token = try Self.readToken(tokenPath)
        guard let forwardText = pick(forward, file.forward) else { throw ConfigError(key: "forward", reason: "required (--forward ip:port)") }
        let forwardAddress = try Self.address(forwardText, key: "forward")
        let httpAddress = try pick(httpForward, file.httpForward).map { (t: String) throws(ConfigError) -> SocketAddress in
            try Self.address(t, key: "http_forward")
        }
        let count = tunnels ?? file.tunnels ?? 2
        guard (1...16).contains(count) else { throw ConfigError(key: "tunnels", reason: "must be 1 to 16, not \(count)") }
        let ca = pick(caFile, file.caFile)
        if let ca, !FileManager.default.isReadableFile(atPath: ca) {
            throw ConfigError(key: "ca_file", reason: "cannot read \(ca)")
        }
        let name = pick(serverName, file.serverName) ?? host
        guard !name.isEmpty else { throw ConfigError(key: "server_name", reason: "must not be empty") }
        var names = file.hostnames ?? []
        if let hostnames { names = hostnames.split(separator: ",").map(String.init) }
        names = names.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        for n in names where n.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" || $0 == "," }) {
            throw ConfigError(key: "hostnames", reason: "\"\(n)\" is not a host name")
        }
        return EdgeAgentSettings(clusterHost: host, clusterPort: port, nodeID: node, token: token, forward: forwardAddress,
                                 httpForward: httpAddress, tunnels: count, caFile: ca, serverName: name, hostnames: names)
    }

    static func address(_ text: String, key: String) throws(ConfigError) -> SocketAddress {
        guard let a = SocketAddress(text) else {
            throw ConfigError(key: key, reason: "\"\(text)\" is not a numeric ip:port (e.g. 127.0.0.1:443)")
        }
        return a
    }

    /// The token: the file's text without surrounding whitespace; one line, visible ASCII.
    static func readToken(_ path: String) throws(ConfigError) -> String {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(key: "token_file", reason: "cannot read \(path): \(error.localizedDescription)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ConfigError(key: "token_file", reason: "\(path) is empty") }
        guard token.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw ConfigError(key: "token_file", reason: "\(path): the token must be one word of visible ASCII")
        }
        return token
    }
}

/// The agent's YAML file: the flags' keys, snake_case. Unknown keys are errors.
struct EdgeAgentFile {
    var cluster: String?
    var nodeID: String?
    var tokenFile: String?
    var forward: String?
    var httpForward: String?
    var tunnels: Int?
    var caFile: String?
    var serverName: String?
    var hostnames: [String]?

    static func load(path: String) throws(ConfigError) -> EdgeAgentFile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(key: "", reason: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text)
    }

    static func parse(_ text: String) throws(ConfigError) -> EdgeAgentFile {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw ConfigError(key: "", reason: "not valid YAML: \(error)") }
        guard let root else { return EdgeAgentFile() }
        let m = try Mapping(root, path: "", allowed: ["cluster", "node_id", "token_file", "forward", "http_forward", "tunnels",
                                                     "ca_file", "server_name", "hostnames"])
        var f = EdgeAgentFile()
        f.cluster = try m.string("cluster")
        f.nodeID = try m.string("node_id")
        f.tokenFile = try m.string("token_file")
        f.forward = try m.string("forward")
        f.httpForward = try m.string("http_forward")
        f.tunnels = try m.int("tunnels", range: 1...16)
        f.caFile = try m.string("ca_file")
        f.serverName = try m.string("server_name")
        if let v = m.value("hostnames") {
            if let s = v.scalar?.string {
                f.hostnames = s.split(separator: ",").map(String.init)
            } else if let seq = v.sequence {
                var names: [String] = []
                for (i, item) in seq.enumerated() {
                    guard let s = item.scalar?.string else { throw ConfigError(key: "hostnames[\(i)]", reason: "must be a string") }
                    names.append(s)
                }
                f.hostnames = names
            } else {
                throw ConfigError(key: "hostnames", reason: "must be a list of names or a comma-separated string")
            }
        }
        return f
    }
}

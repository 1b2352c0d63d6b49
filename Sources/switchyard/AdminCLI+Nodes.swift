import ArgumentParser
import Foundation

/// `switchyard nodes list|add|enable|disable|remove|drain`.
struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List and change the nodes of a running gateway (through its admin API).",
        subcommands: [List.self, Add.self, Enable.self, Disable.self, Remove.self, Drain.self],
        defaultSubcommand: List.self
    )
}

/// A node as `/admin/nodes` describes it (docs/admin-api.md, "Nodes").
struct NodeView: Decodable {
    let name: String
    let pool: String
    let address: String
    let previewBaseURL: String
    let apiBaseURL: String?
    let enabled: Bool
    let weight: Int
    let capacity: Int
    let labels: [String: String]?
    let isStatic: Bool
    let healthy: Bool
    let lastHeartbeatAgeMs: Int64?
    let placements: Int
    let openTunnels: Int?

    enum CodingKeys: String, CodingKey {
        case name, pool, address, enabled, weight, capacity, labels, healthy, placements
        case previewBaseURL = "preview_base_url", apiBaseURL = "api_base_url", isStatic = "static"
        case lastHeartbeatAgeMs = "last_heartbeat_age_ms", openTunnels = "open_tunnels"
    }

    static let columns = ["NAME", "POOL", "ENABLED", "HEALTHY", "HEARTBEAT", "WEIGHT", "CAPACITY", "PLACEMENTS",
                          "TUNNELS", "ADDRESS", "PREVIEW_URL"]

    var row: [String] {
        let heartbeat = isStatic ? "static" : lastHeartbeatAgeMs.map { Format.age(ms: $0) } ?? "never"
        return [name, pool, Format.yesNo(enabled), Format.yesNo(healthy), heartbeat, String(weight),
                capacity == 0 ? "-" : String(capacity), String(placements), String(openTunnels ?? 0), address, previewBaseURL]
    }

    /// One line for messages: "pool workspace, 10.0.0.5:80, preview http://10.0.0.5:80, weight 100, ...".
    var summary: String {
        var parts = ["pool \(pool)", address, "preview \(previewBaseURL)"]
        if let api = apiBaseURL, !api.isEmpty { parts.append("api \(api)") }
        parts.append("weight \(weight)")
        parts.append(capacity == 0 ? "capacity unlimited" : "capacity \(capacity)")
        if let labels, !labels.isEmpty { parts.append("labels " + labels.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: ",")) }
        parts.append(enabled ? "enabled" : "disabled")
        parts.append(isStatic ? "static (no heartbeats)" : healthy ? "healthy" : "not healthy (no fresh heartbeat)")
        return parts.joined(separator: ", ")
    }
}

extension NodesCommand {
    struct List: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "List the nodes, by pool then name.")

        @Option(help: "Only the nodes of this pool.")
        var pool: String?

        @OptionGroup var options: AdminOptions

        func perform(_ api: AdminSession) throws(CLIFailure) {
            struct Answer: Decodable { let nodes: [NodeView] }
            let reply = try api.call("GET", ["admin", "nodes"], query: [("pool", pool)])
            if api.json { return api.printJSON(reply) }
            let nodes = try api.decode(Answer.self, reply).nodes
            guard !nodes.isEmpty else { return printNote(pool.map { "No nodes in pool \($0)." } ?? "No nodes.") }
            var table = TextTable(NodeView.columns)
            for n in nodes { table.add(n.row) }
            print(table.render())
        }
    }

    struct Add: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a node, or update the node of that name (settings not given keep their values).",
            discussion: "A node without --static is selectable only while it sends heartbeats (POST /internal/nodes/heartbeat).")

        @Argument(help: "The node's name, [A-Za-z0-9._-]{1,64}.")
        var name: String

        @Option(help: "The pool it serves (workspace, runtime, ...). A node cannot change pools.")
        var pool: String

        @Option(help: ArgumentHelp("The node's numeric address.", valueName: "host:port"))
        var address: String

        @Option(name: .customLong("preview-url"), help: ArgumentHelp("The node's web entry, where keyed routes forward.", valueName: "url"))
        var previewURL: String

        @Option(name: .customLong("api-url"), help: ArgumentHelp("The node API, asked for container ports.", valueName: "url"))
        var apiURL: String?

        @Option(help: "Relative share of new users, 1-10000 (default 100).")
        var weight: Int?

        @Option(help: "Most placements it takes; 0 = unlimited (the default).")
        var capacity: Int?

        @Option(name: .customLong("label"), help: ArgumentHelp("A label for affinity pools; repeat for more (replaces the node's labels).",
                                                               valueName: "key=value"))
        var labels: [String] = []

        @Flag(name: .customLong("static"), help: "Exempt from heartbeats: selectable while enabled.")
        var isStatic = false

        @Flag(help: "Create it disabled (no new users until enabled).")
        var disabled = false

        @OptionGroup var options: AdminOptions

        func validate() throws {
            for label in labels where !label.contains("=") || label.hasPrefix("=") {
                throw ValidationError("--label \(label): write key=value")
            }
        }

        /// The `PUT /admin/nodes/{name}` body; nil fields are left out (kept as they are).
        struct Body: Encodable {
            var pool: String?
            var address: String?
            var previewBaseURL: String?
            var apiBaseURL: String?
            var enabled: Bool?
            var weight: Int?
            var capacity: Int?
            var labels: [String: String]?
            var isStatic: Bool?

            enum CodingKeys: String, CodingKey {
                case pool, address, enabled, weight, capacity, labels
                case previewBaseURL = "preview_base_url", apiBaseURL = "api_base_url", isStatic = "static"
            }
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            var body = Body(pool: pool, address: address, previewBaseURL: previewURL, apiBaseURL: apiURL,
                            weight: weight, capacity: capacity)
            if disabled { body.enabled = false }
            if isStatic { body.isStatic = true }
            if !labels.isEmpty {
                body.labels = Dictionary(labels.map { l in
                    let i = l.firstIndex(of: "=")!
                    return (String(l[..<i]), String(l[l.index(after: i)...]))
                }, uniquingKeysWith: { _, last in last })
            }
            let reply = try api.call("PUT", ["admin", "nodes", name], body: AdminSession.encode(body))
            if api.json { return api.printJSON(reply) }
            let node = try api.decode(NodeView.self, reply)
            print("node \(node.name) \(reply.status == 201 ? "created" : "updated"): \(node.summary)")
        }
    }

    struct Enable: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "Let a node take new users again.")

        @Argument(help: "The node's name.")
        var name: String

        @OptionGroup var options: AdminOptions

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("POST", ["admin", "nodes", name, "enable"])
            if api.json { return api.printJSON(reply) }
            let node = try api.decode(NodeView.self, reply)
            print("node \(node.name) enabled: takes new users" + (node.healthy ? "" : " once it sends heartbeats (not healthy now)"))
        }
    }

    struct Disable: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a node out of scheduling: no new users; it keeps its users until drained.")

        @Argument(help: "The node's name.")
        var name: String

        @OptionGroup var options: AdminOptions

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("POST", ["admin", "nodes", name, "disable"])
            if api.json { return api.printJSON(reply) }
            let node = try api.decode(NodeView.self, reply)
            var text = "node \(node.name) disabled: no new users"
            if node.placements > 0 {
                text += "; it keeps its \(Format.plural(node.placements, "placement")) until drained (switchyard nodes drain \(node.name))"
            }
            print(text)
        }
    }

    struct Remove: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a node; its users are placed anew on their next request.",
            aliases: ["rm", "delete"])

        @Argument(help: "The node's name.")
        var name: String

        @OptionGroup var options: AdminOptions

        func perform(_ api: AdminSession) throws(CLIFailure) {
            struct Answer: Decodable {
                let removed: String
                let placementsDropped: Int
                enum CodingKeys: String, CodingKey { case removed, placementsDropped = "placements_dropped" }
            }
            let reply = try api.call("DELETE", ["admin", "nodes", name])
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            var text = "node \(a.removed) removed"
            if a.placementsDropped > 0 {
                text += "; \(Format.plural(a.placementsDropped, "placement")) dropped (those users are placed anew on their next request)"
            }
            print(text)
        }
    }
}

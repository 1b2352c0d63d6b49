import ArgumentParser
import Foundation

/// `switchyard placements list|reassign`.
struct PlacementsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "placements",
        abstract: "List users' placements (key -> node) and move one user, through the admin API.",
        subcommands: [List.self, Reassign.self],
        defaultSubcommand: List.self
    )
}

extension PlacementsCommand {
    struct List: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "List placements, sorted by pool and key, a page at a time.")

        @Option(help: "Only this pool.")
        var pool: String?

        @Option(help: "Only the placements on this node.")
        var node: String?

        @Option(help: "Skip this many placements.")
        var offset: Int?

        @Option(help: "At most this many, 1-10000 (the API's default is 100).")
        var limit: Int?

        @OptionGroup var options: AdminOptions

        struct Answer: Decodable {
            struct Item: Decodable {
                let pool: String
                let key: String
                let node: String
                let hostPort: Int
                let createdAt: Int64
                enum CodingKeys: String, CodingKey { case pool, key, node, hostPort = "host_port", createdAt = "created_at" }
            }
            let total: Int
            let offset: Int
            let limit: Int
            let placements: [Item]
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("GET", ["admin", "placements"],
                                     query: [("pool", pool), ("node", node), ("offset", offset.map(String.init)),
                                             ("limit", limit.map(String.init))])
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            if a.placements.isEmpty {
                printNote(a.total == 0 ? "No placements." : "No placements from offset \(a.offset) (there are \(a.total)).")
                return
            }
            var table = TextTable(["POOL", "KEY", "NODE", "HOST_PORT", "CREATED"])
            for p in a.placements {
                table.add([p.pool, p.key, p.node, p.hostPort == 0 ? "-" : String(p.hostPort), Format.timestamp(ms: p.createdAt)])
            }
            print(table.render())
            let last = a.offset + a.placements.count
            if a.offset > 0 || last < a.total {
                printNote("placements \(a.offset + 1)-\(last) of \(a.total)" + (last < a.total ? "; next page: --offset \(last)" : ""))
            }
        }
    }

    struct Reassign: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move one user to another node of the pool; their WebSockets reconnect there.")

        @Argument(help: "The pool.")
        var pool: String

        @Argument(help: "The user's key (user id, app id).")
        var key: String

        @Option(help: ArgumentHelp("The node to move the user to.", valueName: "node"))
        var to: String

        @OptionGroup var options: AdminOptions

        struct Body: Encodable { let node: String }

        struct Answer: Decodable {
            let pool: String
            let key: String
            let from: String
            let to: String
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("POST", ["admin", "placements", pool, key, "reassign"], body: AdminSession.encode(Body(node: to)))
            defer { api.warnIfUnhealthy(to) }
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            print("\(a.pool)/\(a.key): \(a.from) -> \(a.to)")
        }
    }
}

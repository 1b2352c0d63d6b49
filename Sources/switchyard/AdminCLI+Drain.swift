import ArgumentParser
import Foundation

extension NodesCommand {
    /// `switchyard nodes drain NAME [--to NODE] [--limit N]`: moves a node's placements
    /// elsewhere, all in one transaction; the moved users' WebSockets are closed (1012) so their
    /// clients reconnect to the new node.
    struct Drain: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a node's users to other nodes of its pool.",
            discussion: """
            Without --to, each user goes where the pool's policy chooses among the other enabled, \
            healthy nodes with room. Prints how many moved to each node; --json prints the API's \
            answer with the list of moves. Disable the node first, or new users may still land on it.
            """)

        @Argument(help: "The node to drain.")
        var name: String

        @Option(help: ArgumentHelp("Move everyone to this node of the same pool.", valueName: "node"))
        var to: String?

        @Option(help: "Move at most this many placements.")
        var limit: Int?

        @Option(name: .customLong("list-limit"), help: "With --json: list at most this many moves (the API's default is 1000).")
        var listLimit: Int?

        @OptionGroup var options: AdminOptions

        struct Body: Encodable {
            var target: String?
            var limit: Int?
            var listLimit: Int?
            enum CodingKeys: String, CodingKey { case target, limit, listLimit = "list_limit" }
        }

        struct Answer: Decodable {
            let moved: Int
            let unmoved: Int
            let byTarget: [String: Int]
            let tookMs: Double?
            enum CodingKeys: String, CodingKey { case moved, unmoved, byTarget = "by_target", tookMs = "took_ms" }
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            // A table needs only the counts: ask for no list unless the JSON is wanted.
            let body = Body(target: to, limit: limit, listLimit: api.json ? listLimit : 0)
            let reply = try api.call("POST", ["admin", "nodes", name, "drain"], body: AdminSession.encode(body))
            defer { if let to { api.warnIfUnhealthy(to) } }
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            if a.moved == 0 && a.unmoved == 0 {
                print("node \(name): no placements to move")
                return
            }
            print("node \(name): \(a.moved) moved, \(a.unmoved) unmoved" + (a.tookMs.map { " (\(Format.millis($0)))" } ?? ""))
            if !a.byTarget.isEmpty {
                var table = TextTable(["TARGET", "MOVED"])
                for (target, count) in a.byTarget.sorted(by: { $0.key < $1.key }) { table.add([target, String(count)]) }
                print(table.render())
            }
            if a.unmoved > 0 {
                let why = to.map { "\($0) has no room for them" }
                    ?? "no other enabled, healthy node of the pool has room for them"
                printNote("\(Format.plural(a.unmoved, "placement")) stay on \(name): \(why)")
            }
        }
    }
}

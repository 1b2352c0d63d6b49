import ArgumentParser
import Foundation

/// `switchyard route explain URL`.
struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Ask a running gateway how it would route a request.",
        subcommands: [Explain.self]
    )
}

extension RouteCommand {
    struct Explain: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Which rule a request matches, its key, its placement (or the node that would be chosen), and the upstream.",
            discussion: "Explaining creates nothing: a new user's node is the one that would be chosen now.")

        @Argument(help: "An absolute URL (http://host/ws/u1/) or a path (/@vite/client).")
        var url: String

        @Option(help: ArgumentHelp("A cookie the request carries; repeat for more.", valueName: "name=value"))
        var cookie: [String] = []

        @Option(help: ArgumentHelp("A header the request carries (the one a header-keyed route reads).", valueName: "Name: value"))
        var header: String?

        @Option(help: "The request method (default GET).")
        var method: String?

        @Option(help: "The Host of a request given as a path.")
        var host: String?

        @OptionGroup var options: AdminOptions

        func validate() throws {
            if let header, !header.contains(":") { throw ValidationError("--header \(header): write \"Name: value\"") }
        }

        struct Answer: Decodable {
            struct Rule: Decodable {
                let name: String
                let host: String?
                let pathPrefix: String?
                enum CodingKeys: String, CodingKey { case name, host, pathPrefix = "path_prefix" }
            }
            struct Candidate: Decodable {
                let name: String
                let enabled: Bool
                let fresh: Bool
                let selectable: Bool
                let placements: Int
                let capacity: Int
                let weight: Int
                let score: Double
            }
            let url: String
            let method: String
            let rule: Rule?
            let target: String?
            let upstreams: [String]?
            let pool: String?
            let keySource: String?
            let key: String?
            let placement: String?
            let node: NodeView?
            let upstream: String?
            let outcome: String?
            let candidates: [Candidate]?

            enum CodingKeys: String, CodingKey {
                case url, method, rule, target, upstreams, pool, key, placement, node, upstream, outcome, candidates
                case keySource = "key_source"
            }
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("GET", ["admin", "routes", "explain"],
                                     query: [("url", url), ("method", method), ("host", host),
                                             ("cookie", cookie.isEmpty ? nil : cookie.joined(separator: "; ")),
                                             ("header", header)])
            if api.json { return api.printJSON(reply) }
            print(render(try api.decode(Answer.self, reply)))
        }

        func render(_ a: Answer) -> String {
            var fields: [(String, String)] = [("URL", a.url), ("Method", a.method)]
            if let rule = a.rule {
                fields.append(("Rule", "\(rule.name) (host \(rule.host ?? "*"), path prefix \(rule.pathPrefix ?? "/"))"))
            } else {
                fields.append(("Rule", "none"))
            }
            if let target = a.target {
                fields.append(("Target", target + (a.pool.map { ", pool \($0)" } ?? "")))
            }
            if let upstreams = a.upstreams { fields.append(("Upstreams", upstreams.joined(separator: ", "))) }
            if let source = a.keySource { fields.append(("Key from", source)) }
            if a.keySource != nil { fields.append(("Key", a.key ?? "none")) }
            if let placement = a.placement { fields.append(("Placement", placement)) }
            if let node = a.node {
                var state = [node.enabled ? "enabled" : "disabled"]
                state.append(node.isStatic ? "static" : node.healthy ? "healthy" : "not healthy")
                state.append(Format.plural(node.placements, "placement"))
                fields.append(("Node", "\(node.name) (\(state.joined(separator: ", ")))"))
            }
            if let upstream = a.upstream { fields.append(("Upstream", upstream)) }
            fields.append(("Outcome", a.outcome ?? "unknown"))
            let width = fields.map(\.0.count).max()! + 2
            var text = fields.map { ($0.0 + ":").padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }
                .joined(separator: "\n")
            if let candidates = a.candidates, !candidates.isEmpty {
                var table = TextTable(["CANDIDATE", "ENABLED", "FRESH", "SELECTABLE", "PLACEMENTS", "CAPACITY", "WEIGHT", "SCORE"])
                for c in candidates {
                    table.add([c.name, Format.yesNo(c.enabled), Format.yesNo(c.fresh), Format.yesNo(c.selectable),
                               String(c.placements), c.capacity == 0 ? "-" : String(c.capacity), String(c.weight),
                               String(format: "%.6g", c.score)])
                }
                text += "\n\n" + table.render()
            }
            return text
        }
    }
}

import ArgumentParser
import Foundation

/// `switchyard pods list|create|migrate` and `switchyard cluster nodes`, through the admin API's
/// `/.cluster/...`.
struct PodsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pods",
        abstract: "Data pods on the center nodes: list them, create them (in bulk from a JSON file), migrate one.",
        subcommands: [List.self, Create.self, Migrate.self, Nodes.self],
        defaultSubcommand: List.self
    )
}

extension PodsCommand {
    struct Pod: Decodable {
        let podID: String
        let nodeID: String
        let baseURL: String
        let migrationStatus: String?
        enum CodingKeys: String, CodingKey {
            case podID = "pod_id", nodeID = "node_id", baseURL = "base_url", migrationStatus = "migration_status"
        }
    }

    struct List: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "List pods, sorted by id, a page at a time.")

        @Option(help: "Start after this pod id (the previous page's last).")
        var after: String?

        @Option(help: "At most this many, 1-1000 (the API's default is 100).")
        var limit: Int?

        @OptionGroup var options: AdminOptions

        struct Answer: Decodable {
            let pods: [Pod]
            let total: Int
            let next: String?
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("GET", [".cluster", "pods"], query: [("after", after), ("limit", limit.map(String.init))])
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            if a.pods.isEmpty { printNote(a.total == 0 ? "No pods." : "No pods after \(after ?? "the start") (there are \(a.total))."); return }
            var table = TextTable(["POD", "NODE", "MIGRATION", "BASE_URL"])
            for p in a.pods { table.add([p.podID, p.nodeID, p.migrationStatus ?? "-", p.baseURL.isEmpty ? "-" : p.baseURL]) }
            print(table.render())
            if let next = a.next { printNote("\(a.pods.count) of \(a.total); next page: --after \(next)") }
        }
    }

    struct Create: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create pods from a JSON file: one pod object, a list of them, or {\"pods\": [...]}; sent in pieces of 2000, each all or none.")

        @Option(help: ArgumentHelp("The JSON file ('-' for standard input).", valueName: "file"))
        var file: String

        @Flag(help: "Overwrite pods that exist with other fields (else such a pod refuses its piece).")
        var replace = false

        @OptionGroup var options: AdminOptions

        struct Answer: Decodable {
            let created: Int
            let replaced: Int
            let unchanged: Int
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let d = FileManager.default.contents(atPath: file) else { throw CLIFailure("\(file): cannot be read", status: 2) }
                data = d
            }
            guard let top = try? JSONSerialization.jsonObject(with: data) else { throw CLIFailure("\(file): not JSON", status: 2) }
            let pods: [Any]
            if let list = top as? [Any] { pods = list }
            else if let object = top as? [String: Any], let list = object["pods"] as? [Any], object.count == 1 { pods = list }
            else if top is [String: Any] { pods = [top] }
            else { throw CLIFailure("\(file): expected a pod object, a list of pods or {\"pods\": [...]}", status: 2) }
            var total = (created: 0, replaced: 0, unchanged: 0)
            for start in stride(from: 0, to: pods.count, by: 2000) {
                let piece = Array(pods[start..<min(start + 2000, pods.count)])
                guard let body = try? JSONSerialization.data(withJSONObject: ["pods": piece]) else {
                    throw CLIFailure("\(file): pods \(start + 1)-\(start + piece.count) cannot be encoded", status: 2)
                }
                let reply: AdminSession.Reply
                do {
                    reply = try api.call("POST", [".cluster", "pods"], query: [("replace", replace ? "true" : nil)], body: Array(body))
                } catch {
                    let done = total.created + total.replaced + total.unchanged
                    throw CLIFailure("pods \(start + 1)-\(start + piece.count): \(error) (the \(done) before them were applied)", status: error.status)
                }
                let a = try api.decode(Answer.self, reply)
                total.created += a.created
                total.replaced += a.replaced
                total.unchanged += a.unchanged
            }
            print("\(total.created) created, \(total.replaced) replaced, \(total.unchanged) unchanged")
        }
    }

    struct Migrate: AdminCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a pod to another center at once; its open WebSockets reconnect there (1012).")

        @Argument(help: "The pod id.")
        var pod: String

        @Option(help: ArgumentHelp("The center to move it to.", valueName: "node"))
        var to: String

        @OptionGroup var options: AdminOptions

        struct Body: Encodable {
            let targetNode: String
            enum CodingKeys: String, CodingKey { case targetNode = "target_node" }
        }

        struct Answer: Decodable {
            let from: String
            let to: String
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("POST", [".cluster", "pods", pod, "migrate"], body: AdminSession.encode(Body(targetNode: to)))
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            print("\(pod): \(a.from) -> \(a.to)")
        }
    }

    struct Nodes: AdminCommand {
        static let configuration = CommandConfiguration(abstract: "The cluster's centers with their addresses, state and pod counts.")

        @OptionGroup var options: AdminOptions

        struct Answer: Decodable {
            struct Node: Decodable {
                let nodeID: String
                let type: String
                let internalAddress: String
                let status: String
                let pods: Int
                let lastHeartbeat: Int64
                let isSelf: Bool
                enum CodingKeys: String, CodingKey {
                    case nodeID = "node_id", type, internalAddress = "internal_address", status, pods,
                         lastHeartbeat = "last_heartbeat", isSelf = "self"
                }
            }
            let nodes: [Node]
        }

        func perform(_ api: AdminSession) throws(CLIFailure) {
            let reply = try api.call("GET", [".cluster", "nodes"])
            if api.json { return api.printJSON(reply) }
            let a = try api.decode(Answer.self, reply)
            var table = TextTable(["NODE", "TYPE", "INTERNAL", "STATUS", "PODS", "HEARTBEAT", "ASKED"])
            for n in a.nodes {
                table.add([n.nodeID, n.type, n.internalAddress, n.status, String(n.pods), Format.timestamp(ms: n.lastHeartbeat),
                           n.isSelf ? "yes" : "-"])
            }
            print(table.render())
        }
    }
}

import ArgumentParser
import Foundation
import IOCore
import RegistryStore
import RouteResolver

/// `switchyard registry import --to DB FILE...`: the platform's existing placements, from CSV
/// or JSON exports of the seeds' MySQL tables, into the registry, so every user keeps the node
/// they had before the cut-over.
///
/// A file's name says its table (`fun_ai_workspace_node.csv`, `..._placement.json`, and the
/// deploy side's `fun_ai_deploy_runtime_node` / `..._placement`); CSV has a header line with the
/// seeds' column names, JSON is an array of objects with them. Idempotent as `migrate`: a node
/// already there with the same fields, or a key already placed, is left alone (a differing node
/// is kept unless `--overwrite`; a placement on another node is never moved: reassign does
/// that). Every refused row is reported with its file, row and reason; nothing half-written:
/// rows go through the store's batched writer, and the destination is read back.
struct RegistryImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import nodes and placements from CSV/JSON exports of the seeds' tables (idempotent).",
        discussion: """
            Tables and columns (as the seeds name them):
              fun_ai_workspace_node        id, name, nginx_base_url, api_base_url, enabled, weight
              fun_ai_workspace_placement   user_id, node_id, last_active_at
              fun_ai_deploy_runtime_node   id, name, agent_base_url, gateway_base_url, enabled, weight
              fun_ai_deploy_runtime_placement  app_id, node_id, last_active_at
            Other columns are ignored. Workspace nodes go to --workspace-pool (preview_base_url =
            nginx_base_url), runtime nodes to --runtime-pool (preview_base_url = gateway_base_url,
            api_base_url = agent_base_url). Imported nodes need heartbeats to be selectable unless
            --static-nodes.
            """)

    @Option(help: "The registry to import into (sqlite:PATH, a path, or a PostgreSQL URL).") var to: String
    @Option(name: .customLong("password-file"), help: "A file holding the PostgreSQL password (one line).")
    var passwordFile: String?
    @Option(name: .customLong("workspace-pool")) var workspacePool = "workspace"
    @Option(name: .customLong("runtime-pool")) var runtimePool = "runtime"
    @Flag(name: .customLong("static-nodes"), help: "Import nodes as static (selectable without heartbeats).")
    var staticNodes = false
    @Flag(help: "Where the registry holds a different node of the same name, replace it.") var overwrite = false
    @Argument(help: "Export files, one per table, named after it (.csv or .json).") var files: [String]

    func run() throws {
        do {
            print(try importAll())
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("switchyard registry import: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    enum Table: String, CaseIterable {
        case workspaceNode = "fun_ai_workspace_node", workspacePlacement = "fun_ai_workspace_placement"
        case runtimeNode = "fun_ai_deploy_runtime_node", runtimePlacement = "fun_ai_deploy_runtime_placement"
    }

    /// One refused row: where and why.
    struct Refusal: CustomStringConvertible {
        let file: String, row: Int, reason: String
        var description: String { "\(file) row \(row): \(reason)" }
    }

    func importAll() throws -> String {
        var byTable: [Table: (file: String, rows: [[String: String]])] = [:]
        for f in files {
            let base = URL(fileURLWithPath: f).deletingPathExtension().lastPathComponent
            guard let table = Table(rawValue: base) else {
                throw StickySetup.Failure(description: "\(f): not a table this imports (\(Table.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard byTable[table] == nil else { throw StickySetup.Failure(description: "\(f): \(table.rawValue) given twice") }
            byTable[table] = (f, try Self.readRows(f))
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var refused: [Refusal] = []
        var nodes: [NodeRecord] = []
        var placements: [PlacementRecord] = []
        for (nodeTable, placementTable, pool) in [(Table.workspaceNode, Table.workspacePlacement, workspacePool),
                                                  (Table.runtimeNode, Table.runtimePlacement, runtimePool)] {
            var names: [String: String] = [:]  // seed id -> node name
            if let (file, rows) = byTable[nodeTable] {
                for (i, row) in rows.enumerated() {
                    switch node(row, table: nodeTable, pool: pool, now: now) {
                    case .success(let (id, n)):
                        if names[id] != nil || nodes.contains(where: { $0.name == n.name }) {
                            refused.append(Refusal(file: file, row: i + 1, reason: "duplicate id \(id) or name \(n.name)"))
                        } else {
                            names[id] = n.name
                            nodes.append(n)
                        }
                    case .failure(let why): refused.append(Refusal(file: file, row: i + 1, reason: why.description))
                    }
                }
            }
            if let (file, rows) = byTable[placementTable] {
                let keyColumn = placementTable == .workspacePlacement ? "user_id" : "app_id"
                var seen = Set<String>()
                for (i, row) in rows.enumerated() {
                    guard let key = row[keyColumn], !key.isEmpty else {
                        refused.append(Refusal(file: file, row: i + 1, reason: "no \(keyColumn)")); continue
                    }
                    var keyText = key
                    guard keyText.withUTF8({ KeyExtractor.isValidKey(UnsafeRawBufferPointer($0)) }) else {
                        refused.append(Refusal(file: file, row: i + 1, reason: "\(keyColumn) \(key) is not a key ([A-Za-z0-9_-]{1,64})")); continue
                    }
                    guard let nodeID = row["node_id"], let name = names[nodeID] else {
                        refused.append(Refusal(file: file, row: i + 1, reason: "node_id \(row["node_id"] ?? "(none)") names no imported node")); continue
                    }
                    guard seen.insert(key).inserted else {
                        refused.append(Refusal(file: file, row: i + 1, reason: "\(keyColumn) \(key) placed twice")); continue
                    }
                    let active = Int64(row["last_active_at"] ?? "") ?? 0
                    placements.append(PlacementRecord(pool: pool, key: key, node: name, hostPort: 0, lastActive: active,
                                                      createdAt: now, updatedAt: now))
                }
            }
        }

        let password = try StickySetup.password(file: passwordFile, key: "--password-file")
        let store = try StickySetup.openStore(to, password: password)
        defer { store.close() }
        let (haveNodes, havePlacements) = try store.loadAll()
        let stored = Dictionary(haveNodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var changes: [StoreChange] = []
        var nodeCounts = RegistryMigrate.Counts(), placementCounts = RegistryMigrate.Counts()
        for n in nodes {
            guard let current = stored[n.name] else { nodeCounts.new += 1; changes.append(.upsertNode(n)); continue }
            if current.pool != n.pool {
                refused.append(Refusal(file: n.pool, row: 0, reason: "node \(n.name) exists in pool \(current.pool)")); continue
            }
            if RegistryMigrate.sameNode(current, n) { nodeCounts.same += 1; continue }
            nodeCounts.differing += 1
            if overwrite { nodeCounts.replaced += 1; changes.append(.upsertNode(n)) }
        }
        var placed: [String: String] = [:]
        for p in havePlacements { placed[p.pool + "\u{0}" + p.key] = p.node }
        for p in placements {
            guard let node = placed[p.pool + "\u{0}" + p.key] else { placementCounts.new += 1; changes.append(.insertPlacement(p)); continue }
            if node == p.node { placementCounts.same += 1 } else { placementCounts.differing += 1 }
        }
        for c in changes { store.enqueue(c) }
        store.flush()
        let s = store.statistics
        if s.rejectedChanges + s.droppedChanges + s.abandonedChanges > 0 {
            throw StickySetup.Failure(description: "the registry refused \(s.rejectedChanges + s.droppedChanges + s.abandonedChanges) of \(changes.count) row(s): \(s.lastError.map { "\($0)" } ?? "no reason given"); run it again once fixed")
        }
        let (_, after) = try store.loadAll()
        var afterKeys = Set<String>()
        for p in after { afterKeys.insert(p.pool + "\u{0}" + p.key) }
        let missing = placements.filter { !afterKeys.contains($0.pool + "\u{0}" + $0.key) }.count
        guard missing == 0 else { throw StickySetup.Failure(description: "after the import \(missing) placement(s) are missing") }
        var out = """
            registry import into \(PostgresURL.redacted(to))
              \(nodes.count) node(s): \(nodeCounts.new) imported, \(nodeCounts.same) already there\(nodeCounts.differing > 0 ? (overwrite ? ", \(nodeCounts.replaced) differing replaced" : ", \(nodeCounts.differing) differing kept (--overwrite replaces them)") : "")
              \(placements.count) placement(s): \(placementCounts.new) imported, \(placementCounts.same) already there\(placementCounts.differing > 0 ? ", \(placementCounts.differing) placed elsewhere already (kept; reassign moves them)" : "")
              \(refused.count) row(s) refused
            """
        for r in refused { out += "\n    \(r)" }
        return out
    }

    /// A node row as a record (its seed id kept for the placements that name it).
    private func node(_ row: [String: String], table: Table, pool: String, now: Int64) -> Result<(String, NodeRecord), StickySetup.Failure> {
        guard let id = row["id"], !id.isEmpty else { return .failure(.init(description: "no id")) }
        guard let name = row["name"], !name.isEmpty else { return .failure(.init(description: "no name")) }
        let (webColumn, apiColumn) = table == .workspaceNode ? ("nginx_base_url", "api_base_url") : ("gateway_base_url", "agent_base_url")
        guard let web = row[webColumn], let url = UpstreamURL(web)?.address.text else {
            return .failure(.init(description: "\(webColumn) \(row[webColumn] ?? "(none)") is not http://<numeric host>[:port]"))
        }
        let enabled = !["0", "false", "f"].contains((row["enabled"] ?? "1").lowercased())
        let weight = Int(row["weight"] ?? "") ?? 100
        let record = NodeRecord(name: name, pool: pool, address: url, previewBaseURL: web, apiBaseURL: row[apiColumn] ?? "",
                                enabled: enabled, weight: weight, labels: ["seed_id": id], isStatic: staticNodes,
                                createdAt: now, updatedAt: now)
        do { try record.validate() } catch { return .failure(.init(description: "\(error)")) }
        return .success((id, record))
    }

    // MARK: files

    static func readRows(_ path: String) throws -> [[String: String]] {
        guard let data = FileManager.default.contents(atPath: path) else { throw StickySetup.Failure(description: "\(path): cannot read") }
        if path.hasSuffix(".json") {
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
                throw StickySetup.Failure(description: "\(path): not a JSON array of objects")
            }
            return array.map { $0.compactMapValues { v in v is NSNull ? nil : "\(v)" } }
        }
        guard path.hasSuffix(".csv") else { throw StickySetup.Failure(description: "\(path): .csv or .json") }
        let records = try CSV.parse(String(decoding: data, as: UTF8.self), file: path)
        guard let header = records.first else { return [] }
        return records.dropFirst().filter { $0 != [""] }.map { fields in
            var row: [String: String] = [:]
            for (i, name) in header.enumerated() where i < fields.count {
                let v = fields[i]
                if v != "" && v != "NULL" && v != "\\N" { row[name.trimmingCharacters(in: .whitespaces)] = v }
            }
            return row
        }
    }
}

/// RFC 4180 CSV: fields separated by commas, records by CRLF or LF, double quotes around fields
/// that hold commas, quotes ("" inside) or line breaks. Written here: no Swift package of the
/// allowed set reads CSV, and this is the whole grammar.
enum CSV {
    static func parse(_ text: String, file: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false, atStart = true
        var it = Array(text.unicodeScalars)[...]
        while let c = it.popFirst() {
            if quoted {
                if c == "\"" {
                    if it.first == "\"" { it.removeFirst(); field.unicodeScalars.append("\"") } else { quoted = false }
                } else {
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where atStart: quoted = true; atStart = false
            case "\"": throw StickySetup.Failure(description: "\(file) record \(records.count + 1): a quote inside an unquoted field")
            case ",": record.append(field); field = ""; atStart = true
            case "\r": continue
            case "\n": record.append(field); records.append(record); record = []; field = ""; atStart = true
            default: field.unicodeScalars.append(c); atStart = false
            }
        }
        if quoted { throw StickySetup.Failure(description: "\(file): a quoted field never ends") }
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
        return records
    }
}

import Foundation
import ProxyEngine
import RouteResolver
import TLSTerminator
import Yams

/// Edge nodes declared in configuration (docs/edge-tunnel.md): loaded into the registry at start,
/// beside those created through the admin API.
extension ConfigLoader {
    static func parseEdges(_ node: Node?, into config: inout EngineConfig) throws(ConfigError) {
        guard let node else { return }
        guard let seq = node.sequence else { throw ConfigError(key: "edges", reason: "must be a list") }
        var seen: [String: String] = [:]   // hostname -> edge id
        for (i, item) in seq.enumerated() {
            let path = "edges[\(i)]"
            let e = try Mapping(item, path: path, allowed: ["id", "hostnames", "token_file", "token_sha256", "mode", "public_address", "enabled"])
            guard let id = try e.string("id") else { throw ConfigError(key: "\(path).id", reason: "is required") }
            guard let list = e.value("hostnames")?.sequence, !list.isEmpty else {
                throw ConfigError(key: "\(path).hostnames", reason: "must be a non-empty list of host names")
            }
            var hostnames: [String] = []
            for (j, h) in list.enumerated() {
                guard let s = h.scalar?.string else { throw ConfigError(key: "\(path).hostnames[\(j)]", reason: "must be a string") }
                let name = s.lowercased()
                if let other = seen[name] {
                    throw ConfigError(key: "\(path).hostnames[\(j)]", reason: "\(name) is already a hostname of edge \(other)")
                }
                seen[name] = id
                hostnames.append(name)
            }
            let hash = try tokenHash(e, path: path)
            let modeText = try e.string("mode") ?? "proxy"
            guard let mode = EdgeMode(rawValue: modeText) else {
                throw ConfigError(key: "\(path).mode", reason: "must be direct or proxy, not \"\(modeText)\"")
            }
            let address = try e.string("public_address") ?? ""
            if mode == .direct && address.isEmpty {
                throw ConfigError(key: "\(path).public_address", reason: "is required for mode: direct (the 307 target)")
            }
            let record = EdgeRecord(id: id, hostnames: hostnames, tokenHash: hash, mode: mode, modeReason: "configuration",
                                    publicAddress: address, enabled: try e.bool("enabled") ?? true)
            do {
                try EdgeRecord.validate(record)
            } catch {
                throw ConfigError(key: path, reason: "\(error)")
            }
            if config.sticky.edges.contains(where: { $0.id == id }) {
                throw ConfigError(key: "\(path).id", reason: "\(id) is declared twice")
            }
            config.sticky.edges.append(record)
        }
    }

    /// `token_sha256` as written, or the SHA-256 of `token_file`'s content (whitespace trimmed);
    /// neither: the edge cannot attach until a token is set through the admin API.
    private static func tokenHash(_ e: Mapping, path: String) throws(ConfigError) -> String {
        let file = try e.string("token_file")
        let hash = try e.string("token_sha256")
        if file != nil && hash != nil { throw ConfigError(key: "\(path).token_file", reason: "give token_file or token_sha256, not both") }
        if let hash { return hash.lowercased() }
        guard let file else { return "" }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(key: "\(path).token_file", reason: "cannot read \(file)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else { throw ConfigError(key: "\(path).token_file", reason: "\(file): a token has at least 16 characters") }
        return Digest.sha256Hex(Array(token.utf8))
    }
}

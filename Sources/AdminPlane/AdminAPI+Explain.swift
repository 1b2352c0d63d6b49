import Foundation
import RouteResolver

/// `GET /admin/routes/explain?url=...&method=...&cookie=...&header=Name:%20value`: which rule a
/// request would match, where its key comes from, its placement (or the node that would be
/// chosen — nothing is created), that node's health and the final upstream address.
extension AdminAPI {
    func explain(_ r: AdminRequest) throws(BadInput) -> AdminResponse {
        for key in r.query.keys.sorted() where !["url", "method", "cookie", "header", "host"].contains(key) {
            throw BadInput("unknown parameter", field: key)
        }
        guard let url = r.query["url"], !url.isEmpty, url.utf8.count <= 8192 else { throw BadInput("is required", field: "url") }
        let method = r.query["method"] ?? "GET"
        guard !method.isEmpty, method.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else {
            throw BadInput("must be an upper-case method name", field: "method")
        }
        // "http://host[:port]/path?q", or just "/path?q" with host= (or none).
        var host = r.query["host"] ?? ""
        var target = url
        for scheme in ["http://", "https://"] where url.lowercased().hasPrefix(scheme) {
            let rest = url.dropFirst(scheme.count)
            let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            host = String(rest[..<end])
            target = rest[end...].isEmpty ? "/" : (rest[end] == "?" ? "/" + rest[end...] : String(rest[end...]))
        }
        guard target.hasPrefix("/") else { throw BadInput("must be an absolute http(s) URL or a path starting with /", field: "url") }
        let hostName = host.hasPrefix("[") ? host : String(host.split(separator: ":", maxSplits: 1).first ?? "")
        let hostBytes = Array(hostName.utf8)
        var targetBytes = Array(target.utf8)
        let pathLength = targetBytes.firstIndex(of: 0x3F) ?? targetBytes.count

        let index = hostBytes.withUnsafeBytes { h in
            targetBytes.withUnsafeBytes { t in routes.match(host: h, path: UnsafeRawBufferPointer(rebasing: t[0..<pathLength])) }
        }
        var answer: [String: Any] = ["url": url, "method": method]
        guard let index else {
            answer["rule"] = NSNull()
            answer["outcome"] = "no route (404)"
            return .json(200, answer)
        }
        let route = routes.routes[index]
        var rule: [String: Any] = ["name": route.name, "path_prefix": String(decoding: route.pathPrefix, as: UTF8.self)]
        switch route.host {
        case .none: rule["host"] = "*"
        case .exact(let b): rule["host"] = String(decoding: b, as: UTF8.self)
        case .suffix(let b): rule["host"] = "*" + String(decoding: b, as: UTF8.self)
        }
        answer["rule"] = rule
        switch route.target {
        case .upstreams(let list):
            answer["target"] = "static"
            answer["upstreams"] = list
            answer["outcome"] = "forwarded round robin"
            return .json(200, answer)
        case .keyed(let keyed):
            answer["target"] = keyed.kind == .node ? "node" : "placement_port"
            answer["pool"] = keyed.pool
            let (source, lookup) = try findKey(keyed.source, r, &targetBytes)
            answer["key_source"] = source
            guard case .found(let start, let count) = lookup else {
                answer["outcome"] = lookup == .missing ? "no routing key (400)" : "malformed routing key (400)"
                return .json(200, answer)
            }
            let key = String(decoding: keyBytes(lookup: (start, count), keyed.source, r, targetBytes), as: UTF8.self)
            answer["key"] = key
            guard let registry else {
                answer["outcome"] = "no registry (503)"
                return .json(200, answer)
            }
            let e = registry.explain(pool: keyed.pool, key: key, now: Self.nowMs())
            answer["candidates"] = e.candidates.map {
                ["name": $0.name, "enabled": $0.enabled, "fresh": $0.fresh, "placements": $0.placements,
                 "capacity": $0.capacity, "weight": $0.weight, "score": $0.score, "selectable": $0.selectable] as [String: Any]
            }
            var nodeName: String?
            var hostPort: UInt16 = 0
            switch e.outcome {
            case .existing(let node, let port):
                answer["placement"] = "existing"
                nodeName = node
                hostPort = port
            case .wouldPlace(let node):
                answer["placement"] = "new (would be placed; explain creates nothing)"
                nodeName = node
            case .nodeDown(let node, let retry):
                answer["placement"] = "existing, node down"
                answer["outcome"] = "503 node_down, Retry-After \(retry)"
                nodeName = node
            case .noHealthyNode: answer["outcome"] = "503 no_healthy_node"
            case .insufficientCapacity: answer["outcome"] = "503 insufficient_capacity"
            case .invalidKey: answer["outcome"] = "400 malformed routing key"
            case .unknownPool: answer["outcome"] = "503 no_healthy_node (unknown pool)"
            }
            if let nodeName, let node = registry.node(named: nodeName) {
                answer["node"] = describe(node)
                if answer["outcome"] == nil {
                    if keyed.kind == .node {
                        answer["upstream"] = node.previewBaseURL
                    } else if hostPort != 0 {
                        let h = node.address.hasPrefix("[") ? String(node.address[...node.address.firstIndex(of: "]")!])
                            : String(node.address.split(separator: ":").first ?? "")
                        answer["upstream"] = "\(h):\(hostPort)"
                    } else {
                        answer["upstream"] = "container port unknown: asked from \(node.apiBaseURL) on the first request"
                    }
                    answer["outcome"] = "forwarded"
                }
            }
            return .json(200, answer)
        }
    }

    /// Finds the key as the engine would, in the URL, the `cookie` parameter or the `header`
    /// parameter ("Name: value").
    private func findKey(_ source: KeySource, _ r: AdminRequest, _ target: inout [UInt8]) throws(BadInput) -> (String, KeyLookup) {
        switch source {
        case .pathSegment(let prefix):
            let t = target.prefix { $0 != 0x3F }
            return ("path segment after \(String(decoding: prefix, as: UTF8.self))",
                    Array(t).withUnsafeBytes { KeyExtractor.fromPath($0, prefix: prefix) })
        case .query(let name):
            return ("query parameter \(String(decoding: name, as: UTF8.self))",
                    target.withUnsafeBytes { KeyExtractor.fromQuery($0, name: name) })
        case .cookie(let name):
            let label = "cookie \(String(decoding: name, as: UTF8.self))"
            guard let cookie = r.query["cookie"] else { return (label, .missing) }
            return (label, Array(cookie.utf8).withUnsafeBytes { KeyExtractor.fromCookie($0, name: name) })
        case .header(let name):
            let label = "header \(String(decoding: name, as: UTF8.self))"
            guard let header = r.query["header"] else { return (label, .missing) }
            let parts = header.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { throw BadInput("must be \"Name: value\"", field: "header") }
            guard parts[0].lowercased() == String(decoding: name, as: UTF8.self).lowercased() else { return (label, .missing) }
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            return (label, Array(value.utf8).withUnsafeBytes { KeyExtractor.fromHeaderValue($0) })
        }
    }

    /// The key's bytes from wherever `findKey` found them.
    private func keyBytes(lookup: (Int, Int), _ source: KeySource, _ r: AdminRequest, _ target: [UInt8]) -> [UInt8] {
        let (start, count) = lookup
        switch source {
        case .pathSegment, .query: return Array(target[start..<(start + count)])
        case .cookie: return Array(Array((r.query["cookie"] ?? "").utf8)[start..<(start + count)])
        case .header:
            let value = (r.query["header"] ?? "").split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
            return Array(Array(value.utf8)[start..<(start + count)])
        }
    }
}

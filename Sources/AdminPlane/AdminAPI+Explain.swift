import Foundation
import HTTP1Codec
import IOCore
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
        // The parameters become lines of a request head below: control bytes (CR, LF, ...) would
        // smuggle in other fields, so they are refused, as the engine's parser refuses them.
        for field in ["url", "host", "cookie", "header"] {
            if let value = r.query[field], value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                throw BadInput("must not contain control characters", field: field)
            }
        }
        if let header = r.query["header"], header.split(separator: ":", maxSplits: 1).count != 2 {
            throw BadInput("must be \"Name: value\"", field: "header")
        }

        // The request as the engine would see it, parsed by the engine's parser and decided by
        // the engine's router: explain and routing cannot disagree.
        // Without a host the request is HTTP/1.0, which may omit Host (RFC 9112 §3.2).
        var text = "\(method) \(target) \(host.isEmpty ? "HTTP/1.0" : "HTTP/1.1")\r\n"
        if !host.isEmpty { text += "Host: \(host)\r\n" }
        if let cookie = r.query["cookie"] { text += "Cookie: \(cookie)\r\n" }
        if let header = r.query["header"] { text += "\(header)\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8)
        let headers = HeaderTable(capacity: 8)
        let answer = try bytes.withUnsafeBufferPointer { (p) throws(BadInput) -> [String: Any] in
            let base = p.baseAddress!
            let head: RequestHead
            do throws(HTTPError) {
                head = try RequestHead.parse(base, start: 0, end: p.count, headers: headers)
            } catch {
                throw BadInput("is not a request the gateway would accept: \(error.code)", field: "url")
            }
            let decision = router.decide(head, headers: headers, base: base, listener: -1, now: Self.nowMs(), mode: .explain)
            return describe(decision, url: url, method: method, base: base)
        }
        return .json(200, answer)
    }

    /// The decision as explain's JSON: the rule, where the key came from, the placement (existing
    /// or would-be, with every candidate's score), the node and the final upstream.
    private func describe(_ decision: RouteDecision, url: String, method: String, base: UnsafePointer<UInt8>) -> [String: Any] {
        var answer: [String: Any] = ["url": url, "method": method]
        let route: Int
        switch decision {
        case .forward(let f): route = f.route
        case .reject(let r): route = r.route
        case .redirect(let r):
            answer["rule"] = NSNull()
            answer["outcome"] = "redirect (\(r.status)) to port \(r.port)"
            return answer
        }
        guard route >= 0 else {
            answer["rule"] = NSNull()
            answer["outcome"] = "no route (404)"
            return answer
        }
        let rule = router.table.routes[route]
        var ruleJSON: [String: Any] = ["name": rule.name, "path_prefix": String(decoding: rule.pathPrefix, as: UTF8.self)]
        switch rule.host {
        case .none: ruleJSON["host"] = "*"
        case .exact(let b): ruleJSON["host"] = String(decoding: b, as: UTF8.self)
        case .suffix(let b): ruleJSON["host"] = "*" + String(decoding: b, as: UTF8.self)
        }
        answer["rule"] = ruleJSON
        if let pods = router.podTargets[route] {
            describePod(decision, pods, base, into: &answer)
            return answer
        }
        guard let keyed = router.keyedTargets[route] else {
            if case .upstreams(let list) = rule.target { answer["upstreams"] = list }
            answer["target"] = "static"
            answer["outcome"] = "forwarded round robin"
            return answer
        }
        answer["target"] = keyed.kind == .node ? "node" : "placement_port"
        answer["pool"] = keyed.pool
        answer["key_source"] = Self.label(keyed.source)
        let (keyStart, keyCount) = Self.keyRange(decision)
        if keyCount > 0 {
            let key = String(decoding: UnsafeBufferPointer(start: base + keyStart, count: keyCount), as: UTF8.self)
            answer["key"] = key
            if let registry {
                let e = registry.explain(pool: keyed.pool, key: key, now: Self.nowMs())
                answer["candidates"] = e.candidates.map {
                    ["name": $0.name, "enabled": $0.enabled, "fresh": $0.fresh, "placements": $0.placements,
                     "capacity": $0.capacity, "weight": $0.weight, "score": $0.score, "selectable": $0.selectable] as [String: Any]
                }
                if case .nodeDown(let name, _) = e.outcome, let node = registry.node(named: name) {
                    answer["placement"] = "existing, node down"
                    answer["node"] = describe(node)
                }
            }
        }
        switch decision {
        case .reject(let r):
            answer["outcome"] = Self.outcome(r)
        case .forward(let f):
            answer["placement"] = f.placed ? "new (would be placed; explain creates nothing)" : "existing"
            if let node = f.node { answer["node"] = describe(node) }
            switch f.destination {
            case .routeUpstreams: break
            case .node(let node): answer["upstream"] = node.previewBaseURL
            case .nodeAPI(let node):
                answer["upstream"] = node.apiBaseURL.isEmpty ? "none: the node has no api_base_url (502)" : node.apiBaseURL
            case .container(let node, let hostPort):
                answer["upstream"] = SocketAddress(node.address)?.withPort(hostPort)?.text ?? "\(node.address) (unusable)"
            case .portLookup(let node):
                answer["upstream"] = "container port unknown: asked from \(node.apiBaseURL) on the first request"
            case .podLocal, .podCenter: break
            case .edgeTunnel(let edge):
                answer["edge"] = edge.id
                answer["upstream"] = "through edge \(edge.id)'s tunnel (503 when none is attached here)"
            }
            answer["outcome"] = "forwarded"
        case .redirect: break
        }
        return answer
    }

    /// A pod route's decision: where the pod id came from, the pod's row, and whether this
    /// center serves it or which peer does, and why.
    private func describePod(_ decision: RouteDecision, _ target: PodTarget, _ base: UnsafePointer<UInt8>, into answer: inout [String: Any]) {
        answer["target"] = "pods"
        answer["key_source"] = target.baseDomain.map { "host label under \($0)" } ?? "first path segment"
        answer["local_upstreams"] = target.upstreams
        answer["self"] = router.cluster?.nodeID ?? NSNull()
        let (keyStart, keyCount) = Self.keyRange(decision)
        if keyCount > 0 {
            let id = String(decoding: UnsafeBufferPointer(start: base + keyStart, count: keyCount), as: UTF8.self)
            answer["pod_id"] = id
            if let pod = registry?.pod(id: id) { answer["pod"] = describe(pod) }
        }
        switch decision {
        case .reject(let r):
            answer["outcome"] = Self.outcome(r)
            if let owner = r.owner { answer["owner"] = owner }
            switch r.status {
            case 404: answer["why"] = "no pod with this id in the registry"
            case 503: answer["why"] = "the owning center is not registered, disabled, or its heartbeat is stale"
            case 508: answer["why"] = "the request was forwarded max_hops times already (or came back); the views disagree"
            default: break
            }
        case .forward(let f):
            switch f.destination {
            case .podLocal(let owner):
                answer["center"] = "this center"
                answer["upstream"] = target.upstreams
                answer["why"] = keyCount == 0 ? "no pod in the request (reserved path, bare domain, or not a pod id): the local server"
                                              : "the pod's node_id is this center (\(owner?.name ?? router.cluster?.nodeID ?? "?"))"
            case .podCenter(let center):
                answer["center"] = center.name
                answer["upstream"] = center.address
                answer["node"] = describe(center)
                answer["why"] = "the pod's node_id is \(center.name), a fresh center: forwarded to its internal address"
            default: break
            }
            answer["outcome"] = "forwarded"
        case .redirect: break
        }
    }

    /// Where the decision's key (or pod id) is in the head: (0, 0) for none.
    private static func keyRange(_ decision: RouteDecision) -> (start: Int, count: Int) {
        switch decision {
        case .forward(let f): return (f.keyStart, f.keyCount)
        case .reject(let r): return (r.keyStart, r.keyCount)
        case .redirect: return (0, 0)
        }
    }

    private static func outcome(_ r: Rejection) -> String {
        switch (r.status, r.code.description) {
        case (400, "no routing key in request"): return "no routing key (400)"
        case (400, let code), (404, let code): return "\(code) (\(r.status))"
        case (let status, let code):
            return "\(status) \(code)" + (r.retryAfterSeconds > 0 ? ", Retry-After \(r.retryAfterSeconds)" : "")
        }
    }

    private static func label(_ source: KeySource) -> String {
        switch source {
        case .pathSegment(let prefix): return "path segment after \(String(decoding: prefix, as: UTF8.self))"
        case .query(let name): return "query parameter \(String(decoding: name, as: UTF8.self))"
        case .cookie(let name): return "cookie \(String(decoding: name, as: UTF8.self))"
        case .header(let name): return "header \(String(decoding: name, as: UTF8.self))"
        }
    }
}

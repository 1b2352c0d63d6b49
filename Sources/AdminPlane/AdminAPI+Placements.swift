import Foundation
import RouteResolver

/// `/admin/placements`: list (by pool and node, paged), get one, pin one (create it for a key
/// never seen), reassign one.
extension AdminAPI {
    func placements(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        switch (r.method, s.count) {
        case ("GET", 0):
            for key in r.query.keys.sorted() where !["pool", "node", "offset", "limit"].contains(key) {
                throw BadInput("unknown parameter", field: key)
            }
            let offset = try queryInt(r, "offset", 0, range: 0...100_000_000)
            let limit = try queryInt(r, "limit", 100, range: 1...10_000)
            let (total, items) = registry.placements(pool: r.query["pool"], node: r.query["node"], offset: offset, limit: limit)
            return .json(200, ["total": total, "offset": offset, "limit": limit, "placements": items.map(describe)])
        case ("GET", 2):
            guard let p = registry.placement(pool: s[0], key: s[1]) else {
                throw BadInput("no placement for \(s[1]) in \(s[0])", status: 404)
            }
            return .json(200, describe(p))
        case ("PUT", 2):
            let body = try JSONBody(r.body, allowed: ["node"])
            guard let target = try body.string("node", required: true), isName(target) else {
                throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "node")
            }
            let created: Bool
            do { created = try registry.pin(pool: s[0], key: s[1], on: target, now: Self.nowMs()) } catch { throw refusal(error) }
            let after = registry.placement(pool: s[0], key: s[1]).map(describe)
            if created {
                audit.record(who: who(r), client: r.peer, action: "placement.create", target: "\(s[0])/\(s[1])", before: nil, after: after)
            }
            return .json(created ? 201 : 200, after ?? [:])
        case ("POST", 3) where s[2] == "reassign":
            let body = try JSONBody(r.body, allowed: ["node"])
            guard let target = try body.string("node", required: true), isName(target) else {
                throw BadInput("node names are [A-Za-z0-9._-]{1,64}", field: "node")
            }
            let before = registry.placement(pool: s[0], key: s[1]).map(describe)
            let moved: MovedPlacement
            do { moved = try registry.reassign(pool: s[0], key: s[1], to: target, now: Self.nowMs()) } catch { throw refusal(error) }
            let after = registry.placement(pool: s[0], key: s[1]).map(describe)
            audit.record(who: who(r), client: r.peer, action: "placement.reassign", target: "\(s[0])/\(s[1])",
                         before: before, after: after)
            return .json(200, ["pool": moved.pool, "key": moved.key, "from": moved.from, "to": moved.to])
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    func queryInt(_ r: AdminRequest, _ name: String, _ fallback: Int, range: ClosedRange<Int>) throws(BadInput) -> Int {
        guard let text = r.query[name] else { return fallback }
        guard let v = Int(text), range.contains(v) else {
            throw BadInput("must be an integer between \(range.lowerBound) and \(range.upperBound)", field: name)
        }
        return v
    }

    func describe(_ p: PlacementRecord) -> [String: Any] {
        ["pool": p.pool, "key": p.key, "node": p.node, "host_port": Int(p.hostPort), "created_at": p.createdAt]
    }
}

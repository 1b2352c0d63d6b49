import Foundation
import RouteResolver
import TLSTerminator

/// `/admin/edges` (with `X-Admin-Token`): list, get, create or replace, delete, rotate a token;
/// and `POST /api/signal`, where an edge agent (with its own token) reports its direct
/// reachability and its tunnel (docs/edge-tunnel.md, "Signal").
extension AdminAPI {
    static let edgeFields: Set<String> = ["hostnames", "mode", "public_address", "enabled"]
    static let signalFields: Set<String> = ["node_id", "public_address", "reachability", "tunnel"]
    static let sampleFields: Set<String> = ["location", "ok", "latency_ms", "at"]
    /// Samples one signal carries at most.
    static let maxSamples = 256

    func edges(_ r: AdminRequest, _ s: [String]) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        if s.isEmpty {
            guard r.method == "GET" else { throw BadInput("use GET", status: 405) }
            let flips = registry.edgeModeFlips
            return .json(200, ["edges": registry.edges().map(describe), "mode_flips": ["to_direct": flips.toDirect, "to_proxy": flips.toProxy]])
        }
        let id = s[0]
        guard isName(id) else { throw BadInput("edge ids are [A-Za-z0-9._-]{1,64}", field: "id") }
        switch (r.method, s.count > 1 ? s[1] : "") {
        case ("GET", ""):
            guard let e = registry.edge(id: id) else { throw BadInput("no edge \(id)", status: 404) }
            return .json(200, describe(e.record))
        case ("PUT", ""):
            return try putEdge(r, registry, id)
        case ("DELETE", ""):
            let before = registry.edge(id: id).map { describe($0.record) }
            do { try registry.deleteEdge(id: id) } catch { throw refusal(error, targetField: "id") }
            audit.record(who: who(r), client: r.peer, action: "edge.delete", target: id, before: before, after: nil)
            return .json(200, ["removed": id])
        case ("POST", "token"):
            guard registry.edge(id: id) != nil else { throw BadInput("no edge \(id)", status: 404) }
            let token = Digest.randomHex(32)
            do { try registry.setEdgeToken(id: id, tokenHash: Digest.sha256Hex(token.utf8), now: Self.nowMs()) } catch { throw refusal(error, targetField: "id") }
            audit.record(who: who(r), client: r.peer, action: "edge.token", target: id, before: nil, after: nil)
            return .json(200, ["id": id, "token": token])
        default:
            throw BadInput("no such endpoint", status: 404)
        }
    }

    /// Creates (201, with a fresh token shown once) or replaces (200; the token stays) an edge.
    private func putEdge(_ r: AdminRequest, _ registry: Registry, _ id: String) throws(BadInput) -> AdminResponse {
        let body = try JSONBody(r.body, allowed: Self.edgeFields.union(["id"]))
        if let given = try body.string("id"), given != id { throw BadInput("must match the id in the path", field: "id") }
        let before = registry.edge(id: id)?.record
        let now = Self.nowMs()
        var record = before ?? EdgeRecord(id: id, hostnames: [], mode: .proxy, modeReason: "created", modeChangedAt: now, createdAt: now)
        if let names = try body.strings("hostnames", max: 64) { record.hostnames = names.map { $0.lowercased() } }
        if let text = try body.string("mode") {
            guard let mode = EdgeMode(rawValue: text) else { throw BadInput("must be direct or proxy", field: "mode") }
            if mode != record.mode {
                record.mode = mode
                record.modeReason = "set by the operator"
                record.modeChangedAt = now
            }
        }
        if let address = try body.string("public_address") { record.publicAddress = address }
        if let enabled = try body.bool("enabled") { record.enabled = enabled }
        guard !record.hostnames.isEmpty else { throw BadInput("is required to create an edge", field: "hostnames") }
        if record.mode == .direct && record.publicAddress.isEmpty {
            throw BadInput("a direct-mode edge needs a public_address (the 307 target)", field: "public_address")
        }
        var token: String?
        if record.tokenHash.isEmpty {
            token = Digest.randomHex(32)
            record.tokenHash = Digest.sha256Hex(token!.utf8)
        }
        record.updatedAt = now
        do { try registry.upsertEdge(record) } catch { throw refusal(error, targetField: "hostnames") }
        var after = describe(record)
        audit.record(who: who(r), client: r.peer, action: before == nil ? "edge.create" : "edge.update", target: id,
                     before: before.map(describe), after: after)
        if let token { after["token"] = token }
        return .json(before == nil ? 201 : 200, after)
    }

    /// `POST /api/signal`: `Authorization: Bearer <edge token>`, body
    /// `{"node_id", "public_address"?, "reachability": {"samples": [{location, ok, latency_ms, at}]}, "tunnel": {"active"}}`.
    func signal(_ r: AdminRequest) throws(BadInput) -> AdminResponse {
        let registry = try requireRegistry()
        let body = try JSONBody(r.body, allowed: Self.signalFields)
        guard let id = try body.string("node_id", required: true), isName(id) else {
            throw BadInput("edge ids are [A-Za-z0-9._-]{1,64}", field: "node_id")
        }
        guard let auth = r.header("authorization"), auth.hasPrefix("Bearer "), auth.count > 7 else {
            throw BadInput("Authorization: Bearer <edge token> required", status: 401)
        }
        let hash = Digest.sha256Hex(auth.dropFirst(7).utf8)
        switch registry.authenticateEdge(id: id, tokenHash: hash, claims: []) {
        case .unknownEdge: throw BadInput("no edge \(id)", status: 404)
        case .forbidden(let why):
            FileHandle.standardError.write(Data("switchyard: signal refused: \(why) (from \(r.peer))\n".utf8))
            throw BadInput(why, status: 403)
        case .accepted: break
        }
        var samples: [EdgeProbe] = []
        if let reach = try body.object("reachability", allowed: ["samples"]),
           let list = try reach.objects("samples", max: Self.maxSamples, allowed: Self.sampleFields) {
            for item in list {
                guard let ok = try item.bool("ok") else { throw BadInput("is required", field: "reachability.samples[].ok") }
                samples.append(EdgeProbe(location: try item.string("location", maxLength: 64) ?? "edge", ok: ok,
                                         latencyMs: try item.int("latency_ms", range: 0...3_600_000) ?? 0,
                                         at: Int64(try item.int("at", range: 0...Int(Int64.max)) ?? 0)))
            }
        }
        let active = try body.object("tunnel", allowed: ["active"])?.bool("active") ?? false
        let publicAddress = try body.string("public_address")
        let result: EdgeSignalResult
        do {
            result = try registry.recordEdgeSignal(id: id, samples: samples, publicAddress: publicAddress,
                                                   tunnelActive: active, now: Self.nowMs())
        } catch { throw refusal(error, targetField: "public_address") }
        if let from = result.flippedFrom {
            FileHandle.standardError.write(Data("switchyard: edge_mode edge=\(id) from=\(from.rawValue) to=\(result.record.mode.rawValue) reason=\"\(result.record.modeReason)\"\n".utf8))
            audit.record(who: "edge:\(id)", client: r.peer, action: "edge.mode", target: id, before: ["mode": from.rawValue],
                         after: ["mode": result.record.mode.rawValue, "reason": result.record.modeReason])
        }
        return .json(200, ["node_id": id, "mode": result.record.mode.rawValue, "mode_reason": result.record.modeReason,
                           "failed_probes": result.record.failedProbes])
    }

    func describe(_ e: EdgeRecord) -> [String: Any] {
        ["id": e.id, "hostnames": e.hostnames, "mode": e.mode.rawValue, "mode_reason": e.modeReason,
         "mode_changed_at": e.modeChangedAt, "public_address": e.publicAddress, "failed_probes": e.failedProbes,
         "tunnel_center": e.tunnelCenter.isEmpty ? NSNull() : e.tunnelCenter, "tunnel_seen_at": e.tunnelSeenAt,
         "enabled": e.enabled, "has_token": !e.tokenHash.isEmpty, "created_at": e.createdAt, "updated_at": e.updatedAt]
    }
}

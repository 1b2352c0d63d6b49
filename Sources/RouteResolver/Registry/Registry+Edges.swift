/// Whether an edge agent may attach a tunnel (docs/edge-tunnel.md, "Attach").
public enum EdgeAttachment: Sendable {
    case accepted(EdgeRoute)
    /// No edge with this id (404).
    case unknownEdge
    /// Wrong token, no token on record, disabled, or a claimed hostname that is not this
    /// edge's (403). The text is for the log and the answer.
    case forbidden(String)
}

/// Edge nodes: which edge serves a host (once per passthrough connection or edge request), who
/// may attach a tunnel for it, and the operator's and the tunnels' writes.
///
/// The directory is one immutable value behind one lock, replaced whole on a change: edges
/// change rarely (an operator, a mode flip, a tunnel attaching), and a lookup copies one
/// reference out.
extension Registry {
    /// The edge serving `host` (lowercase, no port, no trailing dot), enabled or not.
    public func edge(forHost host: String) -> EdgeRoute? {
        edgeDirectory.withLock { $0.route(forHost: host) }
    }

    public func edge(id: String) -> EdgeRoute? {
        edgeDirectory.withLock { $0.byID[id] }
    }

    /// Every edge, sorted by id.
    public func edges() -> [EdgeRecord] {
        edgeDirectory.withLock { $0.byID.values.map(\.record) }.sorted { $0.id < $1.id }
    }

    /// How many edges the registry holds.
    public var edgeCount: Int { edgeDirectory.withLock { $0.byID.count } }

    /// Checks an attach: `tokenHash` is the SHA-256 (lowercase hex) of the token the agent
    /// presented, compared in constant time; `claims` are the hostnames it says it serves
    /// (empty: all of the edge's).
    public func authenticateEdge(id: String, tokenHash: String, claims: [String]) -> EdgeAttachment {
        guard let route = edge(id: id) else { return .unknownEdge }
        let r = route.record
        guard !r.tokenHash.isEmpty, Self.constantTimeEqual(Array(r.tokenHash.utf8), Array(tokenHash.utf8)) else {
            return .forbidden("wrong token for edge \(id)")
        }
        guard r.enabled else { return .forbidden("edge \(id) is disabled") }
        for claim in claims where !r.hostnames.contains(claim) {
            return .forbidden("edge \(id) does not serve \(claim)")
        }
        return .accepted(route)
    }

    /// Creates or replaces an edge: checked against memory (a hostname another edge serves is
    /// refused), written to the store (synchronously: the operator hears of a failure), then
    /// applied in memory.
    public func upsertEdge(_ record: EdgeRecord) throws(RegistryError) {
        try EdgeRecord.validate(record)
        try edgeDirectory.withLock { (d: inout EdgeDirectory) throws(RegistryError) in
            for h in record.hostnames {
                if let other = d.byHostname[h], other.id != record.id { throw .hostnameTaken(hostname: h, edge: other.id) }
            }
            do { try store?.applyNow([.upsertEdge(record)]) } catch { throw .storeFailed("\(error)") }
            d.insert(EdgeRoute(record))
        }
    }

    /// Puts an edge's row from the store (the feed, a resync, start-up) in memory, unless this
    /// instance wrote it later than `position`. Nil: deferred; false: refused (invalid, or a
    /// hostname another edge holds here).
    func applyEdge(_ record: EdgeRecord, unlessNewerThan position: Int64) -> Bool? {
        guard (try? EdgeRecord.validate(record)) != nil else { return false }
        return edgeDirectory.withLock { (d: inout EdgeDirectory) -> Bool? in
            if store?.hasNewerWrites(for: StoreRow(edge: record.id), than: position) == true { return nil }
            for h in record.hostnames {
                if let other = d.byHostname[h], other.id != record.id { return false }
            }
            if let current = d.byID[record.id]?.record, current == record { return true }  // our own write, read back
            d.insert(EdgeRoute(record))
            return true
        }
    }

    func removeEdgeInMemory(_ id: String, unlessNewerThan position: Int64) -> Bool {
        edgeDirectory.withLock { (d: inout EdgeDirectory) -> Bool in
            if store?.hasNewerWrites(for: StoreRow(edge: id), than: position) == true { return false }
            d.remove(id: id)
            return true
        }
    }

    /// Start-up: the stored edges in memory (the configuration's are upserted over them after).
    /// A tunnel this process was holding when it stopped is gone: its `tunnel_center` is cleared.
    public func loadEdges(_ records: [EdgeRecord], center: String, now: Int64) {
        for var r in records {
            let stale = r.tunnelCenter == center
            if stale {
                r.tunnelCenter = ""
                r.updatedAt = now
            }
            _ = applyEdge(r, unlessNewerThan: .max)
            // After the apply: a queued write counts as newer than any read, and would defer it.
            if stale { store?.enqueue(.upsertEdge(r)) }
        }
    }

    /// Records that `center` holds (or, `attached` false, no longer holds) a tunnel of edge `id`.
    /// A detach by a center that is not the holder changes nothing (another took over).
    public func edgeTunnel(id: String, center: String, attached: Bool, now: Int64) {
        edgeDirectory.withLock { d in
            guard var r = d.byID[id]?.record else { return }
            if attached {
                r.tunnelCenter = center
                r.tunnelSeenAt = now
            } else {
                guard r.tunnelCenter == center else { return }
                r.tunnelCenter = ""
            }
            r.updatedAt = now
            d.insert(EdgeRoute(r))
            // From a worker's loop: queued, never waited for. Every center learns who holds it.
            store?.enqueue(.upsertEdge(r))
        }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

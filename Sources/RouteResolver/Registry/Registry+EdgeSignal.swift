/// One direct-reachability probe of an edge's public address, as the agent's signal reports it
/// (`reachability.samples`: `{location, ok, latency_ms, at}`).
public struct EdgeProbe: Sendable, Equatable {
    public var location: String
    public var ok: Bool
    public var latencyMs: Int
    /// When the probe ran (ms since the epoch).
    public var at: Int64

    public init(location: String, ok: Bool, latencyMs: Int, at: Int64) {
        self.location = location
        self.ok = ok
        self.latencyMs = latencyMs
        self.at = at
    }
}

/// What a signal did: the record after it, and the mode it left if it flipped one.
public struct EdgeSignalResult: Sendable {
    public var record: EdgeRecord
    public var flippedFrom: EdgeMode?
}

/// The agents' signals and the operator's token and delete writes.
///
/// Mode rules (the seed's): a successful direct probe makes the edge `direct` at once (when it
/// has a public address to send clients to); `threshold` consecutive failed probes while a
/// tunnel is active make it `proxy`. Without a tunnel a failing edge stays as it is: nothing
/// would carry its traffic in proxy mode either.
extension Registry {
    public static let defaultFailedProbeThreshold = 3

    public func recordEdgeSignal(id: String, samples: [EdgeProbe], publicAddress: String?, tunnelActive: Bool,
                                 threshold: Int = Registry.defaultFailedProbeThreshold, now: Int64) throws(RegistryError) -> EdgeSignalResult {
        try edgeDirectory.withLock { (d: inout EdgeDirectory) throws(RegistryError) -> EdgeSignalResult in
            guard var r = d.byID[id]?.record else { throw .unknownEdge(id) }
            let before = r.mode
            if let publicAddress, publicAddress != r.publicAddress {
                var candidate = r
                candidate.publicAddress = publicAddress
                try EdgeRecord.validate(candidate)
                r.publicAddress = publicAddress
            }
            let active = tunnelActive || !r.tunnelCenter.isEmpty
            for probe in samples.sorted(by: { $0.at < $1.at }) {
                if probe.ok {
                    r.failedProbes = 0
                    if r.mode != .direct && !r.publicAddress.isEmpty {
                        r.mode = .direct
                        r.modeReason = "direct probe from \(probe.location) succeeded (\(probe.latencyMs) ms)"
                        r.modeChangedAt = now
                    }
                } else {
                    r.failedProbes += 1
                    if r.mode != .proxy && r.failedProbes >= threshold && active {
                        r.mode = .proxy
                        r.modeReason = "\(r.failedProbes) consecutive failed direct probes (last from \(probe.location)) with a tunnel active"
                        r.modeChangedAt = now
                    }
                }
            }
            r.updatedAt = now
            store?.enqueue(.upsertEdge(r))
            d.insert(EdgeRoute(r))
            guard r.mode != before else { return EdgeSignalResult(record: r, flippedFrom: nil) }
            if r.mode == .direct { d.flipsToDirect += 1 } else { d.flipsToProxy += 1 }
            return EdgeSignalResult(record: r, flippedFrom: before)
        }
    }

    /// Replaces an edge's token hash; its own tunnels stay (they proved the old token when they
    /// attached), the next attach needs the new one. Other edges are untouched.
    public func setEdgeToken(id: String, tokenHash: String, now: Int64) throws(RegistryError) {
        guard var r = edge(id: id)?.record else { throw .unknownEdge(id) }
        r.tokenHash = tokenHash
        r.updatedAt = now
        try upsertEdge(r)
    }

    /// Removes an edge: its hostnames are no longer routed (its open tunnels close on the
    /// engine's next look-up of them).
    public func deleteEdge(id: String) throws(RegistryError) {
        try edgeDirectory.withLock { (d: inout EdgeDirectory) throws(RegistryError) in
            guard d.byID[id] != nil else { throw .unknownEdge(id) }
            do { try store?.applyNow([.deleteEdge(id: id)]) } catch { throw .storeFailed("\(error)") }
            d.remove(id: id)
        }
    }

    /// Mode flips since start.
    public var edgeModeFlips: (toDirect: Int, toProxy: Int) {
        edgeDirectory.withLock { ($0.flipsToDirect, $0.flipsToProxy) }
    }
}

/// How the cluster serves an edge node: `direct` (it is reachable at its public address; a
/// request that still reaches the cluster gets a 307 there) or `proxy` (behind NAT: the cluster
/// carries its connections through the node's reverse tunnels). See docs/edge-tunnel.md.
public enum EdgeMode: String, Sendable, Equatable {
    case direct, proxy
}

/// An edge node (the seed's "Edge Cluster Dual Mode" node): the hostnames it serves, its token's
/// hash, its mode and which center holds its tunnel. Times are Unix milliseconds.
public struct EdgeRecord: Sendable, Equatable {
    /// Node-name rules: `[A-Za-z0-9._-]{1,64}`.
    public var id: String
    /// Exact names (`node1.edge.test`) or one leading wildcard label (`*.node1.edge.test`);
    /// lowercase DNS names, unique across edges.
    public var hostnames: [String]
    /// SHA-256 of the node's token, 64 lowercase hex digits; empty: no token (cannot attach).
    public var tokenHash: String
    public var mode: EdgeMode
    public var modeReason: String
    public var modeChangedAt: Int64
    /// `https://host[:port]` where a direct-mode node is reachable (the 307 target); may be empty.
    public var publicAddress: String
    /// Consecutive failed direct probes (the mode rule counts them).
    public var failedProbes: Int
    /// The center holding the node's tunnel (a center node name); empty: none.
    public var tunnelCenter: String
    /// When that center last confirmed the tunnel (attach, or its periodic refresh).
    public var tunnelSeenAt: Int64
    /// A disabled edge is neither routed nor allowed to attach.
    public var enabled: Bool

    /// How often a center holding a tunnel refreshes `tunnelSeenAt`, and after how long without
    /// a refresh other centers stop believing the claim (a center killed without detaching).
    public static let tunnelRefreshMs: Int64 = 10_000
    public static let tunnelStaleMs: Int64 = 35_000

    /// Some center holds a tunnel of this edge, and said so recently.
    public func tunnelIsFresh(now: Int64) -> Bool {
        !tunnelCenter.isEmpty && now - tunnelSeenAt <= Self.tunnelStaleMs
    }
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, hostnames: [String], tokenHash: String = "", mode: EdgeMode = .direct,
                modeReason: String = "created", modeChangedAt: Int64 = 0, publicAddress: String = "",
                failedProbes: Int = 0, tunnelCenter: String = "", tunnelSeenAt: Int64 = 0,
                enabled: Bool = true, createdAt: Int64 = 0, updatedAt: Int64 = 0) {
        self.id = id
        self.hostnames = hostnames
        self.tokenHash = tokenHash
        self.mode = mode
        self.modeReason = modeReason
        self.modeChangedAt = modeChangedAt
        self.publicAddress = publicAddress
        self.failedProbes = failedProbes
        self.tunnelCenter = tunnelCenter
        self.tunnelSeenAt = tunnelSeenAt
        self.enabled = enabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Refuses a record the registry cannot route by, with a short reason.
    public static func validate(_ r: EdgeRecord) throws(RegistryError) {
        guard PodRecord.isNodeName(r.id) else { throw .invalidEdge("edge id must be 1-64 characters of [A-Za-z0-9._-]: \(r.id)") }
        guard !r.hostnames.isEmpty, r.hostnames.count <= 64 else { throw .invalidEdge("\(r.id): 1-64 hostnames") }
        for h in r.hostnames where !isEdgeHostname(h) {
            throw .invalidEdge("\(r.id): hostname must be a lowercase DNS name, optionally starting with '*.': \(h)")
        }
        guard r.tokenHash.isEmpty || (r.tokenHash.utf8.count == 64 && r.tokenHash.utf8.allSatisfy(isLowerHex)) else {
            throw .invalidEdge("\(r.id): token_hash must be 64 lowercase hex digits")
        }
        guard r.publicAddress.isEmpty || EdgeRoute.redirectBase(r.publicAddress) != nil else {
            throw .invalidEdge("\(r.id): public_address must be http(s)://host[:port] without a path")
        }
        guard r.tunnelCenter.isEmpty || PodRecord.isNodeName(r.tunnelCenter) else {
            throw .invalidEdge("\(r.id): tunnel_center must be a node name")
        }
    }

    /// A lowercase DNS name (labels of `[a-z0-9-]`, 1-63 bytes, not starting or ending with
    /// '-'; 253 bytes at most), or `*.` followed by one with at least two labels.
    public static func isEdgeHostname(_ name: String) -> Bool {
        var rest = Substring(name)
        if rest.hasPrefix("*.") {
            rest = rest.dropFirst(2)
            guard rest.contains(".") else { return false }
        }
        guard (1...253).contains(rest.utf8.count) else { return false }
        for label in rest.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = label.utf8
            guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-"),
                  bytes.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else { return false }
        }
        return true
    }

    static func isLowerHex(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) }
}

/// An edge as a routing decision reads it: immutable, shared by every worker until the record
/// changes (then replaced whole).
public final class EdgeRoute: Sendable {
    public let record: EdgeRecord
    /// `public_address` without a trailing slash, as bytes: a 307's Location is this plus the
    /// request's path and query. Empty: no public address.
    public let redirectBase: [UInt8]

    public init(_ record: EdgeRecord) {
        self.record = record
        redirectBase = Self.redirectBase(record.publicAddress) ?? []
    }

    public var id: String { record.id }
    public var mode: EdgeMode { record.mode }

    /// `http(s)://host[:port]` (a trailing slash allowed) as bytes without the slash; nil when
    /// it is not of that shape (a path, a query, spaces or control bytes).
    static func redirectBase(_ address: String) -> [UInt8]? {
        var bytes = Array(address.utf8)
        if bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
        let rest: ArraySlice<UInt8>
        if bytes.starts(with: "https://".utf8) { rest = bytes.dropFirst(8) } else if bytes.starts(with: "http://".utf8) { rest = bytes.dropFirst(7) } else { return nil }
        guard !rest.isEmpty, rest.count <= 260,
              rest.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "@") })
        else { return nil }
        return bytes
    }
}

/// Every edge, by id and by hostname. Immutable; a change builds a new one.
struct EdgeDirectory: Sendable {
    var byID: [String: EdgeRoute] = [:]
    var byHostname: [String: EdgeRoute] = [:]
    /// Mode flips since start, to direct and to proxy (metrics).
    var flipsToDirect = 0
    var flipsToProxy = 0

    init(_ records: [EdgeRecord]) {
        for r in records { insert(EdgeRoute(r)) }
    }

    mutating func insert(_ route: EdgeRoute) {
        if let old = byID[route.id] { for h in old.record.hostnames where byHostname[h] === old { byHostname[h] = nil } }
        byID[route.id] = route
        for h in route.record.hostnames { byHostname[h] = route }
    }

    mutating func remove(id: String) {
        guard let old = byID.removeValue(forKey: id) else { return }
        for h in old.record.hostnames where byHostname[h] === old { byHostname[h] = nil }
    }

    /// The edge serving `host` (lowercase, no port, no trailing dot): its exact name, else
    /// `*.` + the host without its first label.
    func route(forHost host: String) -> EdgeRoute? {
        if let r = byHostname[host] { return r }
        guard let dot = host.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        return byHostname["*" + host[dot...]]
    }
}

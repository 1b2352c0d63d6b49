import IOCore

/// What `switchyard edge-agent` runs with (docs/edge-tunnel.md, "The agent"), validated by the
/// command line before the agent starts: the agent itself trusts these values.
public struct EdgeAgentSettings: Sendable {
    /// The cluster's tunnel listener: a host name or numeric address, resolved at each dial.
    public var clusterHost: String
    public var clusterPort: UInt16
    /// This node's edge id (X-Switchyard-Edge-Node).
    public var nodeID: String
    /// The edge token (Authorization: Bearer), already read from its file and trimmed.
    public var token: String
    /// Where `switchyard-tls` streams go (the node's TLS entrypoint).
    public var forward: SocketAddress
    /// Where `switchyard-http` streams go; nil answers them 404.
    public var httpForward: SocketAddress?
    /// Parallel tunnels kept open (1...16).
    public var tunnels: Int
    /// Trusted roots for the cluster's certificate; nil: the system's.
    public var caFile: String?
    /// The name the cluster's certificate must carry (and the SNI sent).
    public var serverName: String
    /// Names claimed at attach (X-Switchyard-Edge-Hostnames); empty: none claimed.
    public var hostnames: [String]

    public init(clusterHost: String, clusterPort: UInt16, nodeID: String, token: String, forward: SocketAddress,
                httpForward: SocketAddress?, tunnels: Int, caFile: String?, serverName: String, hostnames: [String]) {
        self.clusterHost = clusterHost
        self.clusterPort = clusterPort
        self.nodeID = nodeID
        self.token = token
        self.forward = forward
        self.httpForward = httpForward
        self.tunnels = tunnels
        self.caFile = caFile
        self.serverName = serverName
        self.hostnames = hostnames
    }

    /// "host:port" as the logs print it ("[v6]:port" for an IPv6 literal).
    public var clusterText: String {
        clusterHost.contains(":") ? "[\(clusterHost)]:\(clusterPort)" : "\(clusterHost):\(clusterPort)"
    }

    /// Splits "host:port" or "[v6]:port" (a host name allowed: resolved at each dial; port
    /// 1...65535); nil when malformed.
    public static func splitHostPort(_ text: String) -> (host: String, port: UInt16)? {
        guard let (host, port) = SocketAddress.splitHostPort(text), !host.isEmpty, port > 0,
              !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        return (String(host), port)
    }
}

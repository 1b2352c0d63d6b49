import IOCore

/// The admin listener's settings (`admin:` in the configuration): where it listens, who may
/// talk to it, and the secrets it checks. The engine never sees them.
public struct AdminConfig: Sendable {
    /// nil: no admin listener.
    public var address: SocketAddress? = SocketAddress("127.0.0.1:9090")
    /// The operator token (`X-Admin-Token`); empty: read or generate `tokenFile`.
    public var token = ""
    public var tokenFile = "var/admin.token"
    /// Source addresses allowed to talk to the admin listener (CIDRs); empty: any.
    public var allow: [String] = []
    /// Per pool: the shared secret nodes send as `X-Node-Token` with heartbeats and ports.
    public var nodeTokens: [String: String] = [:]
    /// Answer the API server's old `.../internal/gateway/node?userId=` with `X-WS-Node`.
    public var compatNodeEndpoint = true
    /// The pool that endpoint looks users up in.
    public var compatPool = "workspace"
    /// The pool the seed's runtime-node heartbeats (`/internal/runtime-nodes/heartbeat`) go to.
    public var runtimePool = "runtime"
    public init() {}
}

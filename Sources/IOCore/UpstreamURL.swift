
/// An `http://host[:port]` base URL of a node (its preview entry or its API), reduced to the
/// socket address the gateway connects to. Only numeric hosts (and `localhost`): names would
/// need DNS, which must never run on an event loop. A path other than "/" is refused: the request
/// path is forwarded as it came.
public struct UpstreamURL: Sendable, Equatable {
    public let address: SocketAddress

    public init?(_ text: String) {
        guard text.hasPrefix("http://") else { return nil }
        var rest = text.dropFirst(7)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?") else { return nil }
        let hostPort: String
        if rest.hasPrefix("[") {
            hostPort = rest.contains("]:") ? String(rest) : "\(rest):80"
        } else {
            hostPort = rest.contains(":") ? String(rest) : "\(rest):80"
        }
        guard let a = SocketAddress(hostPort) else { return nil }
        address = a
    }
}

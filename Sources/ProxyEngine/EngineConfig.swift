import HTTP1Codec
import IOCore
import RouteResolver

/// Everything the engine needs, already validated and resolved (addresses parsed, durations in
/// milliseconds). Built by the executable from YAML; immutable and shared by all workers.
public struct EngineConfig: Sendable {
    /// The name a gateway that is not a center holds edge tunnels under in the registry.
    public static let localCenter = "local"

    public struct Listener: Sendable {
        /// TLS on this listener: certificates from a directory of PEM pairs, picked by SNI.
        public struct TLS: Sendable, Equatable {
            public var certificates: String
            /// The certificate for clients without SNI or with an unknown name (its file name
            /// without extension); nil: the first file alphabetically.
            public var defaultCertificate: String?
            /// `Strict-Transport-Security: max-age=<seconds>` on every response; 0: none.
            public var hstsSeconds: UInt64 = 0
            public var sessionTickets = true
            /// How often session-ticket keys rotate (ms).
            public var ticketRotation: UInt64 = 12 * 3_600_000
            public init(certificates: String) { self.certificates = certificates }
        }
        public var name: String
        public var address: SocketAddress
        public var backlog: Int32
        public var tls: TLS?
        /// A plain listener that answers every request with 308 to `https://host[:port]/...`
        /// (port omitted when 443).
        public var redirectHTTPSPort: UInt16?
        /// HTTP/2: offered by ALPN on a TLS listener, accepted with prior knowledge (h2c) on a
        /// plain one.
        public var http2 = true
        /// A cluster listener: where other centers forward pod requests. Only here is a hop
        /// header trusted, and only with the cluster secret.
        public var cluster = false
        /// Edge agents attach their tunnels here (`/.edge/attach`, docs/edge-tunnel.md). TLS only.
        public var edgeTunnel = false
        public init(name: String, address: SocketAddress, backlog: Int32 = 4096) {
            self.name = name
            self.address = address
            self.backlog = backlog
        }
    }

    public struct Limits: Sendable {
        public var maxRequestLine = 8192
        public var maxHeaderBytes = 32768
        public var maxHeaders = 100
        public init() {}
    }

    /// All in milliseconds.
    public struct Timeouts: Sendable {
        public var clientHeader: UInt64 = 10_000
        public var clientBody: UInt64 = 60_000
        public var clientIdle: UInt64 = 75_000
        public var upstreamConnect: UInt64 = 5_000
        public var upstreamFirstByte: UInt64 = 60_000
        public var upstreamRead: UInt64 = 60_000
        public var send: UInt64 = 60_000
        public var drain: UInt64 = 30_000
        public init() {}
    }

    public struct UpstreamPool: Sendable {
        public var idlePerAddress = 64
        public var idleTimeout: UInt64 = 60_000
        public init() {}
    }

    /// Sticky routing: where the registry lives, pool settings, nodes declared in configuration.
    /// How a pool's nodes are asked for a container's host port (the node API the node nginx
    /// uses today): `GET <api_base_url><path>?<keyParameter>=<key>` with `X-WS-Token`, answered
    /// in the `X-WS-Port` response header.
    public struct PortLookup: Sendable, Equatable {
        public var path = "/api/fun-ai/workspace/internal/nginx/port"
        public var keyParameter = "userId"
        public var token = ""
        public init() {}
    }

    public struct Sticky: Sendable {
        /// A SQLite file path, or a PostgreSQL URL (`postgres://...`).
        public var database = "var/switchyard.db"
        /// A file holding the PostgreSQL password (else `SWITCHYARD_REGISTRY_PASSWORD`, else the URL's).
        public var databasePasswordFile: String?
        public var pools: [String: PoolSettings] = [:]
        public var portLookups: [String: PortLookup] = [:]
        public var nodes: [NodeRecord] = []
        /// Edge nodes declared in configuration (their tunnels attach at `edge_tunnel` listeners).
        public var edges: [EdgeRecord] = []
        public init() {}
    }

    /// Byte tunnels (after an upgrade's 101).
    public struct Tunnels: Sendable {
        /// Move bytes with splice(2) through pooled pipes; off: through pooled buffers.
        public var splice = true
        /// TCP keepalive on both sockets of a tunnel (seconds; idle 0: off).
        public var keepaliveIdle: Int32 = 60
        public var keepaliveInterval: Int32 = 10
        public var keepaliveCount: Int32 = 6
        public init() {}
    }

    /// HTTP/2 downstream (nghttp2). Limits that protect the gateway from one connection.
    public struct HTTP2: Sendable {
        /// SETTINGS_MAX_CONCURRENT_STREAMS; a stream over it is refused (RST_STREAM REFUSED_STREAM).
        public var maxConcurrentStreams: UInt32 = 128
        /// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2 size: name + value + 32 per field);
        /// 0: `limits.max_header_bytes`. A request over it gets 431.
        public var maxHeaderListSize: UInt32 = 0
        /// SETTINGS_HEADER_TABLE_SIZE: the HPACK table the client may make us keep, and the most
        /// our encoder uses.
        public var headerTableSize: UInt32 = 4096
        /// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes buffered per stream (at most 65535,
        /// the buffer one stream holds).
        public var initialWindowSize: UInt32 = 65535
        /// The connection's receive window (all streams together).
        public var connectionWindowSize: UInt32 = 1 << 20
        /// Incoming RST_STREAM token bucket (rapid reset, CVE-2023-44487): `resetBurst` tokens,
        /// `resetRate` more per second; out of tokens: GOAWAY.
        public var resetBurst: UInt64 = 1000
        public var resetRate: UInt64 = 33
        /// CONTINUATION frames allowed after one HEADERS (CVE-2024-27316); over: GOAWAY.
        public var maxContinuations = 8
        public init() {}
    }

    public enum LogTarget: Sendable, Equatable {
        case off, stdout, stderr
        case file(String)
    }

    public var workers: Int
    public var listeners: [Listener]
    public var limits = Limits()
    public var timeouts = Timeouts()
    public var upstreamPool = UpstreamPool()
    public var accessLog: LogTarget = .stdout
    public var errorLog: LogTarget = .stderr
    public var sticky = Sticky()
    public var tunnels = Tunnels()
    public var http2 = HTTP2()
    /// The registry keyed routes resolve against; opened by the caller (it owns the store).
    public var registry: Registry?
    /// This center's identity for pod routes (set by the caller once the node id is known).
    public var cluster: ClusterIdentity?
    public var routes: RouteTable
    /// Every distinct upstream address of every route; pools are kept per entry.
    public var upstreamAddresses: [SocketAddress]
    /// For each route, the indices of its upstreams in `upstreamAddresses` (empty for keyed routes).
    public var routeUpstreams: [[Int]]
    /// For each route, how long one of its tunnels may stay silent (ms; 0: no limit, the default:
    /// a dev's HMR socket idles for hours and must not be cut).
    public var routeTunnelIdle: [UInt64]

    public init(workers: Int, listeners: [Listener], routes: RouteTable,
                upstreamAddresses: [SocketAddress], routeUpstreams: [[Int]]) {
        self.workers = workers
        self.listeners = listeners
        self.routes = routes
        self.upstreamAddresses = upstreamAddresses
        self.routeUpstreams = routeUpstreams
        routeTunnelIdle = Array(repeating: 0, count: routes.routes.count)
    }
}

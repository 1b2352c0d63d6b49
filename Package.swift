// swift-tools-version: 6.2
import PackageDescription

// Dependencies point one way (scripts/check-layers.py checks them): switchyard -> AdminPlane,
// ProxyEngine, RegistryStore -> RouteResolver -> HTTP1Codec; C targets at the bottom.
// ProxyEngine is built without Foundation (see STYLE.md, point 9).
/// Release settings of every module on a request's path (IOCore, HTTP1Codec, RouteResolver,
/// EdgeTunnel, ProxyEngine):
/// - cross-module optimization: function bodies are available to callers in other modules, so
///   a call across a module boundary inlines as it did when the code lived in one module;
/// - no dynamic exclusivity checks: they cost ~50% more instructions per request
///   (bench/callgrind.sh: 16,712 vs 11,109; 9,586 vs 6,945 when the codec first moved out of
///   ProxyEngine without this flag). Debug builds, where every test runs, keep them, so an
///   exclusivity violation still traps in `make test`.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"],
                                            .when(configuration: .release))]

let package = Package(
    name: "Switchyard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .target(name: "CLinux"),
        // The one door to the kernel (Sys), socket addresses, buffers, timers. Built with
        // cross-module optimization: its small functions sit on every request's path and must
        // inline into ProxyEngine as they did when they lived there.
        .target(name: "IOCore", dependencies: ["CLinux"], swiftSettings: hotPath),
        // The HTTP/1 codec: request and response heads as offsets, body framing, chunked
        // decoding. Pure (no sockets); shared by ProxyEngine, AdminPlane and route decisions.
        .target(name: "HTTP1Codec", swiftSettings: hotPath),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // TLS termination: certificate store, per-worker SSL_CTX, SNI/ALPN, session tickets.
        .target(name: "TLSTerminator", dependencies: ["COpenSSL", "IOCore"]),
        // Pure logic: routes, keys, the registry in memory, and the one RouteDecision per request.
        // No sockets, no database.
        .target(name: "RouteResolver", dependencies: ["HTTP1Codec"], swiftSettings: hotPath),
        // Where the registry is persisted: the store protocol's implementations, SQLite (the
        // embedded default) and PostgreSQL (shared by several gateways, LISTEN/NOTIFY feed).
        .target(name: "RegistryStore", dependencies: ["RouteResolver", "CSQLite", "CLibpq"]),
        .target(
            name: "ProxyEngine",
            dependencies: ["CLinux", "CNghttp2", "IOCore", "HTTP1Codec", "RouteResolver", "TLSTerminator", "EdgeTunnel", "H2Wire"],
            swiftSettings: hotPath
        ),
        // The admin listener: registry API, heartbeats, explain, metrics. Off the hot path, so
        // Foundation is fine here.
        .target(name: "AdminPlane", dependencies: ["IOCore", "HTTP1Codec", "RouteResolver", "TLSTerminator"]),
        // Issue 15's edge tunnels: the ClientHello peek (SNI and ALPN before OpenSSL; pure, on
        // every TLS connection's path, hence hotPath) and the edge agent (`Agent/`: the node's
        // side of the reverse tunnels, its own epoll loop, nghttp2 server sessions, TLS client).
        // nghttp2's outgoing frames into pooled buffers, for every nghttp2 session of the project.
        .target(name: "H2Wire", dependencies: ["CNghttp2", "IOCore"], swiftSettings: hotPath),
        .target(name: "EdgeTunnel", dependencies: ["CLinux", "CNghttp2", "IOCore", "TLSTerminator", "H2Wire"], swiftSettings: hotPath),
        .executableTarget(
            name: "switchyard",
            dependencies: [
                "ProxyEngine", "RouteResolver", "RegistryStore", "AdminPlane", "EdgeTunnel", "CLinux", "IOCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "ProxyEngineTests", dependencies: ["ProxyEngine", "IOCore", "HTTP1Codec"]),
        .testTarget(name: "RouteResolverTests", dependencies: ["RouteResolver", "HTTP1Codec"]),
        // A real PostgreSQL server per test (initdb, pg_ctl), for the store's and the end-to-end tests.
        .target(name: "PostgresTestServer", path: "Tests/PostgresTestServer"),
        .testTarget(name: "RegistryStoreTests", dependencies: ["RegistryStore", "RouteResolver", "CSQLite", "CLibpq", "PostgresTestServer"]),
        .testTarget(name: "EdgeTunnelTests", dependencies: ["EdgeTunnel"]),
        .testTarget(name: "TLSTerminatorTests", dependencies: ["TLSTerminator", "COpenSSL"]),
        .testTarget(name: "SwitchyardTests", dependencies: ["switchyard"]),
        // End-to-end: the built binary with curl, a Python upstream (peers/) and slowhttptest.
        .testTarget(name: "IntegrationTests", dependencies: ["PostgresTestServer"], exclude: ["peers"]),
    ]
)

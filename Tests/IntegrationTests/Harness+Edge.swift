// The edge tunnel tests' side of the harness: a cluster gateway with a TLS listener that edge
// agents attach to (and that passes proxy-mode edges' TLS through by SNI), a plain listener with
// an `edges` route, an admin listener, and edges declared in its YAML; a TLS origin (upstream.py
// with the `edge-origin` certificate of the test PKI) and a plain one for --http-forward; and
// `switchyard edge-agent` processes started against it.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

struct EdgeWorld {
    let scope: Scope
    let gateway: Gateway
    /// TLS: workspaces (default certificate `default`, default.test), edge passthrough, agents attach.
    let tlsPort: Int
    /// Plain HTTP with the `edges` route for `*.edge.test`.
    let plainPort: Int
    let adminPort: Int
    static let adminToken = "admin-token-edge-0123456789abcdef"
    /// node id → its token (node1, node2 in proxy mode; direct1 in direct mode).
    let tokens: [String: String]
    let tokenFiles: [String: String]
    /// The origin behind node1: TLS with node1.edge.test's own certificate.
    let originPort: Int
    /// Plain HTTP behind node1 (--http-forward).
    let originHTTPPort: Int
    /// A workspace upstream for everything that is not an edge.
    let workspacePort: Int

    func admin() -> AdminClient { AdminClient(port: adminPort, token: Self.adminToken) }

    /// curl options resolving `name` to the TLS listener, trusting the test root.
    func tlsCurl(_ name: String) throws -> [String] {
        ["--http1.1", "--cacert", try ListenerPKI.shared().rootCertificate, "--resolve", "\(name):\(tlsPort):127.0.0.1"]
    }

    /// Starts `switchyard edge-agent` for `node` (its own token unless `token` is given).
    func startAgent(_ node: String = "node1", name: String? = nil, tunnels: Int = 2, token: String? = nil,
                    hostnames: [String]? = nil) throws -> Child {
        var tokenFile = tokenFiles[node] ?? scope.path("none.token")
        if let token { tokenFile = try scope.write("\(node)-\(UUID().uuidString.prefix(4)).token", token + "\n") }
        var args = ["edge-agent", "--cluster", "127.0.0.1:\(tlsPort)", "--node-id", node, "--token-file", tokenFile,
                    "--forward", "127.0.0.1:\(originPort)", "--http-forward", "127.0.0.1:\(originHTTPPort)",
                    "--tunnels", String(tunnels), "--ca-file", try ListenerPKI.shared().rootCertificate,
                    "--server-name", "default.test"]
        if let hostnames { args += ["--hostnames", hostnames.joined(separator: ",")] }
        return try scope.spawn(name ?? "agent-\(node)", try scope.gatewayBinary(), args)
    }

    /// The edge as the admin API describes it.
    func edge(_ id: String) throws -> AJSON {
        let r = try admin().get("/admin/edges/\(id)")
        guard r.status == 200 else { throw HarnessError("GET /admin/edges/\(id): \(r.status) \(r.text)") }
        return AJSON(data: Data(r.body))
    }

    /// Waits until the edge has (or no longer has) a tunnel on this gateway.
    func waitTunnel(_ id: String, attached: Bool, timeout: Double = 10) throws {
        let ok = try eventually(timeout) { try edge(id)["tunnel_center"].isNull != attached }
        if !ok {
            throw HarnessError("edge \(id) tunnel attached=\(!attached) after \(timeout) s; gateway stderr:\n\(gateway.child.stderr.suffix(3000))")
        }
    }

    /// `POST /api/signal` as an edge agent sends it.
    func signal(_ id: String, token: String? = nil, ok: [Bool], publicAddress: String? = nil, tunnelActive: Bool) throws -> Reply {
        let samples = ok.enumerated().map { i, v in "{\"location\": \"probe-\(i)\", \"ok\": \(v), \"latency_ms\": \(v ? 12 : 0), \"at\": \(1_700_000_000_000 + i)}" }
        var body = "{\"node_id\": \"\(id)\", \"reachability\": {\"samples\": [\(samples.joined(separator: ", "))]}, \"tunnel\": {\"active\": \(tunnelActive)}"
        if let publicAddress { body += ", \"public_address\": \"\(publicAddress)\"" }
        body += "}"
        return try admin().call("POST", "/api/signal", body, auth: .none,
                                headers: ["Authorization: Bearer \(token ?? tokens[id] ?? "")"])
    }
}

extension Scope {
    /// A cluster gateway with three edges (see `EdgeWorld`). `center`: it is that center node
    /// (a cluster section and listener, the registry file shared with `sharing`, whose tokens,
    /// origins and database it reuses).
    func startEdgeWorld(workers: Int = 2, center: String? = nil, sharing other: EdgeWorld? = nil,
                        name: String = "gateway") throws -> EdgeWorld {
        let pki = try ListenerPKI.shared()
        let certs = path("certs")
        try pki.install(["default"], into: certs)
        guard let python = Paths.which("python3") else { throw HarnessError("python3 not found on PATH") }
        var tokens: [String: String] = [:], files: [String: String] = [:]
        let originPort: Int, originHTTPPort: Int, workspacePort: Int
        if let other {
            (tokens, files) = (other.tokens, other.tokenFiles)
            (originPort, originHTTPPort, workspacePort) = (other.originPort, other.originHTTPPort, other.workspacePort)
        } else {
            let origin = try startPeer("upstream.py", python: python,
                                       ["--tls-cert", pki.pool + "/edge-origin.crt", "--tls-key", pki.pool + "/edge-origin.key", "0"],
                                       name: "origin-tls") { portList($0, count: 1) }
            let plain = try startPeer("upstream.py", python: python, ["0", "0"], name: "origin-plain") { portList($0, count: 2) }
            for id in ["node1", "node2", "direct1"] {
                tokens[id] = "edge-token-\(id)-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                files[id] = try write("\(id).token", tokens[id]! + "\n")
            }
            (originPort, originHTTPPort, workspacePort) = (origin.ready[0], plain.ready[0], plain.ready[1])
        }
        let tls = try Ports.free(), http = try Ports.free(), admin = try Ports.free()
        var clusterYAML = "", clusterListener = ""
        if let center {
            let internalPort = try Ports.free()
            let secret = try write("cluster.secret", "edge-test-cluster-secret-0123456789\n")
            clusterListener = """
              - name: internal
                address: 127.0.0.1:\(internalPort)
                cluster: true

            """
            clusterYAML = """
            cluster: {node_id: \(center), internal_address: "127.0.0.1:\(internalPort)", public_address: "http://127.0.0.1:\(http)", secret_file: \(secret)}
            pools: {center: {heartbeat_threshold: 3s}}

            """
        }
        let yaml = """
        workers: \(workers)
        listeners:
          - name: secure
            address: 127.0.0.1:\(tls)
            tls: {certificates: \(certs), default_certificate: default}
            edge_tunnel: true
          - name: plain
            address: 127.0.0.1:\(http)
        \(clusterListener)logging: {access: stdout, error: stderr}
        admin: {address: 127.0.0.1:\(admin), token: "\(EdgeWorld.adminToken)"}
        registry: {database: "\(path("registry.db"))"}
        \(clusterYAML)edges:
          - {id: node1, hostnames: [node1.edge.test, "*.node1.edge.test"], token_file: \(files["node1"]!)}
          - {id: node2, hostnames: [node2.edge.test], token_file: \(files["node2"]!)}
          - {id: direct1, hostnames: [direct1.edge.test], token_file: \(files["direct1"]!), mode: direct, public_address: "https://127.0.0.9:8443"}
        routes:
          - {name: edges, host: "*.edge.test", edges: true}
          - {name: workspace, upstreams: ["127.0.0.1:\(workspacePort)"]}

        """
        let gw = try startGateway(yaml: yaml, ports: [tls, http, admin], name: name)
        return EdgeWorld(scope: self, gateway: gw, tlsPort: tls, plainPort: http, adminPort: admin, tokens: tokens,
                         tokenFiles: files, originPort: originPort, originHTTPPort: originHTTPPort, workspacePort: workspacePort)
    }
}

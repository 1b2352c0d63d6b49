import Foundation
import Testing
@testable import switchyard
import ProxyEngine
import RouteResolver

/// The `cluster` section, cluster listeners and pod routes: what is read, what is refused (with
/// the key named), and the node id `auto` kept in its file.
@Suite("Config loading: center nodes")
struct ClusterConfigTests {
    static let base = """
    listeners:
      - address: 127.0.0.1:8080
      - name: internal
        address: 127.0.0.1:8081
        cluster: true
    routes:
      - name: pods
        pods: {key: path}
        upstreams: ["127.0.0.1:3000"]
    """

    func error(_ yaml: String) -> ConfigError? {
        do { _ = try ConfigLoader.parse(yaml); return nil } catch { return error }
    }

    @Test func everyClusterKeyIsRead() throws {
        let c = try ConfigLoader.parse(Self.base + """

        cluster:
          node_id: center-a
          node_id_file: /tmp/x/node-id
          pool: centers
          internal_address: 10.0.0.5:8081
          public_address: https://pods.example.com
          secret_file: /etc/switchyard/cluster-secret
          max_hops: 2
          heartbeat_interval: 5s
        pools:
          centers: {heartbeat_threshold: 30s}
        """)
        #expect(c.cluster == ClusterSettings(nodeID: "center-a", nodeIDFile: "/tmp/x/node-id", pool: "centers",
                                             internalAddress: "10.0.0.5:8081", publicAddress: "https://pods.example.com",
                                             secretFile: "/etc/switchyard/cluster-secret", maxHops: 2, heartbeatInterval: 5000))
        #expect(c.listeners.map(\.cluster) == [false, true])
        guard case .pods(let t) = c.routes.routes[0].target else { Issue.record("\(c.routes.routes[0].target)"); return }
        #expect(t.source == .path && t.upstreams == ["127.0.0.1:3000"] && t.reserved.count == PodTarget.defaultReserved.count)
        #expect(c.routeUpstreams == [[0]])
    }

    @Test func theCenterExampleIsValid() throws {
        let path = #filePath.replacingOccurrences(of: "Tests/SwitchyardTests/ClusterConfigTests.swift", with: "config/center.yaml")
        let c = try ConfigLoader.load(path: path)
        #expect(c.cluster?.nodeID == "auto" && c.listeners.map(\.cluster) == [false, true])
    }

    @Test func hostKeysAndReservedPaths() throws {
        let c = try ConfigLoader.parse("""
        listeners:
          - address: 127.0.0.1:8080
            cluster: true
        routes:
          - host: "*.pods.example.com"
            pods: {key: host, base_domain: Pods.Example.com, reserved: [".well-known", "static"]}
            upstreams: ["127.0.0.1:3000"]
        cluster: {node_id: c1, secret_file: s}
        """)
        guard case .pods(let t) = c.routes.routes[0].target else { Issue.record("not pods"); return }
        #expect(t.baseDomain == "pods.example.com" && t.reserved == [Array(".well-known".utf8), Array("static".utf8)])
    }

    @Test func podRoutesNeedTheirParts() {
        #expect(error(Self.base)?.key == "routes[0].pods")
        #expect(error(Self.base + "\ncluster: {node_id: a}")?.key == "cluster.secret_file")
        #expect(error(Self.base.replacingOccurrences(of: "    cluster: true\n", with: "") + "\ncluster: {node_id: a, secret_file: s}")?.key == "listeners")
        #expect(error(Self.base + "\ncluster: {node_id: a/b, secret_file: s}")?.key == "cluster.node_id")
        #expect(error(Self.base + "\ncluster: {secret_file: s, max_hops: 9}")?.key == "cluster.max_hops")
        #expect(error(Self.base + "\ncluster: {secret_file: s, internal_address: pods.example:80}")?.key == "cluster.internal_address")
        #expect(error(Self.base + "\ncluster: {secret_file: s, public_address: pods.example}")?.key == "cluster.public_address")
        #expect(error(Self.base + "\ncluster: {secret_file: s, heartbeat_interval: 40s}")?.key == "cluster.heartbeat_interval")
        #expect(error(Self.base + "\ncluster: {secret_file: s, typo: 1}")?.key == "cluster.typo")
        #expect(error(Self.base + "\ncluster: {secret_file: s}\npools:\n  center: {node_token: abcdefghijklmnop0123}")?.key
                == "pools.center.node_token")
        #expect(error(Self.base.replacingOccurrences(of: "{key: path}", with: "{key: host}") + "\ncluster: {secret_file: s}")?.key
                == "routes[0].pods.base_domain")
        #expect(error(Self.base.replacingOccurrences(of: "{key: path}", with: "{key: cookie}") + "\ncluster: {secret_file: s}")?.key
                == "routes[0].pods.key")
        #expect(error(Self.base.replacingOccurrences(of: "{key: path}", with: "{reserved: [\"a/b\"]}") + "\ncluster: {secret_file: s}")?.key
                == "routes[0].pods.reserved[0]")
    }

    @Test func autoNodeIDIsKeptInItsFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-node-id-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var s = ClusterSettings()
        s.nodeIDFile = dir + "/var/node-id"
        let first = try CenterNode.nodeID(s)
        #expect(first.hasPrefix("center-") && ConfigLoader.isName(first))
        #expect(try CenterNode.nodeID(s) == first)
        try "bad id!\n".write(toFile: s.nodeIDFile, atomically: true, encoding: .utf8)
        #expect(throws: CenterNode.Failure.self) { try CenterNode.nodeID(s) }
    }

    @Test func theSecretIsCheckedAtStart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-secret-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try ConfigLoader.parse(Self.base + "\ncluster: {node_id: a, secret_file: \(dir)/s}")
        try "short\n".write(toFile: dir + "/s", atomically: true, encoding: .utf8)
        #expect(throws: CenterNode.Failure.self) { try CenterNode(c.cluster!, listeners: c.listeners, pools: [:]) }
        try "0123456789abcdef0123\n".write(toFile: dir + "/s", atomically: true, encoding: .utf8)
        let center = try CenterNode(c.cluster!, listeners: c.listeners, pools: [:])
        #expect(center.identity.secret == Array("0123456789abcdef0123".utf8) && center.internalAddress == "127.0.0.1:8081")
        #expect(center.identity.clusterListeners == [false, true] && center.publicAddress == "http://127.0.0.1:8081")
    }
}

// Center nodes (issue 14) for the end-to-end tests: a pod server per center (peers/podserver.py),
// the center's YAML (a public and a cluster listener, the shared PostgreSQL registry, the
// cluster section, one pod route to its own pod server), three centers on one database, and a
// minimal blocking WebSocket client for the pods' terminals.

import Foundation
import PostgresTestServer
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Pod servers

/// A running podserver.py: answers every request with who it is (`server`) and the hop and
/// cluster headers it received.
struct PodServer {
    let child: Child
    let port: Int
    /// "A", "B", "C": what its answers name in `server` and `X-Pod-Server`.
    let name: String

    var address: String { "127.0.0.1:\(port)" }

    /// Its counters (asked directly, not through a gateway): total, pods {segment: count},
    /// slow_active, slow_started, terminals_open, terminals_opened.
    func stats() throws -> AJSON {
        let r = try HTTPClient(port: port).send("GET", "/-/stats")
        guard r.status == 200 else { throw HarnessError("pod server \(name) stats: \(r)") }
        return r.json
    }

    /// Requests this pod server received for `pod` (the first path segment).
    func count(_ pod: String) throws -> Int { try stats()["pods"][pod].int ?? 0 }
}

extension Scope {
    /// podserver.py is stdlib only: the system python3 runs it (no venv needed).
    func startPodServer(name: String) throws -> PodServer {
        guard let python = Paths.which("python3") else { throw HarnessError("python3 not found on PATH; podserver.py needs it") }
        let peer = try startPeer("podserver.py", python: python, ["--name", name], name: "podserver-\(name.lowercased())") {
            portList($0, count: 1)
        }
        return PodServer(child: peer.child, port: peer.ready[0], name: name)
    }
}

// MARK: - A center's configuration

/// One center's YAML: `public` and `internal` (cluster: true) listeners, the registry on the
/// shared database, the cluster section, pool `center` with a short heartbeat threshold, one pod
/// route (key: path) to its own pod server, the admin listener.
struct CenterConfig: Sendable {
    var nodeID: String
    var publicPort: Int
    var internalPort: Int
    var adminPort: Int
    var database: String
    var secretFile: String
    var podServer: String
    var maxHops = 1
    var heartbeatThreshold = "3s"
    var token = "admin-token-0123456789abcdef"
    var workers = 2

    func yaml() -> String {
        """
        workers: \(workers)
        listeners:
          - name: public
            address: 127.0.0.1:\(publicPort)
          - name: internal
            address: 127.0.0.1:\(internalPort)
            cluster: true
        registry:
          database: "\(database)"
        cluster:
          node_id: \(nodeID)
          internal_address: 127.0.0.1:\(internalPort)
          public_address: http://127.0.0.1:\(publicPort)
          secret_file: \(secretFile)
          max_hops: \(maxHops)
        pools:
          center:
            heartbeat_threshold: \(heartbeatThreshold)
        routes:
          - name: pods
            path_prefix: /
            pods:
              key: path
            upstreams: ["\(podServer)"]
        admin:
          address: 127.0.0.1:\(adminPort)
          token: "\(token)"
        logging:
          access: off
          error: stderr

        """
    }
}

/// A running center.
struct Center: Sendable {
    let child: Child
    let config: CenterConfig

    var name: String { config.nodeID }
    var internalAddress: String { "127.0.0.1:\(config.internalPort)" }
    func admin() -> AdminClient { AdminClient(port: config.adminPort, token: config.token) }
    /// A keep-alive client of the public listener.
    func web() -> HTTPClient { HTTPClient(port: config.publicPort) }
    /// A keep-alive client of the cluster listener (where other centers forward to).
    func internalClient() -> HTTPClient { HTTPClient(port: config.internalPort) }
    func url(_ path: String) -> String { "http://127.0.0.1:\(config.publicPort)\(path)" }
}

extension Scope {
    /// Starts `switchyard serve` on the center's YAML; returns once all three listeners accept
    /// and /readyz answers 200.
    func startCenter(_ config: CenterConfig, name: String? = nil) throws -> Center {
        let child = try startGateway(yaml: config.yaml(), port: config.publicPort, name: name ?? config.nodeID).child
        try Ports.waitUntilOpen(config.internalPort, child: child)
        try Ports.waitUntilOpen(config.adminPort, child: child)
        let center = Center(child: child, config: config)
        let admin = center.admin()
        let deadline = Date().addingTimeInterval(10)
        while try admin.call("GET", "/readyz", auth: .none).status != 200 {
            guard Date() < deadline else { throw HarnessError("\(config.nodeID): /readyz never said ready; stderr:\n\(child.stderr.suffix(2000))") }
            usleep(20_000)
        }
        return center
    }
}

// MARK: - Three centers on one PostgreSQL

/// Pod servers A, B, C and centers center-a, center-b, center-c (center i serves from pod
/// server i), all on one PostgreSQL database, one cluster secret.
struct CenterWorld {
    let pg: PostgresServer
    let podServers: [PodServer]
    var centers: [Center]
    let secret: String

    static let letters = ["A", "B", "C"]
    static let names = ["center-a", "center-b", "center-c"]

    /// The pod server (its letter) a center's node id stands for.
    static func letter(of node: String) -> String? { names.firstIndex(of: node).map { letters[$0] } }

    /// SIGKILL the Python peers (see `Child.kill9`); `Scope.close` stops the gateways.
    func stopPeers() { for p in podServers { p.child.kill9() } }

    /// No center complained about a row of the feed it could not apply.
    func expectFeedApplied(sourceLocation: SourceLocation = #_sourceLocation) {
        for c in centers {
            #expect(!c.child.stderr.contains("could not apply"), "\(c.name): \(c.child.stderr.suffix(2000))", sourceLocation: sourceLocation)
        }
    }

    /// Creates pods (id → owning center) through center `via`'s admin API, in one request, and
    /// waits until every running center's registry holds them as given.
    func createPods(_ pods: [(id: String, node: String)], via: Int = 0) throws {
        let items = pods.map { #"{"pod_id": "\#($0.id)", "node_id": "\#($0.node)", "base_url": "http://127.0.0.1/\#($0.id)/"}"# }
        let r = try centers[via].admin().call("POST", "/.cluster/pods", #"{"pods": [\#(items.joined(separator: ", "))]}"#)
        guard r.status == 201, r.json["created"].int == pods.count else { throw HarnessError("POST /.cluster/pods: \(r)") }
        for p in pods { try waitOwner(p.id, p.node) }
    }

    /// Waits until every running center's registry says `pod` is owned by `node`.
    func waitOwner(_ pod: String, _ node: String, on indices: [Int]? = nil, timeout: Double = 10) throws {
        for i in indices ?? Array(centers.indices) where centers[i].child.isRunning {
            let admin = centers[i].admin()
            var last: Reply?
            let ok = try eventually(timeout) {
                last = try admin.get("/.cluster/pods/\(pod)")
                return last?.status == 200 && last?.json["node_id"].string == node
            }
            guard ok else { throw HarnessError("\(centers[i].name) never saw \(pod) on \(node): \(last.map { "\($0)" } ?? "-")") }
        }
    }
}

extension Scope {
    /// One pod server and one center per letter, the cluster secret in one file for all; returns
    /// once every center lists all three centers online.
    func startCenters(_ pg: PostgresServer, count: Int = 3, maxHops: Int = 1) throws -> CenterWorld {
        let secret = "cluster-secret-\(UUID().uuidString.prefix(8))-0123456789"
        let secretFile = try write("cluster-secret", secret + "\n")
        var pods: [PodServer] = []
        var centers: [Center] = []
        for i in 0..<count {
            pods.append(try startPodServer(name: CenterWorld.letters[i]))
        }
        for i in 0..<count {
            let config = CenterConfig(nodeID: CenterWorld.names[i], publicPort: try Ports.free(), internalPort: try Ports.free(),
                                      adminPort: try Ports.free(), database: pg.url(), secretFile: secretFile,
                                      podServer: pods[i].address, maxHops: maxHops)
            centers.append(try startCenter(config))
        }
        let world = CenterWorld(pg: pg, podServers: pods, centers: centers, secret: secret)
        for c in centers {
            let admin = c.admin()
            var last: Reply?
            let ok = try eventually(10) {
                last = try admin.get("/.cluster/nodes")
                let online = last?.json["nodes"].array.filter { $0["type"].string == "center" && $0["status"].string == "online" }
                return Set(online?.compactMap { $0["node_id"].string } ?? []) == Set(CenterWorld.names.prefix(count))
            }
            guard ok else { throw HarnessError("\(c.name) does not list the centers online: \(last.map { "\($0)" } ?? "-")") }
        }
        return world
    }
}

// MARK: - A WebSocket client

/// A blocking WebSocket client on a raw socket (RFC 6455, client frames masked): enough to open a
/// pod's terminal through a gateway, exchange text messages and see how it was closed.
final class WSConnection {
    /// The socket (connect, send, deadline-bounded reads); frames are parsed here.
    private let raw: RawConnection
    private var buffer: [UInt8] = []
    var peerClosed: Bool { raw.peerClosed }
    /// The upgrade's answer.
    private(set) var status = 0
    private(set) var responseHead = ""

    init(port: Int, path: String, timeout: Double = 10) throws {
        raw = try RawConnection(port: port)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let deadline = Date().addingTimeInterval(timeout)
        var ok = raw.send(request)
        while ok {
            if let end = find([13, 10, 13, 10], in: buffer) {
                responseHead = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                status = Int(responseHead.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
                break
            }
            ok = fill(until: deadline)
        }
        if status != 101 {
            throw HarnessError("WebSocket upgrade of \(path) on \(port) answered \(status): \(responseHead.prefix(300).debugDescription) \(String(decoding: buffer.prefix(300), as: UTF8.self).debugDescription)")
        }
    }

    /// Reads what arrives before `deadline`; false on timeout, EOF or reset.
    private func fill(until deadline: Date) -> Bool {
        let ok = raw.fill(until: deadline)
        buffer += raw.takeBuffered()
        return ok
    }

    /// Sends one masked frame.
    @discardableResult
    func send(opcode: UInt8, _ payload: [UInt8]) -> Bool {
        var frame: [UInt8] = [0x80 | opcode]
        let n = payload.count
        if n < 126 {
            frame.append(0x80 | UInt8(n))
        } else if n < 65536 {
            frame += [0x80 | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((n >> shift) & 0xFF)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        for (i, b) in payload.enumerated() { frame.append(b ^ mask[i % 4]) }
        return raw.send(frame)
    }

    @discardableResult
    func sendText(_ text: String) -> Bool { send(opcode: 0x1, Array(text.utf8)) }

    /// One frame from the server: its opcode and payload; nil on timeout or EOF.
    func readFrame(timeout: Double = 10) -> (opcode: UInt8, payload: [UInt8])? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if buffer.count >= 2 {
                let opcode = buffer[0] & 0x0F
                let masked = buffer[1] & 0x80 != 0
                var length = Int(buffer[1] & 0x7F)
                var offset = 2
                if length == 126, buffer.count >= 4 {
                    length = Int(buffer[2]) << 8 | Int(buffer[3])
                    offset = 4
                } else if length == 127, buffer.count >= 10 {
                    length = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }
                    offset = 10
                } else if length >= 126 {
                    length = -1
                }
                if length >= 0 {
                    let maskStart = offset
                    if masked { offset += 4 }
                    if buffer.count >= offset + length {
                        var payload = Array(buffer[offset..<(offset + length)])
                        if masked {
                            for i in payload.indices { payload[i] ^= buffer[maskStart + i % 4] }
                        }
                        buffer.removeFirst(offset + length)
                        return (opcode, payload)
                    }
                }
            }
            if !fill(until: deadline) && (peerClosed || Date() >= deadline) { return nil }
        }
    }

    /// The next text message (pings answered, other frames skipped); nil on timeout, EOF, close.
    func readText(timeout: Double = 10) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while let frame = readFrame(timeout: max(0.01, deadline.timeIntervalSinceNow)) {
            switch frame.opcode {
            case 0x1: return String(decoding: frame.payload, as: UTF8.self)
            case 0x9: send(opcode: 0xA, frame.payload)
            case 0x8: return nil
            default: continue
            }
        }
        return nil
    }

    /// Sends `text` and returns the answer.
    func ask(_ text: String, timeout: Double = 10) -> String? {
        guard sendText(text) else { return nil }
        return readText(timeout: timeout)
    }

    /// How the connection ends within `timeout`: the close frame's code (nil when the TCP
    /// connection ended without one, or nothing ended), and whether it ended at all.
    func waitForClose(timeout: Double) -> (ended: Bool, code: Int?) {
        let deadline = Date().addingTimeInterval(timeout)
        while let frame = readFrame(timeout: max(0.01, deadline.timeIntervalSinceNow)) {
            if frame.opcode == 0x8 {
                let code = frame.payload.count >= 2 ? Int(frame.payload[0]) << 8 | Int(frame.payload[1]) : nil
                send(opcode: 0x8, Array(frame.payload.prefix(2)))
                return (true, code)
            }
        }
        return (peerClosed, nil)
    }
}

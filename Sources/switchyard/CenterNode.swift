import Foundation
import Glibc
import IOCore
import ProxyEngine
import RouteResolver

/// This gateway as a center node: its id (configured, or generated once into `node_id_file`),
/// its internal address, the cluster secret; its registration in the shared registry (pool
/// `cluster.pool`, labels `type: center`) and the heartbeat that keeps it a forwarding target.
struct CenterNode {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let id: String
    let pool: String
    let internalAddress: String
    let publicAddress: String
    let identity: ClusterIdentity
    let heartbeatIntervalMs: UInt64

    /// Resolves the settings: reads or creates the node id file, reads the secret, finds the
    /// internal address.
    init(_ settings: ClusterSettings, listeners: [EngineConfig.Listener], pools: [String: PoolSettings]) throws {
        id = try Self.nodeID(settings)
        pool = settings.pool
        let clusterListener = listeners.first(where: \.cluster)
        if let a = settings.internalAddress {
            internalAddress = a
        } else if let l = clusterListener {
            internalAddress = try Self.defaultInternalAddress(l.address)
        } else {
            throw Failure(description: "cluster.internal_address: not set and no cluster listener to derive it from")
        }
        publicAddress = settings.publicAddress ?? "http://\(internalAddress)"
        var secret: [UInt8] = []
        if let file = settings.secretFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw Failure(description: "cluster.secret_file \(file): cannot be read")
            }
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            // It travels in a header: visible ASCII only, and long enough not to be guessed.
            guard trimmed.utf8.count >= 16, trimmed.utf8.count <= 256, trimmed.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw Failure(description: "cluster.secret_file \(file): the secret must be 16-256 visible ASCII characters on the first line")
            }
            secret = Array(trimmed.utf8)
        }
        identity = ClusterIdentity(nodeID: id, centerPool: settings.pool, secret: secret, maxHops: settings.maxHops,
                                   clusterListeners: listeners.map(\.cluster))
        let threshold = UInt64(max(pools[settings.pool]?.heartbeatThresholdMs ?? PoolSettings().heartbeatThresholdMs, 3))
        heartbeatIntervalMs = settings.heartbeatInterval > 0 ? settings.heartbeatInterval : max(threshold / 3, 1)
    }

    /// The configured id, or the one kept in the id file (created with a new random id the first
    /// time, like the seed's CSS_NODE_ID=auto): the same center keeps its pods across restarts.
    static func nodeID(_ settings: ClusterSettings) throws -> String {
        guard settings.nodeID == "auto" else { return settings.nodeID }
        let file = settings.nodeIDFile
        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard ConfigLoader.isName(id) else { throw Failure(description: "\(file): \"\(id)\" is not a node id ([A-Za-z0-9._-]{1,64})") }
            return id
        }
        let id = "center-" + String(UInt64.random(in: .min ... .max), radix: 16)
        let dir = (file as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        do { try (id + "\n").write(toFile: file, atomically: true, encoding: .utf8) } catch {
            throw Failure(description: "cluster.node_id_file \(file): cannot be written: \(error.localizedDescription)")
        }
        return id
    }

    /// The cluster listener's address when it names one; for a wildcard (0.0.0.0, ::) the first
    /// non-loopback IPv4 interface address with its port.
    static func defaultInternalAddress(_ listener: SocketAddress) throws -> String {
        let text = listener.text
        guard let colon = text.lastIndex(of: ":") else { return text }
        let host = String(text[..<colon]), port = String(text[text.index(after: colon)...])
        guard host == "0.0.0.0" || host == "[::]" else { return text }
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { throw Failure(description: "getifaddrs failed: errno \(errno)") }
        defer { freeifaddrs(list) }
        var p = list
        while let a = p {
            defer { p = a.pointee.ifa_next }
            guard let sa = a.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET),
                  a.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0, a.pointee.ifa_flags & UInt32(IFF_UP) != 0 else { continue }
            var buf = [CChar](repeating: 0, count: 64)
            let ok = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin -> Bool in
                var addr = sin.pointee.sin_addr
                return inet_ntop(AF_INET, &addr, &buf, 64) != nil
            }
            if ok { return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) + ":" + port }
        }
        throw Failure(description: "cluster.internal_address: no non-loopback IPv4 interface; set it")
    }

    /// Registers (or updates) this center in the registry with a fresh heartbeat.
    func register(in registry: Registry) throws {
        var patch = NodePatch()
        patch.pool = pool
        patch.address = internalAddress
        patch.previewBaseURL = publicAddress
        patch.labels = ["type": "center"]
        patch.enabled = true
        let now = Self.nowMs()
        patch.heartbeat = now
        do { try registry.patchNode(name: id, patch, now: now) } catch {
            throw Failure(description: "cannot register center \(id): \(error)")
        }
    }

    /// Heartbeats from a thread of its own until the process ends. A center that stops (or
    /// hangs) goes stale after the pool's threshold and is no longer a forwarding target.
    func startHeartbeats(_ registry: Registry) {
        let id = self.id, interval = heartbeatIntervalMs
        let thread = Thread {
            while true {
                usleep(useconds_t(min(interval, 60_000) * 1000))
                do { try registry.heartbeat(name: id, now: Self.nowMs()) } catch {
                    // Removed by an operator: register again rather than vanish.
                    try? self.register(in: registry)
                }
            }
        }
        thread.name = "center-heartbeat"
        thread.start()
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

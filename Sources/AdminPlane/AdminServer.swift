import Foundation
import Glibc
import IOCore
import RouteResolver
import Synchronization

/// The admin listener: its own socket and threads, apart from the public event loops.
/// Checks the source allowlist and the tokens, then hands requests to `AdminAPI`.
public final class AdminServer: Sendable {
    let api: AdminAPI
    let allow: [CIDR]
    let address: SocketAddress
    private let listenFD = Atomic<Int32>(-1)
    private let active = Atomic<Int>(0)
    static let maxConnections = 64

    /// `token`: the operator token (already loaded or generated, see `AdminToken`).
    /// `router` is the engine's (route explain asks it; its registry serves the registry API),
    /// `pools` the configured pool settings (health thresholds), `engine` how the running
    /// engine's counters are read.
    public init(config: AdminConfig, router: Router, pools: [String: PoolSettings],
                engine: any EngineView, token: String, audit: AuditLog) {
        address = config.address ?? SocketAddress("127.0.0.1:9090")!
        allow = config.allow.compactMap(CIDR.init)
        api = AdminAPI(config: config, router: router, pools: pools, engine: engine, token: token, audit: audit)
    }

    /// Set once the workers run; `/readyz` answers 200 from then until the drain starts.
    public func setReady(_ ready: Bool) { api.ready.store(ready, ordering: .releasing) }

    /// Binds (errors surface here, before the gateway reports ready) and starts accepting.
    public func start() throws {
        let fd = try Sys.listenBlocking(address, backlog: 128)
        listenFD.store(fd, ordering: .releasing)
        Thread.detachNewThread { [self] in acceptLoop(fd) }
    }

    public func stop() {
        let fd = listenFD.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 {
            Sys.shutdownBoth(fd)
            Sys.close(fd)
        }
    }

    private func acceptLoop(_ fd: Int32) {
        while true {
            var peer = sockaddr_storage()
            let accepted: Int32?
            do { accepted = try Sys.acceptBlocking(fd, &peer) } catch {
                if listenFD.load(ordering: .acquiring) < 0 { return }
                usleep(10_000)  // EMFILE and the like: back off rather than spin
                continue
            }
            guard let client = accepted else { continue }
            let bytes = CIDR.bytes(of: peer)
            let text = Self.text(peer)
            if !allow.isEmpty && !allow.contains(where: { $0.contains(bytes) }) {
                AdminConnection(fd: client, peer: text) { _ in .error(403, "source address not allowed") }.runOnce()
                Sys.close(client)
                continue
            }
            if active.add(1, ordering: .relaxed).newValue > Self.maxConnections {
                active.subtract(1, ordering: .relaxed)
                AdminConnection(fd: client, peer: text) { _ in .error(503, "too many admin connections") }.runOnce()
                Sys.close(client)
                continue
            }
            Thread.detachNewThread { [self] in
                AdminConnection(fd: client, peer: text) { self.api.handle($0) }.run()
                Sys.close(client)
                active.subtract(1, ordering: .relaxed)
            }
        }
    }

    static func text(_ peer: sockaddr_storage) -> String {
        var p = peer
        var out = [UInt8](repeating: 0, count: 64)
        let n = withUnsafePointer(to: &p) { SocketAddress.formatHost($0, into: &out, capacity: 64) }
        return String(decoding: out.prefix(n), as: UTF8.self)
    }
}

extension AdminConnection {
    /// Answers one request with the handler (a refusal) and returns.
    func runOnce() {
        Sys.setTimeouts(fd, seconds: 2)
        let r = handler(AdminRequest(method: "", segments: [], query: [:], headers: [], body: [], peer: peer))
        let head = "HTTP/1.1 \(r.status) Refused\r\nContent-Type: application/json\r\nContent-Length: \(r.body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + r.body
        _ = bytes.withUnsafeBytes { Sys.writeAll(fd, $0) }
    }
}

/// The operator token: from configuration, else from `token_file`, else generated there at
/// first start (32 random bytes as hex, mode 0600) with its path printed once.
public enum AdminToken {
    public static func load(_ admin: AdminConfig) throws -> String {
        if !admin.token.isEmpty { return admin.token }
        let path = admin.tokenFile
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if token.utf8.count >= 16 { return token }
        }
        var generator = SystemRandomNumberGenerator()  // getrandom(2)
        let random = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let token = random.map { String(format: "%02x", $0) }.joined()
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SysError("open admin token file", errno) }
        defer { Glibc.close(fd) }
        fchmod(fd, 0o600)
        let line = Array((token + "\n").utf8)
        guard write(fd, line, line.count) == line.count else { throw SysError("write admin token file", errno) }
        FileHandle.standardError.write(Data("switchyard: admin token generated in \(path) (mode 0600)\n".utf8))
        return token
    }
}

/// Compares two secrets in time that depends only on their lengths, not on where they differ.
func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    let n = max(x.count, y.count)
    for i in 0..<n {
        diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return diff == 0
}

import HTTP1Codec
import IOCore
import Synchronization

/// A user's identity in the registry: the pool and the routing key.
public struct TunnelKey: Hashable, Sendable {
    public let pool: String
    public let key: [UInt8]

    public init(pool: String, key: [UInt8]) {
        self.pool = pool
        self.key = key
    }
}

/// What the workers share about tunnels: how many are open per route and per node (for the
/// admin plane), and the requests to close a user's tunnels when that user's placement moved.
///
/// Tunnels open and close rarely next to the requests around them, so one lock is enough here;
/// nothing on the per-byte path touches this.
public final class TunnelDirectory: Sendable {
    private struct Counts {
        var byRoute: [String: Int] = [:]
        var byNode: [String: Int] = [:]
        var total = 0
    }
    private let counts = Mutex(Counts())
    /// One mailbox per worker: the keys whose tunnels it must close.
    private let mailboxes = Mutex<[WorkerControl]>([])

    public init() {}

    func register(_ control: WorkerControl) {
        mailboxes.withLock { $0.append(control) }
    }

    func opened(route: String, node: String?) {
        counts.withLock { c in
            c.byRoute[route, default: 0] += 1
            if let node { c.byNode[node, default: 0] += 1 }
            c.total += 1
        }
    }

    func closed(route: String, node: String?) {
        counts.withLock { c in
            c.byRoute[route, default: 0] -= 1
            if c.byRoute[route] == 0 { c.byRoute[route] = nil }
            if let node {
                c.byNode[node, default: 0] -= 1
                if c.byNode[node] == 0 { c.byNode[node] = nil }
            }
            c.total -= 1
        }
    }

    /// Open tunnels now: in all, per route name and per node name.
    public func snapshot() -> (total: Int, byRoute: [String: Int], byNode: [String: Int]) {
        counts.withLock { ($0.total, $0.byRoute, $0.byNode) }
    }

    /// Asks every worker to close the tunnels of these users (their placements moved): a
    /// WebSocket client gets close code 1012 and reconnects to the new node. Other tunnels are
    /// untouched. Returns at once; the workers act on their next loop turn.
    public func closeTunnels(of keys: [TunnelKey]) {
        guard !keys.isEmpty else { return }
        for control in mailboxes.withLock({ $0 }) { control.post(keys) }
    }
}

import CLinux
import HTTP1Codec
import IOCore

/// What a worker counts for the metrics: requests per route and status class, a latency
/// histogram, upstream errors by kind, open connections. Written only by the worker's thread
/// (relaxed stores, no lock: one writer), read by the admin plane's thread with relaxed loads.
final class WorkerStats: @unchecked Sendable {
    /// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
    static let bucketBoundsUs: [UInt64] = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
                                           250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000]
    static let bucketCount = bucketBoundsUs.count + 1
    /// Status classes 1xx..5xx at 1...5; index 0 counts closes without a status (499-like).
    static let classCount = 6

    let routeCount: Int
    private let cells: UnsafeMutablePointer<UInt64>
    private let bounds: UnsafeMutablePointer<UInt64>
    private let requestsAt = 0
    private var bucketsAt: Int { routeCount * Self.classCount }
    private var sumAt: Int { bucketsAt + Self.bucketCount }
    private var errorsAt: Int { sumAt + 1 }
    private var connectionsAt: Int { errorsAt + UpstreamErrorKind.allCases.count }

    init(routeCount: Int) {
        self.routeCount = routeCount
        let n = routeCount * Self.classCount + Self.bucketCount + 1 + UpstreamErrorKind.allCases.count + 1
        cells = .allocate(capacity: n)
        cells.initialize(repeating: 0, count: n)
        bounds = .allocate(capacity: Self.bucketBoundsUs.count)
        bounds.initialize(from: Self.bucketBoundsUs, count: Self.bucketBoundsUs.count)
    }

    deinit {
        cells.deallocate()
        bounds.deallocate()
    }

    @inline(__always)
    func request(route: Int, status: Int, micros: UInt64) {
        let cls = status >= 100 && status < 600 ? status / 100 : 0
        cl_counter_add(cells + requestsAt + route * Self.classCount + cls, 1)
        var b = 0
        while b < Self.bucketBoundsUs.count && micros > bounds[b] { b += 1 }
        cl_counter_add(cells + bucketsAt + b, 1)
        cl_counter_add(cells + sumAt, micros)
    }

    func upstreamError(_ kind: UpstreamErrorKind) {
        cl_counter_add(cells + errorsAt + Int(kind.rawValue), 1)
    }

    @inline(__always)
    func setConnections(_ n: Int) {
        cl_counter_set(cells + connectionsAt, UInt64(n))
    }

    func read(_ i: Int) -> UInt64 { cl_counter_load(cells + i) }

    func requests(route: Int, statusClass: Int) -> UInt64 { read(requestsAt + route * Self.classCount + statusClass) }
    func bucket(_ b: Int) -> UInt64 { read(bucketsAt + b) }
    var latencySumUs: UInt64 { read(sumAt) }
    func errors(_ kind: UpstreamErrorKind) -> UInt64 { read(errorsAt + Int(kind.rawValue)) }
    var connections: UInt64 { read(connectionsAt) }
}

/// Why an exchange with an upstream failed, for the metrics.
public enum UpstreamErrorKind: UInt8, CaseIterable, Sendable {
    case connect, timeout, reset, invalidResponse, portLookup

    public var label: String {
        switch self {
        case .connect: return "connect"
        case .timeout: return "timeout"
        case .reset: return "reset"
        case .invalidResponse: return "invalid_response"
        case .portLookup: return "port_lookup"
        }
    }
}

/// Every worker's counters, summed on demand (a scrape), never on the request path.
public final class EngineStats: Sendable {
    let workers: [WorkerStats]
    public let routeNames: [String]

    /// `routeNames`: the configured routes; one more row, named "-", counts requests that
    /// matched none (404s, and requests refused before routing).
    init(workers: Int, routeNames: [String]) {
        self.routeNames = routeNames + ["-"]
        self.workers = (0..<workers).map { _ in WorkerStats(routeCount: routeNames.count + 1) }
    }

    public struct Snapshot: Sendable {
        /// [route][status class]: class 0 is "no status" (the client or upstream went away).
        public var requests: [[UInt64]]
        /// Cumulative counts per bucket bound (seconds), the last one +Inf.
        public var latencyBuckets: [(le: Double, count: UInt64)]
        public var latencySumSeconds: Double
        public var latencyCount: UInt64
        public var upstreamErrors: [(kind: String, count: UInt64)]
        public var openConnections: UInt64
    }

    public func snapshot() -> Snapshot {
        let routes = routeNames.count
        var requests = Array(repeating: Array(repeating: UInt64(0), count: WorkerStats.classCount), count: routes)
        var buckets = Array(repeating: UInt64(0), count: WorkerStats.bucketCount)
        var sum: UInt64 = 0
        var errors = Array(repeating: UInt64(0), count: UpstreamErrorKind.allCases.count)
        var connections: UInt64 = 0
        for w in workers {
            for r in 0..<routes {
                for c in 0..<WorkerStats.classCount { requests[r][c] &+= w.requests(route: r, statusClass: c) }
            }
            for b in 0..<WorkerStats.bucketCount { buckets[b] &+= w.bucket(b) }
            sum &+= w.latencySumUs
            for k in UpstreamErrorKind.allCases { errors[Int(k.rawValue)] &+= w.errors(k) }
            connections &+= w.connections
        }
        var cumulative: UInt64 = 0
        var latency: [(le: Double, count: UInt64)] = []
        for b in 0..<WorkerStats.bucketCount {
            cumulative &+= buckets[b]
            let le = b < WorkerStats.bucketBoundsUs.count ? Double(WorkerStats.bucketBoundsUs[b]) / 1e6 : Double.infinity
            latency.append((le, cumulative))
        }
        return Snapshot(requests: requests, latencyBuckets: latency,
                        latencySumSeconds: Double(sum) / 1e6, latencyCount: cumulative,
                        upstreamErrors: UpstreamErrorKind.allCases.map { ($0.label, errors[Int($0.rawValue)]) },
                        openConnections: connections)
    }
}

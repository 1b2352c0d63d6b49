import HTTP1Codec

/// Who this gateway is among the centers that share the registry, and what it trusts: the
/// pod routes' half of routing. A class: the request path reads it through one reference
/// (a struct of arrays would be retained field by field at every copy).
public final class ClusterIdentity: @unchecked Sendable {
    // @unchecked: immutable after init; `secretBytes` is owned here and only read.
    /// This center's node name (the pods' `node_id` for the pods it owns).
    public let nodeID: String
    /// The pool the centers register in ("center").
    public let centerPool: String
    /// The shared cluster secret a forwarding center sends in `X-Switchyard-Cluster`.
    public let secret: [UInt8]
    /// How many centers may forward a request before the one that would forward it again
    /// answers 508 instead (default 1: the first center forwards, the owner serves).
    public let maxHops: Int
    /// Per listener: whether it is a cluster listener, the only kind where a hop header can be
    /// trusted (with the right secret).
    public let clusterListeners: [Bool]
    /// `nodeID`'s bytes, as the hop header names it.
    public let nodeBytes: [UInt8]
    /// The secret and the node id in raw memory: compared on every forwarded request without
    /// array bounds checks or closures.
    @usableFromInline let secretBytes: UnsafeMutablePointer<UInt8>
    @usableFromInline let nodeRaw: UnsafeMutablePointer<UInt8>

    public init(nodeID: String, centerPool: String, secret: [UInt8], maxHops: Int, clusterListeners: [Bool]) {
        self.nodeID = nodeID
        self.centerPool = centerPool
        self.secret = secret
        self.maxHops = maxHops
        self.clusterListeners = clusterListeners
        nodeBytes = Array(nodeID.utf8)
        secretBytes = .allocate(capacity: max(secret.count, 1))
        secretBytes.initialize(from: secret, count: secret.count)
        nodeRaw = .allocate(capacity: max(nodeBytes.count, 1))
        nodeRaw.initialize(from: nodeBytes, count: nodeBytes.count)
    }

    deinit {
        secretBytes.deallocate()
        nodeRaw.deallocate()
    }

    /// `p[0..<secret.count]` is the secret, in time that depends only on the length (eight
    /// bytes a step: no early exit an attacker could time).
    @inline(__always)
    func isSecret(_ p: UnsafePointer<UInt8>, count n: Int) -> Bool {
        guard n == secret.count, n > 0 else { return false }
        let a = UnsafeRawPointer(secretBytes), b = UnsafeRawPointer(p)
        var diff: UInt64 = 0
        var i = 0
        while n &- i >= 8 {
            diff |= a.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i &+= 8
        }
        while i < n {
            diff |= UInt64(a.load(fromByteOffset: i, as: UInt8.self) ^ b.load(fromByteOffset: i, as: UInt8.self))
            i &+= 1
        }
        return diff == 0
    }

    /// `p[0..<n]` is this center's id.
    @inline(__always)
    func isSelf(_ p: UnsafePointer<UInt8>, count n: Int) -> Bool {
        n == nodeBytes.count && bytesEqual(nodeRaw, p, n)
    }
}

/// `a[0..<n]` equals `b[0..<n]`.
@inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    while i < n {
        if a[i] != b[i] { return false }
        i &+= 1
    }
    return true
}

/// The hop header of a request as routing judged it.
public struct HopChain: Sendable, Equatable {
    /// The request came from a proven center (cluster listener and the right secret); else its
    /// hop header, if any, is a client's and ignored (and never forwarded).
    public var trusted = false
    /// Centers named in a trusted chain.
    public var count = 0
    /// A trusted chain already names this center: the request came back.
    public var containsSelf = false
}

/// Where a pod route found (or did not find) its pod id.
public enum PodKeyLookup: Equatable, Sendable {
    /// No pod: a reserved path, the bare base domain, a first segment that cannot be a pod id.
    /// The local server answers.
    case none
    case found(start: Int, count: Int)
}

extension Router {
    @usableFromInline func decidePod(_ route: Int, _ head: borrowing RequestHead, headers: HeaderTable, base: UnsafePointer<UInt8>,
                                     listener: Int, now: Int64, mode: Mode) -> RouteDecision {
        guard let target = podTargets[route], let cluster else {
            return .reject(Rejection(status: 503, code: "no cluster identity", route: route))
        }
        let hops = Self.hopChain(cluster, listener: listener, headers: headers, base: base)
        guard case .found(let start, let count) = Self.findPod(target, head, base: base) else {
            return .forward(Forward(route: route, destination: .podLocal(owner: nil), keyStart: 0, keyCount: 0, placed: false,
                                    trustedHops: hops.trusted))
        }
        guard let registry else { return .reject(Rejection(status: 503, code: "no registry", route: route)) }
        let key = UnsafeRawBufferPointer(start: base + start, count: count)
        switch registry.resolvePod(key, centerPool: cluster.centerPool, now: now) {
        case .invalidKey:
            return .forward(Forward(route: route, destination: .podLocal(owner: nil), keyStart: 0, keyCount: 0, placed: false,
                                    trustedHops: hops.trusted))
        case .unknownPod:
            return .reject(Rejection(status: 404, code: "unknown pod", route: route, keyStart: start, keyCount: count))
        case .owner(let node):
            if node.nameBytes.withUnsafeBufferPointer({ cluster.isSelf($0.baseAddress!, count: $0.count) }) {
                return .forward(Forward(route: route, destination: .podLocal(owner: node), keyStart: start, keyCount: count,
                                        placed: false, trustedHops: hops.trusted))
            }
            // Another center owns it: forward, unless the request has been forwarded as often as
            // allowed already or came back here (two views disagree: a migration in flight, a
            // stale feed). Serving it here would be wrong (the pod's data is on its owner), and
            // sending it on could ping-pong.
            if hops.containsSelf || hops.count >= cluster.maxHops {
                return .reject(Rejection(status: 508, code: "pod routing loop", route: route, keyStart: start, keyCount: count,
                                         owner: node.name))
            }
            return .forward(Forward(route: route, destination: .podCenter(node), keyStart: start, keyCount: count, placed: false,
                                    trustedHops: hops.trusted))
        case .ownerDown(let name, let node, let retryAfter):
            if name.utf8.elementsEqual(cluster.nodeBytes) {
                return .forward(Forward(route: route, destination: .podLocal(owner: node), keyStart: start, keyCount: count,
                                        placed: false, trustedHops: hops.trusted))
            }
            // Not retried on another center: the pod's data is on its owner.
            return .reject(Rejection(status: 503, code: "pod owner down", route: route, retryAfterSeconds: retryAfter,
                                     keyStart: start, keyCount: count, owner: name))
        }
    }

    /// The pod id of a request: the host's first label under the base domain, or the first path
    /// segment unless it is reserved. Anything that cannot be a pod id (`/favicon.ico`, `/`)
    /// is the local server's.
    public static func findPod(_ target: PodTarget, _ head: borrowing RequestHead, base: UnsafePointer<UInt8>) -> PodKeyLookup {
        switch target.source {
        case .path:
            let start = head.pathStart + 1
            guard head.pathLength > 1, base[head.pathStart] == 0x2F else { return .none }
            var end = start
            let limit = head.pathStart + head.pathLength
            while end < limit, base[end] != 0x2F, base[end] != 0x3F { end += 1 }
            let count = end - start
            for reserved in target.reserved where reserved.count == count {
                if reserved.withUnsafeBufferPointer({ bytesEqual($0.baseAddress!, base + start, count) }) { return .none }
            }
            return KeyExtractor.isValidKey(UnsafeRawBufferPointer(start: base + start, count: count)) ? .found(start: start, count: count) : .none
        case .host(let domain):
            guard head.hostStart >= 0 else { return .none }
            let n = head.hostNameLength
            // "<pod>." + domain
            guard n > domain.count + 1 else { return .none }
            let labelCount = n - domain.count - 1
            let host = UnsafeRawBufferPointer(start: base + head.hostStart, count: n)
            guard host[labelCount] == 0x2E, equalsLowercased(host, labelCount + 1, domain) else { return .none }
            return KeyExtractor.isValidKey(UnsafeRawBufferPointer(start: base + head.hostStart, count: labelCount)) ? .found(start: head.hostStart, count: labelCount) : .none
        }
    }

    /// Judges a request's hop header: trusted only on a cluster listener with the right secret
    /// (compared in constant time); counts the centers a trusted chain names.
    public static func hopChain(_ cluster: ClusterIdentity, listener: Int, headers: HeaderTable, base: UnsafePointer<UInt8>) -> HopChain {
        var chain = HopChain()
        guard listener >= 0, listener < cluster.clusterListeners.count, cluster.clusterListeners[listener],
              headers.hasOne(.switchyardCluster) else { return chain }
        let f = headers.fields[headers.lastIndex(.switchyardCluster)]
        guard cluster.isSecret(base + Int(f.valueStart), count: Int(f.valueLength)) else { return chain }
        chain.trusted = true
        guard headers.has(.switchyardHop) else { return chain }
        if headers.hasOne(.switchyardHop) {
            countHops(headers.fields[headers.lastIndex(.switchyardHop)], cluster, base, &chain)
        } else {
            for i in 0..<headers.count where headers.fields[i].kind == .switchyardHop {
                countHops(headers.fields[i], cluster, base, &chain)
            }
        }
        return chain
    }

    /// Counts the centers one hop field names (a comma-separated list), noting this one.
    @inline(__always)
    private static func countHops(_ h: HeaderField, _ cluster: ClusterIdentity, _ base: UnsafePointer<UInt8>, _ chain: inout HopChain) {
        var p = Int(h.valueStart)
        let end = p + Int(h.valueLength)
        while p < end {
            while p < end, base[p] == 0x20 || base[p] == 0x09 || base[p] == 0x2C { p &+= 1 }
            let s = p
            while p < end, base[p] != 0x2C, base[p] != 0x20, base[p] != 0x09 { p &+= 1 }
            if p > s {
                chain.count &+= 1
                if cluster.isSelf(base + s, count: p - s) { chain.containsSelf = true }
            }
        }
    }
}

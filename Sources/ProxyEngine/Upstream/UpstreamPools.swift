import IOCore
import RouteResolver

/// A worker's upstream side: one idle-connection pool per upstream address, which address a
/// static route's next request goes to (round robin), and which pool a registry node's or
/// container's address maps to. Per worker, like every connection (no locks); addresses are
/// added on first use and never removed while the worker runs.
final class UpstreamPools {
    private(set) var pools: [UpstreamPool]
    /// Per route: the next upstream index for round robin. Raw memory: an Array would check
    /// its uniqueness on every request's write.
    private let roundRobin: UnsafeMutablePointer<Int>
    /// Per route: its upstreams, as a range of the flat `upstreamList`. Reading a nested array
    /// retained and released the inner one on every request.
    private let routeListStart: [Int]
    private let routeListCount: [Int]
    private let upstreamList: [Int]
    /// Registry node -> index in `pools`. Holds the node object, so an identifier is never reused
    /// while cached; a node update is a new object (and a new entry).
    private var nodePools: [ObjectIdentifier: (node: RegistryNode, pool: Int)] = [:]
    private struct ContainerKey: Hashable {
        let node: ObjectIdentifier
        let port: UInt16
    }
    private var containerPools: [ContainerKey: (node: RegistryNode, pool: Int)] = [:]
    /// Center node -> the pool of its internal address (pod forwarding).
    private var centerPools: [ObjectIdentifier: (node: RegistryNode, pool: Int)] = [:]
    private var apiPools: [ObjectIdentifier: (node: RegistryNode, pool: Int)] = [:]
    /// Idle connections kept per address, and for how long (ms).
    let idlePerAddress: Int
    let idleTimeout: UInt64

    /// `worker`: the worker's id, so workers start round robin at different offsets.
    init(_ config: EngineConfig, worker: Int) {
        pools = config.upstreamAddresses.map { UpstreamPool(address: $0) }
        let routes = max(config.routes.routes.count, 1)
        roundRobin = .allocate(capacity: routes)
        roundRobin.initialize(repeating: worker, count: routes)
        var starts: [Int] = [], flat: [Int] = []
        for list in config.routeUpstreams {
            starts.append(flat.count)
            flat.append(contentsOf: list)
        }
        routeListStart = starts
        routeListCount = config.routeUpstreams.map(\.count)
        upstreamList = flat
        idlePerAddress = config.upstreamPool.idlePerAddress
        idleTimeout = config.upstreamPool.idleTimeout
    }

    deinit {
        roundRobin.deallocate()
    }

    @inline(__always)
    subscript(index: Int) -> UpstreamPool { pools[index] }

    /// Round robin over a static route's upstreams.
    @inline(__always)
    func pick(route: Int) -> Int {
        let k = roundRobin[route] % routeListCount[route]
        roundRobin[route] = k &+ 1
        return upstreamList[routeListStart[route] + k]
    }

    /// The pool of a registry node's preview address (created on first use). Nil when the
    /// node's URL is not one the gateway can connect to.
    func index(for node: RegistryNode) -> Int? {
        cachedIndex(&nodePools, node) { UpstreamURL($0.previewBaseURL)?.address }
    }

    /// The pool of a registry node's API address (`api_base_url`), created on first use.
    func apiIndex(for node: RegistryNode) -> Int? {
        cachedIndex(&apiPools, node) { UpstreamURL($0.apiBaseURL)?.address }
    }

    /// The pool of a center's internal address (`address`, host:port), created on first use.
    func centerIndex(for center: RegistryNode) -> Int? {
        cachedIndex(&centerPools, center) { SocketAddress($0.address) }
    }

    /// The pool of the address `address(node)` names, remembered per node object (nil when the
    /// node's field is not an address the gateway can connect to).
    private func cachedIndex(_ cache: inout [ObjectIdentifier: (node: RegistryNode, pool: Int)], _ node: RegistryNode,
                             _ address: (RegistryNode) -> SocketAddress?) -> Int? {
        let id = ObjectIdentifier(node)
        if let entry = cache[id] { return entry.pool }
        guard let a = address(node) else { return nil }
        let index = index(for: a)
        if cache.count >= 4096 { cache.removeAll(keepingCapacity: true) }
        cache[id] = (node, index)
        return index
    }

    /// The pool of a container: the node's host with a placement's host port.
    func containerIndex(node: RegistryNode, port: UInt16) -> Int? {
        let key = ContainerKey(node: ObjectIdentifier(node), port: port)
        if let entry = containerPools[key] { return entry.pool }
        guard let address = SocketAddress(node.address)?.withPort(port) else { return nil }
        let index = index(for: address)
        if containerPools.count >= 65536 { containerPools.removeAll(keepingCapacity: true) }
        containerPools[key] = (node, index)
        return index
    }

    /// The pool for an address, created on first use.
    func index(for address: SocketAddress) -> Int {
        if let i = pools.firstIndex(where: { $0.address == address }) { return i }
        pools.append(UpstreamPool(address: address))
        return pools.count - 1
    }

    /// Closes every idle connection (the worker is draining).
    func closeAll() {
        for pool in pools { pool.closeAll() }
    }

    /// Drops the pools (the worker's loop ended).
    func removeAll() {
        pools.removeAll()
        nodePools.removeAll()
        containerPools.removeAll()
        centerPools.removeAll()
        apiPools.removeAll()
    }
}

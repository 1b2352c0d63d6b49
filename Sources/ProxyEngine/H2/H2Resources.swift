/// What a worker keeps for its HTTP/2 connections: nghttp2's callbacks and options (made when
/// the first connection opens), the scratch they read client bytes into, the connections with
/// output to write at the end of the loop turn, and reusable connection and stream objects.
struct H2Resources {
    var setup: H2Setup?
    /// Where an HTTP/2 connection reads (then nghttp2 parses) client bytes.
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: H2Resources.scratchSize, alignment: 16)
    static let scratchSize = 16 * 1024
    /// Connections with output to write at the end of this loop turn (`Worker.flushH2`).
    var dirty: [H2Connection] = []
    var streamCache: [H2Stream] = []
    var connectionCache: [H2Connection] = []
    /// Per listener: plain, and accepting HTTP/2 with prior knowledge (h2c).
    let cleartextListeners: [Bool]

    init(_ config: EngineConfig) {
        cleartextListeners = config.listeners.map { $0.http2 && $0.tls == nil }
    }

    /// Drops every object kept (they hold their worker strongly).
    mutating func removeAll() {
        dirty.removeAll()
        streamCache.removeAll()
        connectionCache.removeAll()
    }

    /// Frees the scratch; the worker calls it once, at its end.
    func deallocate() { scratch.deallocate() }
}

import TLSTerminator

/// A worker's TLS side, per listener: the context new connections get, refreshed when the
/// certificate sets change (SIGHUP or a changed file: the engine bumps their generation and wakes
/// the workers), the HSTS line answers carry, and the scratch where a response head and the body
/// bytes behind it are joined into one record.
struct ListenerTLS {
    /// Per listener: the context new connections get (nil: plain).
    private(set) var contexts: [TLSContext?] = []
    /// Per listener: `Strict-Transport-Security: ...` CRLF, or empty.
    let hstsLines: [[UInt8]]
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: ListenerTLS.scratchSize, alignment: 16)
    static let scratchSize = 16 * 1024
    private let certificates: ListenerCertificates?
    private let listeners: [EngineConfig.Listener]
    private var generation: UInt64 = 0

    init(_ config: EngineConfig, certificates: ListenerCertificates?, log: WorkerLog) {
        self.certificates = certificates
        listeners = config.listeners
        hstsLines = config.listeners.map { l in
            guard let s = l.tls?.hstsSeconds, s > 0 else { return [] }
            return Array("Strict-Transport-Security: max-age=\(s)\r\n".utf8)
        }
        refresh(log: log)
    }

    /// Frees the scratch; the worker calls it once, at its end.
    func deallocate() { scratch.deallocate() }

    /// New certificates apply from the next connection accepted.
    mutating func refreshIfChanged(log: WorkerLog) {
        if let c = certificates, c.generation.load(ordering: .acquiring) != generation { refresh(log: log) }
    }

    /// Builds the contexts from the current certificate sets. A set that cannot become a
    /// context (OpenSSL refuses) keeps the old context and says so.
    private mutating func refresh(log: WorkerLog) {
        guard let certificates else { contexts = listeners.map { _ in nil }; return }
        generation = certificates.generation.load(ordering: .acquiring)
        var fresh: [TLSContext?] = []
        for (i, set) in certificates.current().enumerated() {
            guard let set else { fresh.append(nil); continue }
            do {
                let alpn = listeners[i].http2 ? ["h2", "http/1.1"] : ["http/1.1"]
                fresh.append(try TLSContext(certificates: set, settings: TLSSettings(alpn: alpn, ticketKeys: certificates.ticketKeys[i])))
            } catch {
                log.error("tls_context", "listener \(listeners[i].name): \(error)")
                fresh.append(i < contexts.count ? contexts[i] : nil)
            }
        }
        contexts = fresh
    }
}

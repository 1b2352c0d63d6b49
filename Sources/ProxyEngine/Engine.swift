import CLinux
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver
import TLSTerminator

/// Starts the workers and the log writers, waits for a signal, drains, and stops.
public final class Engine {
    public let config: EngineConfig
    /// Open tunnels per route and node, and the door to close a user's tunnels.
    public let tunnels = TunnelDirectory()
    /// Edge tunnels attached to this process, per edge, and the passthrough counters.
    public let edges: EdgeTunnelDirectory
    /// Counters for the metrics, one set per worker.
    public let stats: EngineStats
    /// The TLS listeners' certificates (loaded by the caller, so a bad file stops start-up).
    public let certificates: ListenerCertificates?
    /// Every request's routing decision; route explain asks the same instance.
    public let router: Router

    public init(config: EngineConfig, certificates: ListenerCertificates? = nil) {
        self.config = config
        self.certificates = certificates
        edges = EdgeTunnelDirectory(registry: config.registry, center: config.cluster?.nodeID ?? EngineConfig.localCenter)
        stats = EngineStats(workers: config.workers, routeNames: config.routes.routes.map(\.name))
        router = Router(table: config.routes, registry: config.registry,
                        redirectPorts: config.listeners.map { $0.redirectHTTPSPort ?? 0 }, cluster: config.cluster)
    }

    /// Start-up (arguments, YAML, certificates, the admin listener) is done: its code pages and
    /// freed heap go back to the kernel. Code that runs again is faulted back from the page cache
    /// on first use (minor faults, once). Without this, idle RSS counts ~11 MiB of text touched
    /// only while starting (bench/rss.sh).
    static func releaseStartupMemory() {
        cl_trim_heap()
        _ = cl_release_code_pages()
    }

    /// Runs until SIGTERM or SIGINT, then drains (in-flight requests get `timeouts.drain`) and
    /// returns. Listener errors (address in use, permission) are thrown before anything starts.
    public func run(onReady: () -> Void = {}, onDrain: () -> Void = {}) throws(SysError) {
        // Signals are taken by this thread with sigwait; workers inherit the blocked mask.
        cl_block_signals()
        let sinks = LogSinks(access: try LogSink.open(config.accessLog), error: try LogSink.open(config.errorLog))
        var writers: [pthread_t] = []
        for sink in [sinks.access, sinks.error].compactMap({ $0 }) {
            writers.append(spawnThread { sink.runWriter() })
        }

        var controls: [WorkerControl] = []
        var workers: [Transfer<Worker>] = []
        for i in 0..<config.workers {
            let control = try WorkerControl()
            controls.append(control)
            tunnels.register(control)
            edges.register(control)
            // Listeners are bound here, on the calling thread, so a bind error stops start-up.
            workers.append(Transfer(try Worker(id: i, config: config, router: router, control: control, sinks: sinks, directory: tunnels,
                                                edgeDirectory: edges, stats: stats.workers[i], certificates: certificates)))
        }
        var threads: [pthread_t] = []
        for w in workers {
            threads.append(spawnThread { w.value.run() })
        }
        workers.removeAll()
        onReady()
        Engine.releaseStartupMemory()

        // SIGHUP reloads the certificates; so does a change to their files (checked every 2 s).
        while true {
            let sig = cl_wait_signal_ms(certificates?.hasTLS == true ? 2000 : 60_000)
            if sig == SIGTERM || sig == SIGINT { break }
            if let certificates, certificates.hasTLS, sig == 0 || sig == SIGHUP {
                let before = certificates.generation.load(ordering: .acquiring)
                for line in certificates.reload(force: sig == SIGHUP) { logLine(line) }
                if certificates.generation.load(ordering: .acquiring) != before { for c in controls { c.wake() } }
            }
        }
        onDrain()
        for c in controls { c.requestDrain() }
        for t in threads { pthread_join(t, nil) }
        for s in [sinks.access, sinks.error].compactMap({ $0 }) { s.stop() }
        for t in writers { pthread_join(t, nil) }
    }
}

/// A line on stderr from the main thread (the workers' logs have their own writers).
func logLine(_ text: String) {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    var t = time_t(now.tv_sec)
    var tm = tm()
    gmtime_r(&t, &tm)
    let stamp = "\(tm.tm_year + 1900)-\(pad(tm.tm_mon + 1))-\(pad(tm.tm_mday))T\(pad(tm.tm_hour)):\(pad(tm.tm_min)):\(pad(tm.tm_sec))Z "
    var line = Array((stamp + (text.hasPrefix("event=") ? "level=info " + text : text)).utf8)
    line.append(0x0A)
    _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress!, $0.count) }
}

private func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }

/// Moves a non-Sendable value to the one thread that will own it from then on.
struct Transfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// A plain pthread (ProxyEngine stays free of Foundation's Thread).
func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    var tid = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    let r = pthread_create(&tid, nil, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    precondition(r == 0, "pthread_create failed: \(r)")
    return tid
}

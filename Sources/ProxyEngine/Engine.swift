import CLinux
import Glibc

/// Starts the workers and the log writers, waits for a signal, drains, and stops.
public final class Engine {
    public let config: EngineConfig
    /// Open tunnels per route and node, and the door to close a user's tunnels.
    public let tunnels = TunnelDirectory()
    /// Counters for the metrics, one set per worker.
    public let stats: EngineStats

    public init(config: EngineConfig) {
        self.config = config
        stats = EngineStats(workers: config.workers, routeNames: config.routes.routes.map(\.name))
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
            // Listeners are bound here, on the calling thread, so a bind error stops start-up.
            workers.append(Transfer(try Worker(id: i, config: config, control: control, sinks: sinks, directory: tunnels,
                                                stats: stats.workers[i])))
        }
        var threads: [pthread_t] = []
        for w in workers {
            threads.append(spawnThread { w.value.run() })
        }
        workers.removeAll()
        onReady()

        while true {
            let sig = cl_wait_signal()
            if sig == SIGTERM || sig == SIGINT { break }
        }
        onDrain()
        for c in controls { c.requestDrain() }
        for t in threads { pthread_join(t, nil) }
        for s in [sinks.access, sinks.error].compactMap({ $0 }) { s.stop() }
        for t in writers { pthread_join(t, nil) }
    }
}

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

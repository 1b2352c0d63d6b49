import CLinux
import Glibc
import HTTP1Codec
import IOCore
import Synchronization

/// Where finished log buffers go: one writer thread per destination takes full buffers from the
/// workers and writes them, so a slow disk or a blocked stdout pipe never stalls an event loop.
/// The queue is bounded: when the writer falls behind, lines are dropped and counted.
public final class LogSink: Sendable {
    let fd: Int32
    private let queue = Mutex<[LogChunk]>([])
    private let dropped = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    static let maxQueued = 64

    init(fd: Int32) { self.fd = fd }

    /// Opens a destination; nil for `.off`.
    static func open(_ target: EngineConfig.LogTarget) throws(SysError) -> LogSink? {
        switch target {
        case .off: return nil
        case .stdout: return LogSink(fd: 1)
        case .stderr: return LogSink(fd: 2)
        case .file(let path):
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd < 0 { throw SysError("open(log file)", errno) }
            return LogSink(fd: fd)
        }
    }

    /// Hands a filled chunk over; returns false (and counts a drop) when the queue is full.
    func submit(_ chunk: LogChunk) -> Bool {
        let accepted = queue.withLock { q -> Bool in
            guard q.count < Self.maxQueued else { return false }
            q.append(chunk)
            return true
        }
        if !accepted { dropped.add(1, ordering: .relaxed) }
        return accepted
    }

    /// The writer thread's loop: wakes every 20 ms, writes what is queued, stops when asked and empty.
    func runWriter() {
        while true {
            let chunks = queue.withLock { q -> [LogChunk] in
                let taken = q
                q.removeAll(keepingCapacity: true)
                return taken
            }
            for c in chunks {
                var off = 0
                while off < c.count {
                    let r = Glibc.write(fd, c.bytes + off, c.count - off)
                    if r > 0 { off += r } else if r < 0 && errno == EINTR { continue } else { break }
                }
                c.bytes.deallocate()
            }
            if chunks.isEmpty {
                if stopping.load(ordering: .acquiring) { return }
                usleep(20_000)
            }
        }
    }

    func stop() { stopping.store(true, ordering: .releasing) }
}

/// A block of finished log lines on its way from a worker to a writer thread.
struct LogChunk: @unchecked Sendable {
    let bytes: UnsafeMutablePointer<UInt8>
    let count: Int
}

/// The sinks every worker writes to.
public struct LogSinks: Sendable {
    let access: LogSink?
    let error: LogSink?
}

/// A worker's log buffers: lines are formatted in place (no String), and a buffer goes to its sink
/// when it is nearly full or at the next 100 ms tick.
final class WorkerLog {
    private let sinks: LogSinks
    private var access: IOBuffer
    private var errors: IOBuffer
    private var lastFlushMs: UInt64 = 0
    private var cachedSecond: Int64 = -1
    /// "YYYY-MM-DDTHH:MM:SS" of `cachedSecond`.
    private let timeText = UnsafeMutablePointer<UInt8>.allocate(capacity: 20)
    static let chunkSize = 64 * 1024
    static let flushAt = 48 * 1024

    /// Whether access lines are written at all; when not, sessions skip the timing and copying
    /// that only the access log needs.
    let accessEnabled: Bool

    init(sinks: LogSinks) {
        self.sinks = sinks
        accessEnabled = sinks.access != nil
        access = IOBuffer(capacity: Self.chunkSize)
        errors = IOBuffer(capacity: Self.chunkSize)
    }

    var pendingFlush: Bool { !access.isEmpty || !errors.isEmpty }

    func tick(now: UInt64) {
        if now - lastFlushMs >= 100 {
            lastFlushMs = now
            flush()
        }
    }

    func flush() {
        if !access.isEmpty { hand(&access, to: sinks.access) }
        if !errors.isEmpty { hand(&errors, to: sinks.error) }
    }

    private func hand(_ b: inout IOBuffer, to sink: LogSink?) {
        guard let sink else { b.clear(); return }
        let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: b.count)
        copy.update(from: b.readPointer, count: b.count)
        if !sink.submit(LogChunk(bytes: copy, count: b.count)) { copy.deallocate() }
        b.clear()
    }

    private func timestamp(into b: inout IOBuffer) {
        var sec: Int64 = 0
        var ms: Int32 = 0
        cl_wall_clock(&sec, &ms)
        if sec != cachedSecond {
            cachedSecond = sec
            var t = time_t(sec)
            var tm = Glibc.tm()
            gmtime_r(&t, &tm)
            var f = IOBuffer(base: timeText, capacity: 20)
            pad(&f, Int(tm.tm_year) + 1900, 4); f.append(byte: 0x2D)
            pad(&f, Int(tm.tm_mon) + 1, 2); f.append(byte: 0x2D)
            pad(&f, Int(tm.tm_mday), 2); f.append(byte: 0x54)
            pad(&f, Int(tm.tm_hour), 2); f.append(byte: 0x3A)
            pad(&f, Int(tm.tm_min), 2); f.append(byte: 0x3A)
            pad(&f, Int(tm.tm_sec), 2)
        }
        b.append(timeText, 19)
        b.append(byte: 0x2E)
        pad(&b, Int(ms), 3)
        b.append(byte: 0x5A)
    }

    private func pad(_ b: inout IOBuffer, _ v: Int, _ width: Int) {
        var d = 1
        for _ in 1..<width { d *= 10 }
        var x = v
        while d > 0 {
            b.append(byte: UInt8(truncatingIfNeeded: (x / d) % 10) &+ 0x30)
            x %= d
            d /= 10
        }
    }

    /// One access line:
    /// `time client "METHOD target" status in=N out=N total_us=N upstream_us=N upstream=ADDR rid=ID`,
    /// then ` proto=h2` for a request that came as an HTTP/2 stream.
    func access(_ s: Session) {
        guard sinks.access != nil else { return }
        openAccessLine(s.record.clientIP, s.record.clientIPLength)
        access.append(s.record.requestLine, s.record.requestLineLength)  // sanitized when copied
        closeAccessLine(status: s.record.status, bytesIn: s.record.bytesIn, bytesOut: s.record.bytesOut,
                        totalUs: s.record.startUs == 0 ? 0 : cl_monotonic_us() - s.record.startUs, upstreamUs: s.record.upstreamUs,
                        upstream: s.leg.addressIndex >= 0 ? s.worker.upstreams[s.leg.addressIndex].addressText : nil,
                        requestID: s.record.requestID, requestIDLength: s.record.requestIDLength, h2: s.stream != nil)
    }

    /// The access line of an HTTP/2 request the connection answered itself (421, 431), with no
    /// session behind it: `request` is "METHOD target" (sanitized and cut here).
    func accessDirect(client: UnsafePointer<UInt8>, clientLength: Int, request: UnsafePointer<UInt8>, requestLength: Int,
                      status: Int, bytesIn: Int, bytesOut: Int, requestID: UnsafePointer<UInt8>, requestIDLength: Int) {
        guard sinks.access != nil else { return }
        openAccessLine(client, clientLength)
        for i in 0..<min(requestLength, 512) {
            let c = request[i]
            access.append(byte: c < 0x20 || c == 0x7F || c == 0x22 ? 0x3F : c)
        }
        closeAccessLine(status: status, bytesIn: UInt64(bytesIn), bytesOut: UInt64(bytesOut), totalUs: 0, upstreamUs: 0,
                        upstream: nil, requestID: requestID, requestIDLength: requestIDLength, h2: true)
    }

    /// `time client "` (flushing first when the buffer is nearly full).
    @inline(__always)
    private func openAccessLine(_ client: UnsafePointer<UInt8>, _ clientLength: Int) {
        if access.count > Self.flushAt { hand(&access, to: sinks.access) }
        timestamp(into: &access)
        access.append(byte: 0x20)
        access.append(client, clientLength)
        access.append(" \"")
    }

    /// `" status in=N ... rid=ID[ proto=h2]` and the newline.
    @inline(__always)
    private func closeAccessLine(status: Int, bytesIn: UInt64, bytesOut: UInt64, totalUs: UInt64, upstreamUs: UInt64,
                                 upstream: [UInt8]?, requestID: UnsafePointer<UInt8>, requestIDLength: Int, h2: Bool) {
        access.append("\" ")
        access.append(decimal: UInt64(status))
        access.append(" in=")
        access.append(decimal: bytesIn)
        access.append(" out=")
        access.append(decimal: bytesOut)
        access.append(" total_us=")
        access.append(decimal: totalUs)
        access.append(" upstream_us=")
        access.append(decimal: upstreamUs)
        access.append(" upstream=")
        if let upstream { access.append(upstream) } else { access.append(byte: 0x2D) }
        access.append(" rid=")
        access.append(requestID, requestIDLength)
        if h2 { access.append(" proto=h2") }
        access.append(byte: 0x0A)
    }

    /// A request-scoped error line: `time level=error event="..." status=N client=IP rid=ID`.
    func error(_ event: StaticString, status: Int, requestID: UnsafePointer<UInt8>, requestIDLength: Int,
               client: UnsafePointer<UInt8>, clientLength: Int) {
        guard sinks.error != nil else { return }
        if errors.count > Self.flushAt { hand(&errors, to: sinks.error) }
        timestamp(into: &errors)
        errors.append(" level=error event=\"")
        errors.append(event)
        errors.append("\" status=")
        errors.append(decimal: UInt64(status))
        errors.append(" client=")
        errors.append(client, clientLength)
        errors.append(" rid=")
        errors.append(requestID, requestIDLength)
        errors.append(byte: 0x0A)
    }

    /// A rare, non-request error (accept or connect failures) with a free-form detail.
    func error(_ event: StaticString, _ detail: String) { line("error", event, detail) }

    /// A rare event worth a line that is not an error (an edge tunnel attached or detached).
    func info(_ event: StaticString, _ detail: String) { line("info", event, detail) }

    private func line(_ level: StaticString, _ event: StaticString, _ detail: String) {
        guard sinks.error != nil else { return }
        if errors.count > Self.flushAt { hand(&errors, to: sinks.error) }
        timestamp(into: &errors)
        errors.append(" level=")
        errors.append(level)
        errors.append(" event=\"")
        errors.append(event)
        errors.append("\" detail=\"")
        var d = detail
        d.withUTF8 { u in errors.append(u.baseAddress!, min(u.count, 512)) }
        errors.append("\"\n")
    }
}

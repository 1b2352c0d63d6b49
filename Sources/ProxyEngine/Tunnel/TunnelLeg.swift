import CLinux
import Glibc
import HTTP1Codec
import IOCore
import TLSTerminator

/// Why a tunnel ended early: which side failed and how (STYLE.md point 8).
struct TunnelFailure: Error {
    let reason: StaticString
}

/// One direction of a byte tunnel (client → upstream or upstream → client).
///
/// Bytes move with splice(2): source socket → pipe → destination socket, never through user
/// space. A pipe is taken from the worker's pool only while bytes are in flight and given back
/// the moment it is empty, so an idle tunnel holds its two sockets and nothing else.
///
/// The EAGAIN of splice is ambiguous (STYLE.md point 6): from socket to pipe it means "socket
/// empty" *or* "pipe full". This leg reads into the pipe only when the pipe is empty, so EAGAIN
/// there always means the socket is drained and the edge-triggered readiness may be cleared. A
/// short splice, in either direction, never clears readiness: the next call finds out.
///
/// Splice pays off for bulk: measured here (bench/websocket.sh), a 1 MiB message costs the proxy
/// 0.4x the CPU of copying it through user space, but a 32-byte message costs 1.2x (three
/// splice calls and a pipe where recv/send need two calls). So the leg reads small traffic
/// with recv into a pooled buffer, and switches to splice when a read fills that buffer (a
/// burst is under way), and back when a splice brings less than a buffer's worth.
///
/// Where splice cannot be used (the kernel answers EINVAL, the pipe pool is out of descriptors,
/// or splicing is off in config) the leg moves bytes through a pooled buffer only.
struct TunnelLeg {
    /// Bytes to send before anything else, through the buffer path: what the peer sent
    /// before the switch (and, in buffer mode, each chunk read).
    var pending: IOBuffer?
    var pipe: Pipe?
    /// Bytes sitting in `pipe`.
    var inPipe = 0
    /// The source sent its FIN (read returned 0).
    var sourceClosed = false
    /// That FIN was passed on with shutdown(SHUT_WR), after every byte before it.
    var finForwarded = false
    var useBuffers = false
    /// The last read filled its buffer: read the next through a pipe.
    var bulk = false
    /// Bytes moved to the destination.
    var moved: UInt64 = 0

    init(useBuffers: Bool) {
        self.useBuffers = useBuffers
    }

    /// Bytes read but not yet written (the send timeout watches these).
    var holdsBytes: Bool { inPipe > 0 || (pending.map { $0.count > 0 } ?? false) }

    /// Moves what can move now; returns whether anything did. Throws when either socket failed
    /// (a reset, a write to a closed peer): the tunnel then ends.
    /// A side that is not a plain socket (TLS, an HTTP/2 stream for RFC 8441) needs the leg in
    /// buffer mode: splice moves socket bytes only.
    mutating func pump(from src: Transport, to dst: Transport, _ srcIO: inout Readiness, _ dstIO: inout Readiness,
                       pipes: PipePool, buffers: BufferPool) throws(TunnelFailure) -> Bool {
        var progress = false
        defer {
            // Empty pipes go back at once: idle tunnels hold none.
            if inPipe == 0, let p = pipe { pipes.give(p); pipe = nil }
        }
        while true {
            // 1. Buffered bytes first: they were read before anything now in the socket.
            if let b = pending {
                if b.count > 0 {
                    guard dstIO.writable else { return progress }
                    let r: IOResult
                    do { r = try dst.write(b.readPointer, b.count) } catch { throw TunnelFailure(reason: "tunnel write failed") }
                    guard case .bytes(let n) = r else { dstIO.writable = false; return progress }
                    pending!.consume(n)
                    moved += UInt64(n)
                    progress = true
                    continue
                }
                buffers.give(b)
                pending = nil
            }
            // 2. Then what the pipe holds.
            if inPipe > 0 {
                guard dstIO.writable else { return progress }
                let r: IOResult
                do { r = try Sys.splice(pipe!.r, dst.fd, inPipe) } catch { throw TunnelFailure(reason: "tunnel write failed") }
                guard case .bytes(let n) = r else { dstIO.writable = false; return progress }
                inPipe -= n
                moved += UInt64(n)
                progress = true
                continue
            }
            // 3. Everything before the FIN is out: pass the FIN on (half-close).
            if sourceClosed {
                if !finForwarded {
                    // Over TLS, close_notify first: the client reads it as the end of the stream.
                    dst.finishOutput()
                    finForwarded = true
                    progress = true
                }
                return progress
            }
            // 4. Read more.
            guard srcIO.readable else { return progress }
            if useBuffers || !bulk {
                guard try readIntoBuffer(src, &srcIO, buffers) else { return progress }
                progress = true
                continue
            }
            if pipe == nil {
                guard let p = pipes.take() else { useBuffers = true; continue }
                pipe = p
            }
            let r: IOResult
            do {
                r = try Sys.splice(src.fd, pipe!.w, Pipe.capacity)
            } catch {
                // EINVAL: this kind of socket cannot be spliced; move bytes by hand from now on.
                if error.errno == EINVAL { useBuffers = true; continue }
                throw TunnelFailure(reason: "tunnel read failed")
            }
            switch r {
            case .bytes(let n):
                inPipe = n
                if n < BufferPool.standardSize { bulk = false }
                progress = true
            case .eof:
                sourceClosed = true
                progress = true
            case .wouldBlock:
                // The pipe was empty, so the socket is: wait for its next edge.
                srcIO.readable = false
                return progress
            }
        }
    }

    /// Buffer mode: one read into a pooled buffer queued as `pending`. False when nothing came.
    private mutating func readIntoBuffer(_ src: Transport, _ srcIO: inout Readiness,
                                         _ buffers: BufferPool) throws(TunnelFailure) -> Bool {
        var b = buffers.take()
        let r: IOResult
        do {
            r = try src.read(b.writePointer, b.writableCount)
        } catch {
            buffers.give(b)
            throw TunnelFailure(reason: "tunnel read failed")
        }
        switch r {
        case .bytes(let n):
            b.end += n
            pending = b
            if n == b.capacity { bulk = true }
            return true
        case .eof:
            buffers.give(b)
            sourceClosed = true
            return true
        case .wouldBlock:
            buffers.give(b)
            srcIO.readable = false
            return false
        }
    }

    /// Gives back what the leg holds; a pipe with bytes still in it is closed, not pooled.
    mutating func release(pipes: PipePool, buffers: BufferPool) {
        if let b = pending { buffers.give(b); pending = nil }
        if let p = pipe {
            if inPipe == 0 { pipes.give(p) } else { pipes.discard(p) }
            pipe = nil
        }
        inPipe = 0
    }
}

/// A pipe's two ends.
struct Pipe {
    let r: Int32
    let w: Int32
    /// Bytes asked of one splice into a pipe: its default size (16 pages).
    static let capacity = 65536
}

/// A worker's idle pipes. Tunnels take one only while bytes are in flight.
final class PipePool {
    private var idle: [Pipe] = []
    private let keep: Int
    /// Pipes in existence (idle and in use), for the stats.
    private(set) var open = 0

    init(keep: Int = 64) {
        self.keep = keep
    }

    /// An idle pipe, or a new one; nil when the process is out of descriptors.
    func take() -> Pipe? {
        if let p = idle.popLast() { return p }
        guard let fds = Sys.pipe() else { return nil }
        open += 1
        return Pipe(r: fds.r, w: fds.w)
    }

    /// Returns an empty pipe.
    func give(_ p: Pipe) {
        if idle.count < keep { idle.append(p) } else { discard(p) }
    }

    /// Closes a pipe (one that still holds bytes of a tunnel that ended, or one too many).
    func discard(_ p: Pipe) {
        Sys.close(p.r)
        Sys.close(p.w)
        open -= 1
    }

    func closeAll() {
        while let p = idle.popLast() { discard(p) }
    }
}

import CNghttp2
import Glibc
import HTTP1Codec
import IOCore

/// One HTTP/2 stream of an `H2Connection`, seen by the `Session` that proxies it as a client
/// connection carrying one HTTP/1.1 exchange (the way httpd's mod_http2 runs each stream through
/// its HTTP/1.1 machinery). Everything HTTP/1.1 does (routing, sticky placement, port lookups,
/// retries, timeouts, the access log, upgrades) then applies to HTTP/2 unchanged.
///
/// Request side: the stream's HEADERS become an HTTP/1.1 head (`head`, handed to the session
/// whole) and its DATA a body the session reads (`read`), chunk-encoded when the client gave no
/// content-length. DATA is acknowledged to the client (WINDOW_UPDATE) only as the session reads
/// it, so an upload moves at the upstream's pace and one stream never holds more than its window.
///
/// Response side: the session writes its HTTP/1.1 response (`write`): the head is turned into a
/// HEADERS frame at the connection's next flush, the bytes behind it leave as DATA. The session
/// de-chunks for us (as for an HTTP/1.0 client) and says when the response ended (`finishOutput`).
final class H2Stream {
    unowned(unsafe) var connection: H2Connection!
    var id: Int32 = 0
    /// The session proxying this stream; nil before it starts and after it ended.
    unowned(unsafe) var session: Session?
    /// Index in the connection's stream list.
    var index = -1

    // Request
    /// The HTTP/1.1 head being built, then waiting for the session.
    var head: IOBuffer?
    /// The request line is written (pseudo-header fields come first, RFC 9113 §8.3).
    var lineWritten = false
    /// Request DATA not yet read by the session.
    var body: IOBuffer?
    /// Chunk-encode `body` for the session (no content-length from the client).
    var chunked = false
    var sawContentLength = false
    /// END_STREAM came from the client.
    var requestEnded = false
    /// `0\r\n\r\n` went to the session.
    var terminatorSent = false
    /// Request trailer fields (RFC 9110 §6.5) as HTTP/1.1 lines, for the last chunk; nil: none.
    var trailers: IOBuffer?
    /// DATA bytes received and not yet given back to the flow-control windows.
    var unconsumed = 0
    /// RFC 9113 §6.5.2 size of the header list so far.
    var headerListSize = 0
    /// Extended CONNECT (RFC 8441): the stream carries a WebSocket after a 200.
    var tunnel = false
    /// Why the request is answered by the connection itself (431, 400), or nil.
    var refusal: StaticString?
    var refusalStatus = 0

    // Response
    /// What the session wrote and the client has not been sent yet: the head, then body bytes.
    var out: IOBuffer?
    /// Length of the response head at the front of `out`, once complete; 0 before.
    var headLength = 0
    /// The head went out as HEADERS.
    var headSubmitted = false
    /// The session is done writing: after `out` drains, END_STREAM.
    var outputEnded = false
    /// The data source said "deferred" (nothing to send yet): resume it when bytes come.
    var deferred = false
    /// Waiting in the connection's list of heads to submit.
    var headQueued = false
    /// Waiting in the connection's list of streams to drive.
    var ready = false
    /// nghttp2 closed the stream (both ends done, or a reset).
    var closed = false
    /// The session could not write (out full): wake it when bytes leave.
    var writerBlocked = false
    /// We reset the stream (not nghttp2 on its own).
    var resetByUs = false

    /// `write` would take bytes now.
    var hasRoom: Bool {
        guard let b = out else { return true }
        return b.writableCount > 0 || (headSubmitted && b.start > 0)
    }

    func reset() {
        id = 0
        session = nil
        index = -1
        lineWritten = false
        chunked = false
        sawContentLength = false
        requestEnded = false
        terminatorSent = false
        trailers = nil
        unconsumed = 0
        headerListSize = 0
        tunnel = false
        refusal = nil
        refusalStatus = 0
        headLength = 0
        headSubmitted = false
        outputEnded = false
        deferred = false
        headQueued = false
        ready = false
        closed = false
        writerBlocked = false
        resetByUs = false
    }

    /// Gives back every buffer the stream holds.
    func release(_ buffers: BufferPool) {
        if let b = head { buffers.give(b); head = nil }
        if let b = body { buffers.give(b); body = nil }
        if let b = trailers { buffers.give(b); trailers = nil }
        if let b = out { buffers.give(b); out = nil }
    }

    /// Marks the stream refused (answered by the connection with `status`); the first reason wins.
    func refuse(_ status: Int, _ code: StaticString) {
        guard refusal == nil else { return }
        refusal = code
        refusalStatus = status
    }

    // MARK: the session's side: reading the request

    /// Request body bytes for the session (chunk-encoded when `chunked`). `.wouldBlock` when none
    /// are buffered; `.eof` only for a tunnel whose client ended its stream.
    func read(_ p: UnsafeMutableRawPointer, _ n: Int) -> IOResult {
        let dst = p.assumingMemoryBound(to: UInt8.self)
        if let b = body, b.count > 0 {
            var taken = 0
            var payload = 0
            if chunked {
                // One chunk per read: "<hex>\r\n" <payload> "\r\n".
                guard n > 16 else { return .wouldBlock }
                payload = min(b.count, n - 12)
                var hex = 0
                var v = payload
                repeat { hex += 1; v >>= 4 } while v > 0
                var i = hex
                v = payload
                while i > 0 {
                    i -= 1
                    let d = UInt8(v & 0xF)
                    dst[i] = d < 10 ? 48 + d : 87 + d
                    v >>= 4
                }
                dst[hex] = 0x0D
                dst[hex + 1] = 0x0A
                (dst + hex + 2).update(from: b.readPointer, count: payload)
                dst[hex + 2 + payload] = 0x0D
                dst[hex + 3 + payload] = 0x0A
                taken = hex + 4 + payload
            } else {
                payload = min(b.count, n)
                dst.update(from: b.readPointer, count: payload)
                taken = payload
            }
            body!.consume(payload)
            if body!.isEmpty { connection.buffers.give(body!); body = nil }
            connection.consumed(self, payload)
            return .bytes(taken)
        }
        if requestEnded {
            if chunked && !terminatorSent {
                if let t = trailers {
                    // "0" CRLF, the trailer fields, CRLF (RFC 9112 §7.1.2).
                    guard n >= 5 + t.count else { return .wouldBlock }
                    p.copyMemory(from: H2Stream.lastChunk.utf8Start, byteCount: 3)
                    (p + 3).copyMemory(from: t.readPointer, byteCount: t.count)
                    (p + 3 + t.count).copyMemory(from: H2Stream.lastChunk.utf8Start + 3, byteCount: 2)
                    terminatorSent = true
                    connection.buffers.give(t)
                    trailers = nil
                    return .bytes(5 + t.count)
                }
                guard n >= 5 else { return .wouldBlock }
                p.copyMemory(from: H2Stream.lastChunk.utf8Start, byteCount: 5)
                terminatorSent = true
                return .bytes(5)
            }
            if tunnel { return .eof }
        }
        return .wouldBlock
    }

    private static let lastChunk: StaticString = "0\r\n\r\n"

    // MARK: the session's side: writing the response

    /// Takes response bytes from the session (HTTP/1.1 as the session writes it to a client).
    /// `.wouldBlock` when this stream already holds a buffer's worth the client has not taken.
    func write(_ p: UnsafeRawPointer, _ n: Int) -> IOResult {
        if closed { return .bytes(n) }  // the client reset the stream: nothing more goes out
        if out == nil { out = connection.buffers.take() }
        if out!.writableCount < n {
            if headSubmitted || headLength > 0 {
                if out!.start > 0 { out!.compact() }
            } else if out!.capacity < BufferPool.largeSize {
                // A head larger than a standard buffer: it must be whole before it can go out.
                var large = connection.buffers.takeLarge()
                large.append(out!.readPointer, out!.count)
                connection.buffers.give(out!)
                out = large
            }
        }
        let k = min(n, out!.writableCount)
        guard k > 0 else { writerBlocked = true; return .wouldBlock }
        out!.append(p, k)
        if !headSubmitted && headLength == 0 { findHeadEnd() }
        if deferred && headSubmitted {
            deferred = false
            connection.resume(self)
        }
        connection.needsFlush()
        if k < n { writerBlocked = true }
        return .bytes(k)
    }

    /// Both buffers, as one write would take them.
    func writev2(_ a: UnsafeRawPointer, _ na: Int, _ b: UnsafeRawPointer?, _ nb: Int) -> IOResult {
        guard case .bytes(let k) = write(a, na) else { return .wouldBlock }
        guard k == na, let b, nb > 0 else { return .bytes(k) }
        if case .bytes(let m) = write(b, nb) { return .bytes(k + m) }
        return .bytes(k)
    }

    /// The response (or the tunnel's downstream half) is complete.
    func finishOutput() {
        guard !outputEnded else { return }
        outputEnded = true
        if !headSubmitted && headLength == 0 && !closed {
            // Nothing usable was written (cannot happen with a session's own writes): reset.
            connection.resetStream(self, error: NGHTTP2_INTERNAL_ERROR.rawValue)
            return
        }
        if deferred && headSubmitted {
            deferred = false
            connection.resume(self)
        }
        connection.needsFlush()
    }

    /// Looks for the blank line that ends the head the session wrote (our own HeadWriter's
    /// output: well formed, CRLF line ends).
    private func findHeadEnd() {
        let b = out!
        let p = b.readPointer
        var i = 3
        while i < b.count {
            if p[i] == 0x0A && p[i - 1] == 0x0D && p[i - 2] == 0x0A && p[i - 3] == 0x0D {
                let status = H2Stream.statusOf(p, i + 1)
                if status >= 100 && status < 200 && status != 101 {
                    // Interim (100 Continue): HTTP/2 clients do not need it; drop it.
                    out!.consume(i + 1)
                    if out!.count > 0 { findHeadEnd() }
                    return
                }
                headLength = i + 1
                connection.queueHead(self)
                return
            }
            i += 1
        }
    }

    /// The status code of "HTTP/1.1 NNN ...", or 0.
    static func statusOf(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        guard n >= 12 else { return 0 }
        var v = 0
        for i in 9..<12 {
            let d = Int(p[i]) - 48
            guard d >= 0 && d <= 9 else { return 0 }
            v = v * 10 + d
        }
        return v
    }
}

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
enum H2Preface {
    enum Match { case complete, partial, no }
    static let text: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    static func match(_ p: UnsafePointer<UInt8>, _ n: Int) -> Match {
        let t = text.utf8Start
        let k = min(n, text.utf8CodeUnitCount)
        for i in 0..<k where p[i] != t[i] { return .no }
        return k == text.utf8CodeUnitCount ? .complete : .partial
    }
}

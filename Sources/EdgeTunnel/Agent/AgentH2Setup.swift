import CNghttp2
import H2Wire
import Glibc
import IOCore

/// nghttp2's callback table and options for the agent's **server** sessions (the cluster is the
/// HTTP/2 client on a tunnel, docs/edge-tunnel.md §3), and the SETTINGS the agent sends.
///
/// Callbacks only record what happened on the stream (headers, data, an end, a close) and put it
/// on the tunnel's ready list; the tunnel runs the streams after nghttp2 returns. The one
/// exception is DATA, written straight to the origin's socket when nothing is queued before it.
final class AgentH2Setup {
    let callbacks: OpaquePointer
    let options: OpaquePointer
    let settings: [nghttp2_settings_entry]

    /// Per-stream window, as the cluster's (`EdgeSetup.streamWindow`): what one tunnelled
    /// connection may have in flight towards the origin, and so what it may hold here.
    static let streamWindow = Int32(BufferPool.largeSize)
    /// The connection's window: large, so streams are bounded by their own windows only.
    static let connectionWindow: Int32 = 64 << 20
    /// Streams one tunnel carries at once (each holds a socket and up to two 64 KiB buffers).
    static let maxStreams: UInt32 = 1000

    init() {
        let cb = H2Session.newCallbacks()
        callbacks = cb
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, AgentH2Setup.onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(cb, AgentH2Setup.onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, AgentH2Setup.onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, AgentH2Setup.onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, AgentH2Setup.onStreamClose)
        // Windows move only once the origin's socket took the bytes (per-stream backpressure).
        options = H2Session.manualWindowOptions()
        settings = [
            // RFC 8441 §3: the cluster may send extended CONNECT (`:protocol`).
            H2Session.setting(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1),
            H2Session.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UInt32(AgentH2Setup.streamWindow)),
            H2Session.setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, AgentH2Setup.maxStreams),
        ]
    }

    deinit {
        nghttp2_session_callbacks_del(callbacks)
        nghttp2_option_del(options)
    }

    @inline(__always)
    static func tunnel(_ user: UnsafeMutableRawPointer?) -> AgentTunnel {
        Unmanaged<AgentTunnel>.fromOpaque(user!).takeUnretainedValue()
    }

    @inline(__always)
    static func stream(_ session: OpaquePointer?, _ id: Int32) -> AgentStream? {
        guard let raw = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        return Unmanaged<AgentStream>.fromOpaque(raw).takeUnretainedValue()
    }

    @inline(__always)
    static func equals(_ p: UnsafePointer<UInt8>, _ n: Int, _ s: StaticString) -> Bool {
        n == s.utf8CodeUnitCount && memcmp(p, s.utf8Start, n) == 0
    }

    static let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, user in
        guard let frame, csh2_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              csh2_headers_category(frame) == Int32(NGHTTP2_HCAT_REQUEST.rawValue) else { return 0 }
        AgentH2Setup.tunnel(user).beginStream(csh2_frame_stream(frame))
        return 0
    }

    /// Notes `:method` and `:protocol` of a request; every other field is ignored (nghttp2 has
    /// checked the pseudo-headers' syntax, RFC 9113 §8.3 and RFC 8441 §4).
    static let onHeader: nghttp2_on_header_callback = { session, frame, name, nameLength, value, valueLength, _, _ in
        guard let frame, let name, let value, csh2_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              let s = AgentH2Setup.stream(session, csh2_frame_stream(frame)), s.phase == .request else { return 0 }
        if equals(name, nameLength, ":method") {
            s.isConnect = equals(value, valueLength, "CONNECT")
        } else if equals(name, nameLength, ":protocol") {
            s.kind = equals(value, valueLength, "switchyard-tls") ? .tls : equals(value, valueLength, "switchyard-http") ? .http : .unknown
        }
        return 0
    }

    static let onFrameRecv: nghttp2_on_frame_recv_callback = { session, frame, user in
        guard let frame else { return 0 }
        let t = AgentH2Setup.tunnel(user)
        let type = csh2_frame_type(frame)
        if type == UInt8(NGHTTP2_GOAWAY.rawValue) {
            t.goingAway = true
            return 0
        }
        guard type == UInt8(NGHTTP2_HEADERS.rawValue) || type == UInt8(NGHTTP2_DATA.rawValue),
              let s = AgentH2Setup.stream(session, csh2_frame_stream(frame)) else { return 0 }
        // on_frame_recv for HEADERS comes after the whole header block (CONTINUATIONs included).
        if type == UInt8(NGHTTP2_HEADERS.rawValue) { s.headersDone = true }
        // END_STREAM from the cluster is a half-close: the origin's write side is shut once
        // what came before it is written (docs/edge-tunnel.md §4).
        if csh2_frame_flags(frame) & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 { s.inboundEnded = true }
        t.markReady(s)
        return 0
    }

    static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { session, _, id, data, length, user in
        let t = AgentH2Setup.tunnel(user)
        guard let data, let s = AgentH2Setup.stream(session, id) else {
            // A stream we no longer follow: give the bytes back to the window at once.
            _ = nghttp2_session_consume(session, id, length)
            return 0
        }
        t.received(s, data, length)
        return 0
    }

    static let onStreamClose: nghttp2_on_stream_close_callback = { session, id, error, user in
        guard let s = AgentH2Setup.stream(session, id) else { return 0 }
        s.closed = true
        s.resetCode = error
        nghttp2_session_set_stream_user_data(session, id, nil)
        AgentH2Setup.tunnel(user).markReady(s)
        return 0
    }

    /// nghttp2 asks for origin bytes of a stream: what `fromOrigin` holds, END_STREAM after the
    /// origin's FIN, or "deferred" until there is something.
    static let readFromOrigin: nghttp2_data_source_read_callback = { _, _, buf, length, flags, source, _ in
        guard let source, let buf, let flags, let raw = csh2_source_ptr(source) else {
            return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
        }
        let s = Unmanaged<AgentStream>.fromOpaque(raw).takeUnretainedValue()
        if let b = s.fromOrigin, b.count > 0 {
            let k = min(length, b.count)
            buf.update(from: b.readPointer, count: k)
            s.fromOrigin!.consume(k)
            // Room again: a stream that stopped reading its origin may read on.
            if let t = s.tunnel {
                if s.fromOrigin!.isEmpty {
                    t.agent.buffers.give(s.fromOrigin!)
                    s.fromOrigin = nil
                }
                t.markReady(s)
            }
            return k
        }
        if s.originEnded {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        s.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }

    // MARK: responses

    /// `:status` only, no other field: the cluster reads nothing else (docs/edge-tunnel.md §4).
    /// Static bytes, handed to nghttp2 uncopied.
    static func withStatus<R>(_ status: StaticString, _ body: (UnsafePointer<nghttp2_nv>) -> R) -> R {
        let name: StaticString = ":status"
        var nv = nghttp2_nv(name: UnsafeMutablePointer(mutating: name.utf8Start), value: UnsafeMutablePointer(mutating: status.utf8Start),
                            namelen: name.utf8CodeUnitCount, valuelen: status.utf8CodeUnitCount,
                            flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
        return withUnsafePointer(to: &nv) { body($0) }
    }
}

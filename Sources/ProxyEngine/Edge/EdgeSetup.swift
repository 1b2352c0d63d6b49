import CNghttp2
import H2Wire
import Glibc
import IOCore

/// What a worker's edge tunnels share: nghttp2's callback table and options for the client
/// sessions the gateway runs on agents' connections, and their SETTINGS.
final class EdgeSetup {
    let callbacks: OpaquePointer
    let options: OpaquePointer
    let settings: [nghttp2_settings_entry]

    /// Per-stream window: what one client connection may have in flight from the agent, and so
    /// what it may hold in memory when the client does not read. Bytes a client takes at once
    /// are never held; a stalled client's go into one large buffer, doubled as needed up to
    /// this size (Envoy's default per-stream buffer limit is also 1 MiB). With 64 KiB the agent
    /// waited for a WINDOW_UPDATE every 32 KiB: one connection moved 330 MB/s instead of 640
    /// (bench/edge.sh).
    static let streamWindow: Int32 = 1 << 20
    /// The connection's window: large, so streams are bounded by their own windows only.
    static let connectionWindow: Int32 = 64 << 20

    init() {
        let cb = H2Session.newCallbacks()
        callbacks = cb
        nghttp2_session_callbacks_set_on_header_callback(cb, EdgeSetup.onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, EdgeSetup.onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, EdgeSetup.onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, EdgeSetup.onStreamClose)
        // Windows move as clients take the bytes (per-stream backpressure).
        options = H2Session.manualWindowOptions()
        settings = [
            H2Session.setting(NGHTTP2_SETTINGS_ENABLE_PUSH, 0),
            H2Session.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UInt32(EdgeSetup.streamWindow)),
            H2Session.setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0),
        ]
    }

    deinit {
        nghttp2_session_callbacks_del(callbacks)
        nghttp2_option_del(options)
    }

    @inline(__always)
    static func tunnel(_ user: UnsafeMutableRawPointer?) -> EdgeTunnelConnection {
        Unmanaged<EdgeTunnelConnection>.fromOpaque(user!).takeUnretainedValue()
    }

    @inline(__always)
    static func stream(_ session: OpaquePointer?, _ id: Int32) -> EdgeStream? {
        guard let raw = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        return Unmanaged<EdgeStream>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Lays `fields` out as nghttp2 name/value pairs for one call (nghttp2 copies them).
    static func withFields<R>(_ fields: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var bytes: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        for (n, v) in fields {
            let ns = bytes.count
            bytes += n.utf8
            let vs = bytes.count
            bytes += v.utf8
            spans.append((ns, n.utf8.count, vs, v.utf8.count))
        }
        return bytes.withUnsafeMutableBufferPointer { b in
            var nva = spans.map { s in
                nghttp2_nv(name: b.baseAddress! + s.0, value: b.baseAddress! + s.2, namelen: s.1, valuelen: s.3,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    static let onHeader: nghttp2_on_header_callback = { session, frame, name, nameLength, value, valueLength, _, _ in
        guard let frame, let name, let value, csh2_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              let s = EdgeSetup.stream(session, csh2_frame_stream(frame)), s.status == 0,
              nameLength == 7, memcmp(name, ":status", 7) == 0, valueLength == 3 else { return 0 }
        var v = 0
        for i in 0..<3 {
            let d = Int(value[i]) - 48
            guard d >= 0 && d <= 9 else { return 0 }
            v = v * 10 + d
        }
        if v >= 200 { s.status = v }  // 1xx: interim, wait for the real answer
        return 0
    }

    static let onFrameRecv: nghttp2_on_frame_recv_callback = { session, frame, user in
        guard let frame else { return 0 }
        let t = EdgeSetup.tunnel(user)
        let type = csh2_frame_type(frame)
        if type == UInt8(NGHTTP2_SETTINGS.rawValue) {
            if csh2_settings_ack(frame) == 0 { t.ready = true }
            return 0
        }
        if type == UInt8(NGHTTP2_GOAWAY.rawValue) {
            // The agent is leaving: no new streams here (close() takes the tunnel off the lists).
            t.goingAway = true
            t.needsFlush()
            return 0
        }
        guard type == UInt8(NGHTTP2_HEADERS.rawValue) || type == UInt8(NGHTTP2_DATA.rawValue),
              let s = EdgeSetup.stream(session, csh2_frame_stream(frame)) else { return 0 }
        if csh2_frame_flags(frame) & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 { s.inboundEnded = true }
        if type == UInt8(NGHTTP2_HEADERS.rawValue), s.status == 200, s.deferred {
            // Connected: what the client already sent may go now.
            s.deferred = false
            _ = nghttp2_session_resume_data(session, s.id)
        }
        t.markReady(s)
        return 0
    }

    static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { session, _, id, data, length, user in
        guard let data, let s = EdgeSetup.stream(session, id) else { return 0 }
        EdgeSetup.tunnel(user).received(s, data, length)
        return 0
    }

    static let onStreamClose: nghttp2_on_stream_close_callback = { session, id, error, user in
        guard let s = EdgeSetup.stream(session, id) else { return 0 }
        s.closed = true
        s.resetCode = error
        nghttp2_session_set_stream_user_data(session, id, nil)
        EdgeSetup.tunnel(user).markReady(s)
        return 0
    }

    /// nghttp2 asks for the client's bytes of a stream: what `outbound` holds, END_STREAM after
    /// the client's FIN, or "deferred" until there is something (or the agent has answered).
    static let readOutbound: nghttp2_data_source_read_callback = { session, _, buf, length, flags, source, _ in
        guard let source, let buf, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
        let s = Unmanaged<EdgeStream>.fromOpaque(csh2_source_ptr(source)!).takeUnretainedValue()
        guard s.status == 200 else {
            s.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        if let b = s.outbound, b.count > 0 {
            let k = min(length, b.count)
            buf.update(from: b.readPointer, count: k)
            s.outbound!.consume(k)
            if s.outbound!.isEmpty, let t = s.tunnel {
                t.buffers.give(s.outbound!)
                s.outbound = nil
            }
            // Room again: a link that stopped reading its client may read on.
            if let t = s.tunnel { t.markReady(s) }
            return k
        }
        if s.outboundEnded {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        s.deferred = true
        return Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }
}

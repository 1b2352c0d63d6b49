import CNghttp2
import H2Wire
import Glibc
import HTTP1Codec
import IOCore

/// What every HTTP/2 connection of a worker shares: nghttp2's callback table and options (copied
/// into each session at creation) and our SETTINGS.
final class H2Setup {
    let callbacks: OpaquePointer
    let options: OpaquePointer
    let settings: [nghttp2_settings_entry]
    let maxHeaderList: Int
    /// Where a response head's fields are laid out for nghttp2 (used and copied within one call,
    /// so one per worker): the upstream's fields (the session's limit) plus the gateway's own.
    let nva: UnsafeMutablePointer<nghttp2_nv>
    let nvaCapacity: Int

    init(_ config: EngineConfig) {
        let h = config.http2
        maxHeaderList = h.maxHeaderListSize > 0 ? Int(h.maxHeaderListSize) : config.limits.maxHeaderBytes
        nvaCapacity = config.limits.maxHeaders + 16
        nva = .allocate(capacity: nvaCapacity)
        let cb = H2Session.newCallbacks()
        callbacks = cb
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, H2Setup.onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(cb, H2Setup.onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, H2Setup.onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, H2Setup.onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, H2Setup.onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, H2Setup.onFrameSend)
        // Windows move as sessions read the body (flow control tied to the upstream's pace);
        // closed streams are not kept for the (deprecated) RFC 7540 priority tree.
        let opt = H2Session.manualWindowOptions()
        options = opt
        // Rapid reset (CVE-2023-44487) and CONTINUATION flood (CVE-2024-27316): set, not assumed.
        nghttp2_option_set_stream_reset_rate_limit(opt, h.resetBurst, h.resetRate)
        nghttp2_option_set_max_continuations(opt, h.maxContinuations)
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, Int(h.headerTableSize))
        settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: h.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: h.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_HEADER_TABLE_SIZE.rawValue), value: h.headerTableSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(maxHeaderList)),
            // RFC 8441: WebSocket over HTTP/2 by extended CONNECT.
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL.rawValue), value: 1),
        ]
    }

    deinit {
        nva.deallocate()
        nghttp2_session_callbacks_del(callbacks)
        nghttp2_option_del(options)
    }

    @inline(__always)
    static func connection(_ user: UnsafeMutableRawPointer?) -> H2Connection {
        Unmanaged<H2Connection>.fromOpaque(user!).takeUnretainedValue()
    }

    @inline(__always)
    static func stream(_ session: OpaquePointer?, _ id: Int32) -> H2Stream? {
        guard let raw = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        return Unmanaged<H2Stream>.fromOpaque(raw).takeUnretainedValue()
    }

    static let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, user in
        guard let frame, csh2_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              csh2_headers_category(frame) == Int32(NGHTTP2_HCAT_REQUEST.rawValue) else { return 0 }
        H2Setup.connection(user).beginStream(csh2_frame_stream(frame))
        return 0
    }

    static let onHeader: nghttp2_on_header_callback = { session, frame, name, nameLength, value, valueLength, _, user in
        guard let frame, let name, let value, csh2_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              let s = H2Setup.stream(session, csh2_frame_stream(frame)) else { return 0 }
        if csh2_headers_category(frame) == Int32(NGHTTP2_HCAT_HEADERS.rawValue) {
            // A trailer section after the request's DATA.
            H2Setup.connection(user).trailer(s, name, nameLength, value, valueLength)
            return 0
        }
        guard csh2_headers_category(frame) == Int32(NGHTTP2_HCAT_REQUEST.rawValue) else { return 0 }
        let c = H2Setup.connection(user)
        c.header(s, name, nameLength, value, valueLength)
        // Far over the limit (one dynamic-table entry referenced thousands of times): stop
        // decoding fields for this stream; nghttp2 resets it without calling us again.
        if s.headerListSize > 2 * c.worker.h2.setup!.maxHeaderList { return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        return 0
    }

    static let onFrameSend: nghttp2_on_frame_send_callback = { session, frame, user in
        guard let frame else { return 0 }
        let type = csh2_frame_type(frame)
        let id = csh2_frame_stream(frame)
        if type == UInt8(NGHTTP2_RST_STREAM.rawValue) {
            // Resets nghttp2 sent on its own count against the connection's budget.
            if csh2_rst_error(frame) != NGHTTP2_NO_ERROR.rawValue && !(H2Setup.stream(session, id)?.resetByUs ?? false) {
                H2Setup.connection(user).serverReset()
            }
        } else if (type == UInt8(NGHTTP2_DATA.rawValue) || type == UInt8(NGHTTP2_HEADERS.rawValue))
                    && csh2_frame_flags(frame) & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                  let s = H2Setup.stream(session, id), !s.requestEnded, !s.tunnel {
            // The response is complete and the client is still sending: tell it to stop
            // (RFC 9113 §8.1), rather than read and drop the rest of its body.
            s.resetByUs = true
            _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_NO_ERROR.rawValue)
        }
        return 0
    }

    static let onFrameRecv: nghttp2_on_frame_recv_callback = { session, frame, user in
        guard let frame else { return 0 }
        let type = csh2_frame_type(frame)
        let endStream = csh2_frame_flags(frame) & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        guard type == UInt8(NGHTTP2_HEADERS.rawValue) || type == UInt8(NGHTTP2_DATA.rawValue),
              let s = H2Setup.stream(session, csh2_frame_stream(frame)) else { return 0 }
        let c = H2Setup.connection(user)
        if type == UInt8(NGHTTP2_HEADERS.rawValue) && csh2_headers_category(frame) == Int32(NGHTTP2_HCAT_REQUEST.rawValue) {
            c.endHeaders(s, endStream: endStream)
        } else if endStream {
            s.requestEnded = true
            c.markReady(s)
        }
        return 0
    }

    static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, id, data, length, user in
        guard let data else { return 0 }
        H2Setup.connection(user).data(id, data, length)
        return 0
    }

    static let onStreamClose: nghttp2_on_stream_close_callback = { session, id, _, user in
        guard let s = H2Setup.stream(session, id) else { return 0 }
        s.closed = true
        H2Setup.connection(user).markReady(s)
        return 0
    }

    /// A response body for nghttp2: what the session wrote, deferred while there is none yet.
    static let readBody: nghttp2_data_source_read_callback = { _, _, buf, length, flags, source, _ in
        let s = Unmanaged<H2Stream>.fromOpaque(csh2_source_ptr(source)!).takeUnretainedValue()
        guard let b = s.out, b.count > 0 else {
            if s.outputEnded {
                flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                return 0
            }
            s.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        let k = min(length, b.count)
        buf!.update(from: b.readPointer, count: k)
        s.out!.consume(k)
        if s.out!.isEmpty && s.outputEnded { flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        if s.writerBlocked, let c = s.connection { c.markReady(s) }
        return k
    }
}

/// nghttp2 name/value pairs; nghttp2 copies them when a response is submitted.
enum H2Nv {
    @inline(__always)
    static func make(_ name: StaticString, _ value: UnsafePointer<UInt8>, _ n: Int) -> nghttp2_nv {
        nghttp2_nv(name: UnsafeMutablePointer(mutating: name.utf8Start), value: UnsafeMutablePointer(mutating: value),
                   namelen: name.utf8CodeUnitCount, valuelen: n, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
    }

    @inline(__always)
    static func make(_ name: StaticString, _ value: StaticString) -> nghttp2_nv {
        make(name, value.utf8Start, value.utf8CodeUnitCount)
    }

    @inline(__always)
    static func make(_ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ n: Int) -> nghttp2_nv {
        nghttp2_nv(name: UnsafeMutablePointer(mutating: name), value: UnsafeMutablePointer(mutating: value),
                   namelen: nameLength, valuelen: n, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
    }
}

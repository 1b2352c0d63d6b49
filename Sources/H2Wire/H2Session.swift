import CNghttp2

/// What setting up an nghttp2 session takes every time: a callback table, options, SETTINGS
/// entries. Out of memory at start-up is fatal (nothing could be served).
public enum H2Session {
    public static func newCallbacks() -> OpaquePointer {
        var cb: OpaquePointer?
        guard nghttp2_session_callbacks_new(&cb) == 0, let cb else { fatalError("nghttp2: out of memory") }
        return cb
    }

    /// Options for a session whose windows move only when the bytes left (the socket they go to
    /// took them: per-stream backpressure), keeping no closed streams.
    public static func manualWindowOptions() -> OpaquePointer {
        var opt: OpaquePointer?
        guard nghttp2_option_new(&opt) == 0, let opt else { fatalError("nghttp2: out of memory") }
        nghttp2_option_set_no_auto_window_update(opt, 1)
        nghttp2_option_set_no_closed_streams(opt, 1)
        return opt
    }

    public static func setting(_ id: nghttp2_settings_id, _ value: UInt32) -> nghttp2_settings_entry {
        nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: value)
    }
}

import ProxyEngine
import Yams

extension ConfigLoader {
    /// `http2: {max_concurrent_streams, max_header_list_size, header_table_size,
    /// initial_window_size, connection_window_size, stream_resets: {burst, per_second},
    /// max_continuations}`: the limits of every HTTP/2 connection.
    static func parseHTTP2(_ node: Node?, into config: inout EngineConfig) throws(ConfigError) {
        guard let node else { return }
        let m = try Mapping(node, path: "http2", allowed: ["max_concurrent_streams", "max_header_list_size", "header_table_size",
                                                           "initial_window_size", "connection_window_size", "stream_resets",
                                                           "max_continuations"])
        var h = config.http2
        if let n = try m.int("max_concurrent_streams", range: 1...10_000) { h.maxConcurrentStreams = UInt32(n) }
        if let n = try m.int("max_header_list_size", range: 1024...(48 * 1024)) { h.maxHeaderListSize = UInt32(n) }
        if let n = try m.int("header_table_size", range: 0...65536) { h.headerTableSize = UInt32(n) }
        // A stream's request body is buffered up to its window: at most one 64 KiB buffer.
        if let n = try m.int("initial_window_size", range: 1024...65535) { h.initialWindowSize = UInt32(n) }
        if let n = try m.int("connection_window_size", range: 65535...(1 << 30)) { h.connectionWindowSize = UInt32(n) }
        if let n = try m.int("max_continuations", range: 0...64) { h.maxContinuations = n }
        if let r = m.value("stream_resets") {
            let rm = try Mapping(r, path: "http2.stream_resets", allowed: ["burst", "per_second"])
            if let n = try rm.int("burst", range: 1...100_000) { h.resetBurst = UInt64(n) }
            if let n = try rm.int("per_second", range: 1...100_000) { h.resetRate = UInt64(n) }
        }
        config.http2 = h
    }

    /// `listeners[].tls`: `{certificates: DIR, default_certificate: NAME, hsts: 365d|off,
    /// session_tickets: true, ticket_rotation: 12h}`. The certificates themselves are loaded
    /// (and checked, with the file named in every error) when the gateway starts.
    static func parseTLS(_ node: Node?, path: String) throws(ConfigError) -> EngineConfig.Listener.TLS? {
        guard let node else { return nil }
        let t = try Mapping(node, path: path, allowed: ["certificates", "default_certificate", "hsts", "session_tickets",
                                                        "ticket_rotation"])
        guard let dir = try t.string("certificates"), !dir.isEmpty else {
            throw ConfigError(key: "\(path).certificates", reason: "is required: a directory of NAME.crt + NAME.key pairs")
        }
        var tls = EngineConfig.Listener.TLS(certificates: dir)
        if let name = try t.string("default_certificate") {
            guard !name.isEmpty, !name.contains("/") else {
                throw ConfigError(key: "\(path).default_certificate", reason: "must be a certificate's file name without extension")
            }
            tls.defaultCertificate = name
        }
        if let text = try t.string("hsts"), text != "off" {
            guard let ms = parseDuration(text.hasSuffix("d") ? String(text.dropLast()) + "h" : text).map({ text.hasSuffix("d") ? $0 * 24 : $0 }),
                  ms >= 1000 else {
                throw ConfigError(key: "\(path).hsts", reason: "\"\(text)\" is not a max-age like 365d, 1h or off")
            }
            tls.hstsSeconds = ms / 1000
        }
        tls.sessionTickets = try t.bool("session_tickets") ?? true
        if let ms = try t.duration("ticket_rotation") {
            guard ms >= 60_000 else { throw ConfigError(key: "\(path).ticket_rotation", reason: "must be at least 1m") }
            tls.ticketRotation = ms
        }
        return tls
    }
}

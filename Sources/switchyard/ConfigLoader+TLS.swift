import ProxyEngine
import Yams

extension ConfigLoader {
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

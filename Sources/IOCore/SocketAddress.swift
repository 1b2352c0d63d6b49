import Glibc

/// An IPv4 or IPv6 socket address, parsed once from "host:port" or "[v6]:port".
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public var storage: sockaddr_storage
    public var length: socklen_t
    /// The text the address was parsed from, kept for logs ("127.0.0.1:9000").
    public let text: String

    /// Equal when the socket addresses are (family, port and address bytes), whatever the text.
    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        guard a.length == b.length else { return false }
        var x = a.storage, y = b.storage
        return memcmp(&x, &y, Int(a.length)) == 0
    }
    public var description: String { text }

    /// Parses a numeric "a.b.c.d:port" or "[v6]:port"; hostnames are resolved by the caller at
    /// config load (never on the event loop).
    /// Splits "host:port" or "[v6]:port" (decimal port, 0 allowed); nil when malformed.
    public static func splitHostPort(_ text: String) -> (host: Substring, port: UInt16)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                  text.index(after: close) < text.endIndex, text[text.index(after: close)] == ":" else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = UInt16(portText) else { return nil }
        return (host, port)
    }

    public init?(_ text: String) {
        self.text = text
        storage = sockaddr_storage()
        guard let split = Self.splitHostPort(text) else { return nil }
        var host = split.host
        let port = split.port
        if host == "localhost" { host = "127.0.0.1" }
        var a4 = in_addr()
        var a6 = in6_addr()
        if inet_pton(AF_INET, String(host), &a4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = a4
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee = sin }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, String(host), &a6) == 1 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_addr = a6
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee = sin6 }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            return nil
        }
    }

    public var port: UInt16 {
        var s = storage
        return withUnsafePointer(to: &s) { p in
            p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// The same host at another port ("10.0.0.5:80" → "10.0.0.5:20001"): a node's address with a
    /// container's host port.
    public func withPort(_ port: UInt16) -> SocketAddress? {
        let host: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[...close]
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
        } else {
            return nil
        }
        return SocketAddress("\(host):\(port)")
    }

    /// Writes the numeric host of a peer address (no port) into `out`; returns the length.
    public static func formatHost(_ ss: UnsafePointer<sockaddr_storage>, into out: UnsafeMutablePointer<UInt8>, capacity: Int) -> Int {
        let family = Int32(ss.pointee.ss_family)
        let ok: UnsafePointer<CChar>? = out.withMemoryRebound(to: CChar.self, capacity: capacity) { dst in
            UnsafeRawPointer(ss).withMemoryRebound(to: UInt8.self, capacity: 1) { _ in
                if family == AF_INET {
                    return UnsafeRawPointer(ss).withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        var a = sin.pointee.sin_addr
                        return inet_ntop(AF_INET, &a, dst, socklen_t(capacity))
                    }
                } else if family == AF_INET6 {
                    return UnsafeRawPointer(ss).withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        var a = sin6.pointee.sin6_addr
                        return inet_ntop(AF_INET6, &a, dst, socklen_t(capacity))
                    }
                }
                return nil
            }
        }
        guard ok != nil else { return 0 }
        return strlen(UnsafeRawPointer(out).assumingMemoryBound(to: CChar.self))
    }
}

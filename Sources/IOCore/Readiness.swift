/// Readiness of one socket, tracked for edge-triggered epoll: a flag stays set until a call
/// reports would-block (or a short read/write), and epoll reports the next edge. Shared by the
/// gateway's workers and the edge agent's loop.
public struct Readiness: Sendable {
    public var readable = false
    public var writable = false
    /// The peer closed its sending side (EPOLLRDHUP) or the socket errored (EPOLLHUP/ERR).
    public var hangup = false

    @inlinable public init() {}

    @inlinable @inline(__always) public mutating func apply(_ events: UInt32) {
        // An error or hang-up makes both directions "ready", so the next call reports it.
        if events & (Epoll.input | Epoll.readHangup | Epoll.error | Epoll.hangup) != 0 { readable = true }
        if events & (Epoll.output | Epoll.error | Epoll.hangup) != 0 { writable = true }
        if events & (Epoll.readHangup | Epoll.hangup) != 0 { hangup = true }
    }
}

/// epoll event bits (<sys/epoll.h>), as Swift constants.
public enum Epoll {
    public static let input: UInt32 = 0x001
    public static let output: UInt32 = 0x004
    public static let error: UInt32 = 0x008
    public static let hangup: UInt32 = 0x010
    public static let readHangup: UInt32 = 0x2000
    public static let edgeTriggered: UInt32 = 0x8000_0000
}

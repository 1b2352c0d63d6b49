import IOCore
import HTTP1Codec

/// What every epoll registration of a worker has: its socket, its slot and generation (the epoll
/// user data, STYLE.md point 4) and its place in the timer wheel.
///
/// The socket has one owner at a time, the registration holding it here: it comes in through
/// `adoptSocket`, leaves through `releaseSocket` (handed to a new owner, which adopts it) or is
/// closed by `closeSocket` — the one place a connection's socket is closed. `fd` cannot be set
/// anywhere else.
class Pollable {
    /// The owned socket; -1: none.
    private(set) var fd: Int32 = -1
    var slot: UInt32 = 0
    var generation: UInt32 = 0
    /// Absolute monotonic ms when this owner's timeout fires; 0: none.
    var deadline: UInt64 = 0
    /// The wheel tick this owner is queued at; 0: not queued.
    var queuedTick: UInt64 = 0

    @inline(__always) var token: UInt64 { UInt64(generation) << 32 | UInt64(slot) }

    /// Takes ownership of `socket`; this registration must hold none.
    final func adoptSocket(_ socket: Int32) {
        precondition(fd < 0, "a registration owns one socket at a time")
        fd = socket
    }

    /// Gives the socket up without closing it, for a new owner to adopt.
    final func releaseSocket() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    /// Closes the owned socket, if any.
    final func closeSocket() {
        guard fd >= 0 else { return }
        Sys.close(fd)
        fd = -1
    }
}

/// Who owns a slot. Dispatch is a switch over concrete final classes: no protocol witness, no
/// closure per event (STYLE.md point 9).
enum SlotOwner {
    case free
    case wake
    case listener(Int)
    case session(Session)
    case upstream(UpstreamConnection)
    case h2(H2Connection)
    case edgeTunnel(EdgeTunnelConnection)
    case edgeLink(EdgeLink)

    /// The same owner without the references counted, for dispatch (see `SlotTarget`).
    var target: SlotTarget {
        switch self {
        case .free: return .free
        case .wake: return .wake
        case .listener(let i): return .listener(i)
        case .session(let s): return .session(Unmanaged.passUnretained(s))
        case .upstream(let u): return .upstream(Unmanaged.passUnretained(u))
        case .h2(let c): return .h2(Unmanaged.passUnretained(c))
        case .edgeTunnel(let c): return .edgeTunnel(Unmanaged.passUnretained(c))
        case .edgeLink(let l): return .edgeLink(Unmanaged.passUnretained(l))
        }
    }
}

/// A slot's owner as dispatch reads it: a trivial value, so reading it from the slot table costs
/// no retain/release pair (three per request otherwise). The `SlotOwner` table keeps the objects
/// alive; an object unregistered during a loop turn is kept until the turn ends (`Worker.retired`).
enum SlotTarget {
    case free
    case wake
    case listener(Int)
    case session(Unmanaged<Session>)
    case upstream(Unmanaged<UpstreamConnection>)
    case h2(Unmanaged<H2Connection>)
    case edgeTunnel(Unmanaged<EdgeTunnelConnection>)
    case edgeLink(Unmanaged<EdgeLink>)
}


import IOCore

/// The byte tunnel of a session after an upgrade's 101: its two legs, its place in the worker's
/// list of open tunnels, its idle limit and whether it carries WebSocket. The session decides
/// when a tunnel starts and ends (Session+Tunnel.swift); the bytes and their accounting are here.
struct Tunnel {
    var toUpstream = TunnelLeg(useBuffers: false)
    var toClient = TunnelLeg(useBuffers: false)
    /// Index in the worker's list of open tunnels; -1 when not open.
    var index = -1
    /// Idle limit (ms, 0: none), from the route.
    var idleLimit: UInt64 = 0
    /// The switched-to protocol is WebSocket: the gateway may end it with a close frame.
    var webSocket = false

    var isOpen: Bool { index >= 0 }

    /// Fresh legs; what each side sent behind the switch (already read) goes out first.
    mutating func begin(buffered: Bool, fromClient: IOBuffer?, fromUpstream: IOBuffer?, idleLimit: UInt64, buffers: BufferPool) {
        toUpstream = TunnelLeg(useBuffers: buffered)
        toClient = TunnelLeg(useBuffers: buffered)
        if let b = fromClient {
            if b.count > 0 { toUpstream.pending = b } else { buffers.give(b) }
        }
        if let b = fromUpstream {
            if b.count > 0 { toClient.pending = b } else { buffers.give(b) }
        }
        self.idleLimit = idleLimit
    }

    /// Moves what can move both ways. `finished`: both sides closed in order. Throws when a
    /// side failed.
    mutating func pump(client: Transport, upstream: Transport, _ clientIO: inout Readiness, _ upstreamIO: inout Readiness,
                       pipes: PipePool, buffers: BufferPool) throws(TunnelFailure) -> (progress: Bool, finished: Bool) {
        let up = try toUpstream.pump(from: client, to: upstream, &clientIO, &upstreamIO, pipes: pipes, buffers: buffers)
        let down = try toClient.pump(from: upstream, to: client, &upstreamIO, &clientIO, pipes: pipes, buffers: buffers)
        return (up || down, toUpstream.finForwarded && toClient.finForwarded)
    }

    /// Bytes in flight that a peer does not take (the send timeout applies).
    func stuck(clientWritable: Bool, upstreamWritable: Bool) -> Bool {
        (toUpstream.holdsBytes && !upstreamWritable) || (toClient.holdsBytes && !clientWritable)
    }

    /// A close frame may go to the client now: a WebSocket, between messages (bytes still in
    /// flight may be part of a frame, which a close frame would corrupt), client side open.
    var mayCloseWebSocket: Bool { webSocket && !toClient.holdsBytes && !toClient.finForwarded }

    /// Bytes moved each way since the last call (for the access log).
    mutating func takeMoved() -> (fromClient: UInt64, toClient: UInt64) {
        defer { toUpstream.moved = 0; toClient.moved = 0 }
        return (toUpstream.moved, toClient.moved)
    }

    /// Gives back the pipes and buffers the legs hold.
    mutating func release(pipes: PipePool, buffers: BufferPool) {
        toUpstream.release(pipes: pipes, buffers: buffers)
        toClient.release(pipes: pipes, buffers: buffers)
    }
}

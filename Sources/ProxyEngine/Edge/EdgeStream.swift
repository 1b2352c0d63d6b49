import CNghttp2
import IOCore

/// One client connection carried through an edge node's tunnel: a stream of the tunnel's HTTP/2
/// connection (extended CONNECT, docs/edge-tunnel.md), seen by the `EdgeLink` that owns the
/// client's socket as the far side of a byte pipe.
///
/// Both directions are bounded by the stream's window: what the agent sends waits in `inbound`
/// until the client's socket takes it, and only then is it given back to the window
/// (`nghttp2_session_consume`), so a client that does not read holds back its own stream and
/// nothing else. What the client sends waits in `outbound` (at most one large buffer) until
/// nghttp2 frames it; the link stops reading the client while it is full. Buffers are taken
/// only while bytes are in flight: an idle stream holds none.
final class EdgeStream {
    unowned(unsafe) var tunnel: EdgeTunnelConnection?
    var id: Int32 = 0
    /// The link whose client this stream carries; nil once it let go.
    unowned(unsafe) var link: EdgeLink?
    /// Index in the tunnel's stream list.
    var index = -1

    /// The agent's answer: 0 before it, 200 when connected, else its refusal.
    var status = 0
    /// Agent → client bytes the client has not taken yet.
    var inbound: IOBuffer?
    /// END_STREAM came from the agent: after `inbound` drains, the client's side is shut.
    var inboundEnded = false
    /// Client → agent bytes nghttp2 has not framed yet.
    var outbound: IOBuffer?
    /// The client sent its FIN: after `outbound` drains, END_STREAM.
    var outboundEnded = false
    /// The data source said "deferred" (nothing to send yet): resume it when bytes come.
    var deferred = false
    /// nghttp2 closed the stream (both ends done, or a reset); `resetCode` says which.
    var closed = false
    var resetCode: UInt32 = 0
    /// Waiting in the tunnel's list of streams whose link must run.
    var ready = false

    func reset() {
        id = 0
        link = nil
        index = -1
        status = 0
        inboundEnded = false
        outboundEnded = false
        deferred = false
        closed = false
        resetCode = 0
        ready = false
    }

    /// Room for client bytes now.
    var outboundRoom: Int {
        guard let b = outbound else { return BufferPool.largeSize }
        return b.writableCount + b.start
    }

    func release(_ buffers: BufferPool) {
        if let b = inbound { buffers.give(b); inbound = nil }
        if let b = outbound { buffers.give(b); outbound = nil }
    }

    // MARK: the link's side

    /// The client's FIN: END_STREAM after what is queued.
    func finishOutput() {
        guard !outboundEnded else { return }
        outboundEnded = true
        tunnel?.resume(self)
    }
}

import CNghttp2
import IOCore

/// nghttp2's outgoing frames on their way to a socket: `nghttp2_session_mem_send` hands out
/// frames in its own memory (valid until the next call); they are copied into the connection's
/// pooled output buffer, and what does not fit waits here (`pending`) for the next round. Shared
/// by every nghttp2 session of the project: the gateway's HTTP/2 clients (H2Connection), the
/// cluster side of edge tunnels (EdgeTunnelConnection) and the edge agent (AgentTunnel).
public struct H2Output {
    /// Bytes of nghttp2's last frame that did not fit (nghttp2's memory).
    private var pending: UnsafePointer<UInt8>?
    private var pendingLength = 0

    public init() {}

    /// Nothing is waiting outside the buffer.
    public var isEmpty: Bool { pendingLength == 0 }
    public var pendingCount: Int { pendingLength }

    /// Forgets what is waiting (the session is gone, and its memory with it).
    public mutating func reset() {
        pending = nil
        pendingLength = 0
    }

    /// Moves frames from nghttp2 into `out` (taken from `buffers` when nil) while it has room.
    /// False on a fatal nghttp2 error.
    public mutating func produce(_ h2: OpaquePointer, into out: inout IOBuffer?, buffers: BufferPool) -> Bool {
        if out == nil { out = buffers.takeLarge() }
        if pendingLength > 0 {
            if out!.writableCount < pendingLength { out!.compact() }
            let k = min(pendingLength, out!.writableCount)
            out!.append(pending!, k)
            pending = pending! + k
            pendingLength -= k
            if pendingLength > 0 { return true }
            pending = nil
        }
        if out!.writableCount < 4096 { out!.compact() }
        while out!.writableCount > 0 {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(h2, &data)
            if n < 0 { return false }
            if n == 0 { break }
            let k = min(n, out!.writableCount)
            out!.append(data!, k)
            if k < n {
                pending = data! + k
                pendingLength = n - k
                break
            }
        }
        return true
    }
}

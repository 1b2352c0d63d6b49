import CLinux
import Glibc
import HTTP1Codec
import IOCore

/// The tunnel phase: after the upstream answered an upgrade with 101 and the client has that
/// answer, the session stops parsing and moves bytes both ways (two TunnelLegs) until both sides
/// have closed, one of them fails, or the gateway ends it (idle limit, placement moved, drain).
extension Session {
    /// The 101 is written: from here on bytes move unparsed. What each side sent behind the switch
    /// (already read into our buffers) goes out first.
    func enterTunnel(_ u: UpstreamConnection) {
        phase = .tunnel
        let settings = worker.config.tunnels
        // splice cannot see through TLS: a TLS client's tunnel moves bytes through buffers.
        // Nor an HTTP/2 stream (RFC 8441): its bytes are DATA frames.
        tunnel.begin(buffered: !settings.splice || !transport.isPlainSocket, fromClient: inBuf, fromUpstream: u.inBuf,
                     idleLimit: routeIndex >= 0 && routeIndex < worker.routeTunnelIdle.count ? worker.routeTunnelIdle[routeIndex] : 0,
                     buffers: buffers)
        inBuf = nil
        u.inBuf = nil
        // A tunnel may be silent for hours: keepalive probes find peers that vanished without a FIN.
        if settings.keepaliveIdle > 0 {
            if fd >= 0 { Sys.setKeepAlive(fd, idle: settings.keepaliveIdle, interval: settings.keepaliveInterval, count: settings.keepaliveCount) }
            Sys.setKeepAlive(u.fd, idle: settings.keepaliveIdle, interval: settings.keepaliveInterval, count: settings.keepaliveCount)
        }
        worker.tunnelOpened(self)
    }

    func stepTunnel() -> Bool {
        guard let u = upstream else { endTunnel(reason: "tunnel lost its upstream"); return false }
        let step: (progress: Bool, finished: Bool)
        do {
            step = try tunnel.pump(client: transport, upstream: .socket(u.fd), &io, &u.io, pipes: worker.pipes, buffers: buffers)
        } catch {
            endTunnel(reason: error.reason)
            return false
        }
        if step.finished {
            endTunnel(reason: nil)
            return false
        }
        return step.progress
    }

    func armTunnelTimer() {
        if tunnel.stuck(clientWritable: io.writable, upstreamWritable: upstream?.io.writable != false) {
            // Bytes in flight that a peer does not take: the send timeout, as for any response.
            timerKind = .send
            worker.arm(self, deadline: lastProgressMs + timeouts.send)
        } else if tunnel.idleLimit > 0 {
            timerKind = .tunnelIdle
            worker.arm(self, deadline: lastProgressMs + tunnel.idleLimit)
        } else {
            deadline = 0
        }
    }

    /// Ends the tunnel now: logs it (status 101, the bytes each way) and closes both sockets.
    /// `reason` nil: both sides closed in order.
    func endTunnel(reason: StaticString?) {
        finishTunnelLog(reason: reason)
        close()
    }

    /// The gateway ends the tunnel (the user's placement moved, or the gateway is draining). A
    /// WebSocket client gets a close frame with `code` (1012 service restart, 1001 going away)
    /// then our FIN, so it reconnects at once; the upstream side is closed.
    func closeTunnel(code: UInt16) {
        guard phase == .tunnel else { return }
        // Only between messages (`mayCloseWebSocket`); otherwise the client just sees the FIN.
        if tunnel.mayCloseWebSocket {
            // RFC 6455 §5.5.1: FIN + opcode 8, unmasked (server to client), 2-byte payload: the code.
            var frame: (UInt8, UInt8, UInt8, UInt8) = (0x88, 0x02, UInt8(code >> 8), UInt8(code & 0xFF))
            _ = withUnsafeBytes(of: &frame) { try? clientWrite($0.baseAddress!, 4) }
        }
        // Not an error: the access line says the tunnel ended; a drain of many users would
        // otherwise write an error line per tunnel.
        finishTunnelLog(reason: nil)
        leaveTunnel()
        dropUpstream()
        // Shut our side and read what the client still sends until it closes: its answering
        // close frame must not make the kernel reset the connection while ours is in flight.
        beginLingering()
    }

    private func finishTunnelLog(reason: StaticString?) {
        let moved = tunnel.takeMoved()
        record.bytesIn += moved.fromClient
        record.bytesOut += moved.toClient
        if let reason {
            log.error(reason, status: record.status, requestID: record.requestID, requestIDLength: record.requestIDLength,
                      client: record.clientIP, clientLength: record.clientIPLength)
        }
        recordExchange()
    }

    /// Gives back what the tunnel holds and takes it off the worker's list.
    func leaveTunnel() {
        tunnel.release(pipes: worker.pipes, buffers: buffers)
        worker.tunnelClosed(self)
    }

    /// Whether the upstream's switch is to WebSocket (`Upgrade: websocket`, any case).
    func upgradeIsWebSocket(_ p: UnsafePointer<UInt8>) -> Bool {
        for i in 0..<headers.count where headers[i].kind == .upgrade {
            let f = headers[i]
            var found = false
            forEachListElement(p, Int(f.valueStart), Int(f.valueLength)) { s, n in
                if ByteClass.equalsLower(p + s, n, "websocket") { found = true }
            }
            if found { return true }
        }
        return false
    }
}

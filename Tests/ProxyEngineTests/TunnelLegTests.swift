import Glibc
@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// One tunnel direction over real loopback TCP sockets: a writer → [src … leg … dst] → a reader.
@Suite("Tunnel leg")
struct TunnelLegTests {
    /// A connected pair of non-blocking loopback TCP sockets.
    static func tcpPair() throws -> (Int32, Int32) {
        let l = try Sys.listen(SocketAddress("127.0.0.1:0")!, backlog: 4)
        defer { Sys.close(l) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(l, $0, &len) }
        }
        let c = try Sys.socket(family: Int32(AF_INET))
        _ = try Sys.connect(c, SocketAddress("127.0.0.1:\(UInt16(bigEndian: bound.sin_port))")!)
        var peer = sockaddr_storage()
        for _ in 0..<1000 {
            if let s = try Sys.accept(l, &peer) { return (c, s) }
            usleep(1000)
        }
        Sys.close(c)
        throw SysError("accept", EAGAIN)
    }

    /// Writes `data` into `writer` and reads it at `reader` while pumping the leg, then sends a FIN.
    /// Returns what the reader got and whether it saw the EOF.
    static func relay(_ data: [UInt8], useBuffers: Bool, pending: [UInt8] = [])
        throws -> (received: [UInt8], eof: Bool, leg: TunnelLeg, pipes: PipePool) {
        let (writer, src) = try tcpPair()
        let (dst, reader) = try tcpPair()
        defer { for fd in [writer, src, dst, reader] { Sys.close(fd) } }
        let pipes = PipePool()
        let buffers = BufferPool()
        var leg = TunnelLeg(useBuffers: useBuffers)
        if !pending.isEmpty {
            var b = buffers.take()
            b.append(pending)
            leg.pending = b
        }
        var srcIO = Readiness(), dstIO = Readiness()
        var sent = 0
        var received: [UInt8] = []
        var eof = false
        var scratch = [UInt8](repeating: 0, count: 65536)
        var finSent = false
        var rounds = 0
        while !eof && rounds < 200_000 {
            rounds += 1
            if sent < data.count {
                let n = data[sent...].withUnsafeBytes { send(writer, $0.baseAddress!, min($0.count, 100_000), Int32(MSG_NOSIGNAL)) }
                if n > 0 { sent += n }
            } else if !finSent {
                shutdown(writer, Int32(SHUT_WR))
                finSent = true
            }
            // Level-style: tell the leg both sockets may be ready; it clears what it finds blocked.
            srcIO.readable = true
            dstIO.writable = true
            _ = try leg.pump(from: .socket(src), to: .socket(dst), &srcIO, &dstIO, pipes: pipes, buffers: buffers)
            let n = scratch.withUnsafeMutableBytes { recv(reader, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { received += scratch[0..<n] } else if n == 0 { eof = true }
        }
        return (received, eof, leg, pipes)
    }

    static func randomBytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    @Test(arguments: [false, true])
    func movesEveryByteInOrderThenPassesTheFIN(useBuffers: Bool) throws {
        let data = Self.randomBytes(3 << 20, seed: 7)
        let r = try Self.relay(data, useBuffers: useBuffers)
        #expect(r.received.count == data.count)
        #expect(r.received == data)
        #expect(r.eof)
        #expect(r.leg.sourceClosed && r.leg.finForwarded)
        #expect(r.leg.moved == UInt64(data.count))
        // Empty pipes go back to the pool: an idle tunnel holds none.
        #expect(r.leg.pipe == nil && !r.leg.holdsBytes)
        #expect(r.pipes.open == (useBuffers ? 0 : 1))
    }

    @Test(arguments: [false, true])
    func bytesReadBeforeTheSwitchGoFirst(useBuffers: Bool) throws {
        let early = Array("early bytes ".utf8)
        let data = Self.randomBytes(200_000, seed: 9)
        let r = try Self.relay(data, useBuffers: useBuffers, pending: early)
        #expect(r.received == early + data)
        #expect(r.eof)
    }

    @Test func aClosedDestinationEndsTheLegWithAFailure() throws {
        let (writer, src) = try Self.tcpPair()
        let (dst, reader) = try Self.tcpPair()
        defer { for fd in [writer, src, dst] { Sys.close(fd) } }
        // The reader resets its connection (SO_LINGER 0), so writes to dst fail.
        var lg = linger(l_onoff: 1, l_linger: 0)
        setsockopt(reader, SOL_SOCKET, SO_LINGER, &lg, socklen_t(MemoryLayout<linger>.size))
        Sys.close(reader)
        usleep(20_000)
        let pipes = PipePool(), buffers = BufferPool()
        var leg = TunnelLeg(useBuffers: false)
        var srcIO = Readiness(), dstIO = Readiness()
        let chunk = [UInt8](repeating: 0x41, count: 4096)
        var failed = false
        for _ in 0..<100 where !failed {
            _ = chunk.withUnsafeBytes { send(writer, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            srcIO.readable = true
            dstIO.writable = true
            do { _ = try leg.pump(from: .socket(src), to: .socket(dst), &srcIO, &dstIO, pipes: pipes, buffers: buffers) } catch {
                failed = true
            }
        }
        #expect(failed)
        leg.release(pipes: pipes, buffers: buffers)
        #expect(leg.pipe == nil)
    }
}

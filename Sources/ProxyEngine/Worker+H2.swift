import IOCore
import HTTP1Codec

/// HTTP/2 on a worker: connections taken over from sessions (after ALPN, or on the h2c
/// preface), the sessions that proxy their streams, and the end-of-turn flush.
extension Worker {
    /// The client chose HTTP/2: its connection (same socket, same epoll slot) now belongs to an
    /// `H2Connection`. `leftover`: bytes already read (the h2c preface onward).
    func adoptH2(_ s: Session, leftover: IOBuffer?) {
        if h2.setup == nil { h2.setup = H2Setup(config) }
        let c = h2.connectionCache.popLast() ?? H2Connection(worker: self)
        var io = s.io
        io.readable = true  // OpenSSL may hold bytes that came with the handshake's last flight
        let (slot, generation) = (s.slot, s.generation)
        // The socket and its TLS session move to the connection, which closes them from now on.
        let (fd, transport) = s.handOverSocket()
        c.open(fd: fd, transport: transport, listener: s.listenerIndex, io: io, clientIP: s.record.clientIP, s.record.clientIPLength)
        c.slot = slot
        c.generation = generation
        replaceOwner(slot: slot, with: .h2(c))
        if let b = s.inBuf {
            if leftover != nil { c.feed(b.readPointer, b.count) }
            buffers.give(b)
            s.inBuf = nil
        }
        s.resetExchange()
        cacheSession(s)
        c.needsFlush()
    }

    /// Starts the session that proxies a stream whose request head is complete.
    func startStreamSession(_ st: H2Stream, _ c: H2Connection) {
        let s = popSession()
        let head = st.head!
        st.head = nil
        s.openStream(st, c, head: head)
        st.session = s
        c.sessionsRunning += 1
        let (slot, gen) = takeSlot(.session(s))
        s.slot = slot
        s.generation = gen
        s.start()
        s.drive()
    }

    func streamSessionClosed(_ s: Session) {
        unregister(slot: s.slot)
        cacheSession(s)
    }

    func h2Closed(_ c: H2Connection) {
        unregister(slot: c.slot)
        connectionClosed()
        if h2.connectionCache.count < 256 { h2.connectionCache.append(c) }
    }

    /// Writes what HTTP/2 connections gathered during this turn (one write each, whatever
    /// number of streams answered).
    func flushH2() {
        var i = 0
        while i < h2.dirty.count && i < 4096 {
            let c = h2.dirty[i]
            i += 1
            guard c.dirty else { continue }
            c.service()
        }
        h2.dirty.removeFirst(i)
    }
}

import CLinux
import Glibc
import HTTP1Codec
import IOCore
import RouteResolver

/// `placement_port` targets: a placed key whose container port is not known yet is looked up the
/// way the node's nginx does it today — `GET <api_base_url><path>?userId=<key>` with `X-WS-Token`,
/// the port in the `X-WS-Port` answer — on this event loop, then cached in the registry. A port
/// that refuses connections is forgotten, so the next request asks again.
extension Session {
    /// Starts the lookup for the key copied in `stickyKey`. False when it could not start (the
    /// request has been answered).
    func startPortLookup(node: RegistryNode, settings: EngineConfig.PortLookup) -> Bool {
        guard let url = UpstreamURL(node.apiBaseURL) else {
            log.error("port_lookup", "node \(node.name) has no usable api_base_url")
            worker.stats.upstreamError(.portLookup)
            respondError(502, "port lookup failed", reusable: true)
            return false
        }
        let index = worker.upstreams.index(for: url.address)
        let u = worker.makeUpstream()
        do {
            try u.connect(to: index)
        } catch {
            worker.recycleUnused(u)
            log.error("port_lookup", "node \(node.name): \(error)")
            worker.stats.upstreamError(.portLookup)
            respondError(502, "port lookup failed", reusable: true)
            return false
        }
        u.session = self
        lookup = u
        connectStartMs = worker.now
        var b = buffers.take()
        b.append("GET ")
        b.append(Array(settings.path.utf8))
        b.append(byte: 0x3F)
        b.append(Array(settings.keyParameter.utf8))
        b.append(byte: 0x3D)
        b.append(stickyKey, stickyKeyLength)
        b.append(" HTTP/1.1\r\nHost: ")
        b.append(Array(url.address.text.utf8))
        b.append("\r\nX-WS-Token: ")
        b.append(Array(settings.token.utf8))
        b.append("\r\nUser-Agent: switchyard\r\nConnection: close\r\n\r\n")
        lookupOut = b
        return true
    }

    /// Drives the lookup connection; on an answer, continues the exchange with the container.
    func stepPortLookup(_ l: UpstreamConnection) -> Bool {
        if !l.connected {
            guard l.io.writable else { return false }
            let err = l.finishConnect()
            if err != 0 { return failLookup("connect: \(SysError("connect", err))") }
        }
        var progress = false
        if let out = lookupOut, !out.isEmpty, l.io.writable {
            let r: IOResult
            do { r = try Sys.write(l.fd, out.readPointer, out.count) } catch { return failLookup("\(error)") }
            if case .bytes(let n) = r {
                lookupOut!.consume(n)
                progress = true
                if n < out.count { l.io.writable = false }
            } else {
                l.io.writable = false
            }
        }
        while l.io.readable {
            if l.inBuf == nil { l.inBuf = buffers.take() }
            guard l.inBuf!.writableCount > 0 else { return failLookup("answer head too large") }
            let want = l.inBuf!.writableCount
            let r: IOResult
            do { r = try Sys.read(l.fd, l.inBuf!.writePointer, want) } catch { return failLookup("\(error)") }
            switch r {
            case .bytes(let n):
                l.inBuf!.end += n
                if n < want && !l.io.hangup { l.io.readable = false }
                progress = true
            case .wouldBlock:
                l.io.readable = false
            case .eof:
                l.io.readable = false
                if !lookupAnswered(l) { return failLookup("closed before answering") }
                return true
            }
            if lookupAnswered(l) { return true }
        }
        return progress
    }

    /// Parses the answer once its head is complete. True when the exchange moved on (to the
    /// container, or to an error response).
    private func lookupAnswered(_ l: UpstreamConnection) -> Bool {
        guard let b = l.inBuf, b.count > 0 else { return false }
        switch respScanner.scan(b.readPointer, count: b.count) {
        case .needMore: return false
        case .failed: _ = failLookup("malformed answer"); return true
        case .complete(let length):
            let head: ResponseHead
            do {
                head = try ResponseHead.parse(UnsafePointer(b.base), start: b.start, end: b.start + length,
                                              headers: headers, requestMethod: .get)
            } catch {
                _ = failLookup("malformed answer")
                return true
            }
            respScanner.reset()
            guard head.status == 200, let port = headerPort(UnsafePointer(b.base)) else {
                _ = failLookup("status \(head.status) without a usable X-WS-Port")
                return true
            }
            dropLookup()
            try? worker.registry?.setHostPort(pool: stickyPool, key: stickyKeyString(), port: port, now: worker.wallMs)
            continueToContainer(port: port)
            return true
        }
    }

    /// The X-WS-Port value (1...65535) of the head just parsed into `headers`.
    private func headerPort(_ p: UnsafePointer<UInt8>) -> UInt16? {
        for i in 0..<headers.count {
            let f = headers[i]
            guard ByteClass.equalsLower(p + Int(f.nameStart), Int(f.nameLength), "x-ws-port") else { continue }
            let n = Int(f.valueLength)
            guard n >= 1 && n <= 5 else { return nil }
            var v = 0
            for j in 0..<n {
                let d = p[Int(f.valueStart) + j]
                guard d >= 0x30 && d <= 0x39 else { return nil }
                v = v * 10 + Int(d - 0x30)
            }
            return v >= 1 && v <= 65535 ? UInt16(v) : nil
        }
        return nil
    }

    /// Connects to the user's container: the node's host with `port`.
    func continueToContainer(port: UInt16) {
        guard let node = stickyNode, let index = worker.upstreams.containerIndex(node: node, port: port) else {
            respondError(502, "node address unusable", reusable: true)
            return
        }
        addressIndex = index
        containerPort = port
        upstreamChosen = true
        acquireUpstream(fresh: false)
    }

    private func failLookup(_ why: String) -> Bool {
        log.error("port_lookup", "node \(stickyNode?.name ?? "-") key \(stickyKeyString()): \(why)")
        dropLookup()
        worker.stats.upstreamError(.portLookup)
            respondError(502, "port lookup failed", reusable: true)
        return true
    }

    func dropLookup() {
        if let l = lookup {
            l.session = nil
            l.close()
            lookup = nil
        }
        if let b = lookupOut { buffers.give(b); lookupOut = nil }
    }

    /// A refused connect to a cached container port: forget the port so the next request asks
    /// the node again (the container may have moved to another port).
    func forgetContainerPortIfRefused(_ err: Int32) {
        guard containerPort != 0, err == ECONNREFUSED else { return }
        try? worker.registry?.setHostPort(pool: stickyPool, key: stickyKeyString(), port: 0, now: worker.wallMs)
        containerPort = 0
    }

    func stickyKeyString() -> String {
        String(decoding: UnsafeBufferPointer(start: stickyKey, count: stickyKeyLength), as: UTF8.self)
    }
}

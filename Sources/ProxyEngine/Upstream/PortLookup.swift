import HTTP1Codec
import IOCore
import RouteResolver

/// The sticky part of an exchange: the key (copied, since the head's bytes may be reused while a
/// port lookup runs), its pool and node, and the container port in use (`placement_port`
/// targets; 0: none). Owns the key's bytes; one per session, reset between exchanges.
struct StickyTarget: ~Copyable {
    static let keyCapacity = 64
    let keyBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: StickyTarget.keyCapacity)
    private(set) var keyLength = 0
    private(set) var pool = ""
    private(set) var node: RegistryNode?
    var containerPort: UInt16 = 0
    /// A pod route's exchange: the hop header (and the secret) the request head gets.
    var pod: PodLeg = .none

    deinit { keyBytes.deallocate() }

    /// The exchange is keyed (a sticky route matched and named its key).
    var isKeyed: Bool { keyLength > 0 }
    var key: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: keyBytes, count: keyLength) }
    var keyString: String { String(decoding: key, as: UTF8.self) }

    mutating func adopt(key: UnsafePointer<UInt8>, count: Int, pool: String, node: RegistryNode?) {
        // Keys are validated to at most 64 bytes (RouteResolver's KeyRules); never trust that here.
        let n = min(count, Self.keyCapacity)
        keyBytes.update(from: key, count: n)
        keyLength = n
        self.pool = pool
        self.node = node
    }

    mutating func reset() {
        node = nil
        keyLength = 0
        containerPort = 0
        pod = .none
    }
}

/// How a pod route's request goes on: to the local pod server or to the owning center, with a
/// hop chain that extends a proven center's (`trusted`) or starts anew.
enum PodLeg: Equatable {
    case none
    case local(trusted: Bool)
    case center(trusted: Bool)

    /// The request's hop chain came from a proven center (and is extended, not replaced).
    var trustedHops: Bool {
        switch self {
        case .local(let t), .center(let t): return t
        case .none: return false
        }
    }
}

/// A `placement_port` target's question to the node's API, the way the node's nginx asks it
/// today — `GET <path>?<keyParameter>=<key>` with `X-WS-Token`, the port in the `X-WS-Port`
/// answer — and the state of one asked: its connection and the request bytes not sent yet.
/// The bytes in and out are this type's; what an answer or a failure means for the exchange is
/// the session's (Session+PortLookup.swift).
struct PortLookup {
    /// The connection to the node's API while a lookup runs. Not owning: the worker's slot
    /// table owns it while it is registered, and `drop` closes it. Unmanaged so the check on
    /// every event of the session is a null test, not a retain/release pair.
    private(set) var connection: Unmanaged<UpstreamConnection>?
    /// The request, until it is sent whole.
    private var request: IOBuffer?

    var isRunning: Bool { connection != nil }

    enum Answer: Equatable {
        /// The head is not complete yet.
        case needMore
        case port(UInt16)
        case failed(String)
    }

    enum Step: Equatable {
        /// Still waiting; `progress`: bytes moved.
        case waiting(progress: Bool)
        case answered(UInt16)
        case failed(String)
    }

    /// Takes `connection` (connecting) and the request to send on it.
    mutating func start(_ connection: UpstreamConnection, request: IOBuffer) {
        self.connection = Unmanaged.passUnretained(connection)
        self.request = request
    }

    /// Closes the connection (detached from its session) and gives the request buffer back.
    mutating func drop(buffers: BufferPool) {
        if let c = connection?.takeUnretainedValue() {
            c.session = nil
            c.close()
            connection = nil
        }
        if let b = request { buffers.give(b); request = nil }
    }

    /// The request for `key` to the API at `host` (its `host:port`, for the Host field).
    static func writeRequest(into b: inout IOBuffer, _ settings: EngineConfig.PortLookup,
                             key: UnsafeBufferPointer<UInt8>, host: String) {
        b.append("GET ")
        b.append(Array(settings.path.utf8))
        b.append(byte: 0x3F)
        b.append(Array(settings.keyParameter.utf8))
        b.append(byte: 0x3D)
        if let base = key.baseAddress { b.append(base, key.count) }
        b.append(" HTTP/1.1\r\nHost: ")
        b.append(Array(host.utf8))
        b.append("\r\nX-WS-Token: ")
        b.append(Array(settings.token.utf8))
        b.append("\r\nUser-Agent: switchyard\r\nConnection: close\r\n\r\n")
    }

    /// Reads the answer at the front of `b`: a 200 with an `X-WS-Port` of 1...65535, or why not.
    /// `scanner` is reset once a head is complete.
    static func parseAnswer(_ b: IOBuffer, scanner: inout HeadScanner, headers: HeaderTable) -> Answer {
        guard b.count > 0 else { return .needMore }
        switch scanner.scan(b.readPointer, count: b.count) {
        case .needMore: return .needMore
        case .failed: return .failed("malformed answer")
        case .complete(let length):
            scanner.reset()
            let base = UnsafePointer(b.base)
            guard let head = try? ResponseHead.parse(base, start: b.start, end: b.start + length,
                                                     headers: headers, requestMethod: .get) else {
                return .failed("malformed answer")
            }
            guard head.status == 200, let port = headerPort(base, headers) else {
                return .failed("status \(head.status) without a usable X-WS-Port")
            }
            return .port(port)
        }
    }

    /// The X-WS-Port value (1...65535, digits only) of the head just parsed into `headers`.
    private static func headerPort(_ p: UnsafePointer<UInt8>, _ headers: HeaderTable) -> UInt16? {
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

    /// Moves the lookup's bytes: finishes the connect, sends the request, reads the answer.
    mutating func step(buffers: BufferPool, scanner: inout HeadScanner, headers: HeaderTable) -> Step {
        guard let l = connection?.takeUnretainedValue() else { return .waiting(progress: false) }
        if !l.connected {
            guard l.io.writable else { return .waiting(progress: false) }
            let err = l.finishConnect()
            if err != 0 { return .failed("connect: \(SysError("connect", err))") }
        }
        var progress = false
        if let out = request, !out.isEmpty, l.io.writable {
            let r: IOResult
            do { r = try Sys.write(l.fd, out.readPointer, out.count) } catch { return .failed("\(error)") }
            if case .bytes(let n) = r {
                request!.consume(n)
                progress = true
                if n < out.count { l.io.writable = false }
            } else {
                l.io.writable = false
            }
        }
        while l.io.readable {
            if l.inBuf == nil { l.inBuf = buffers.take() }
            guard l.inBuf!.writableCount > 0 else { return .failed("answer head too large") }
            let want = l.inBuf!.writableCount
            let r: IOResult
            do { r = try Sys.read(l.fd, l.inBuf!.writePointer, want) } catch { return .failed("\(error)") }
            switch r {
            case .bytes(let n):
                l.inBuf!.end += n
                if n < want && !l.io.hangup { l.io.readable = false }
                progress = true
            case .wouldBlock:
                l.io.readable = false
            case .eof:
                l.io.readable = false
                switch Self.parseAnswer(l.inBuf!, scanner: &scanner, headers: headers) {
                case .port(let port): return .answered(port)
                case .failed(let why): return .failed(why)
                case .needMore: return .failed("closed before answering")
                }
            }
            switch Self.parseAnswer(l.inBuf!, scanner: &scanner, headers: headers) {
            case .port(let port): return .answered(port)
            case .failed(let why): return .failed(why)
            case .needMore: break
            }
        }
        return .waiting(progress: progress)
    }
}

/// Builds synthetic ClientHellos field by field, remembering where each length field sits, so
/// a test can break exactly one of them.
struct HelloBuilder {
    var legacyVersion: UInt16 = 0x0303
    var sessionID: [UInt8] = Array(repeating: 0xAB, count: 32)
    var cipherSuites: [UInt8] = [0x13, 0x01, 0x13, 0x02]
    var compression: [UInt8] = [0]
    /// nil: no extensions block at all (a TLS 1.2-era hello may omit it).
    var extensions: [(type: UInt16, data: [UInt8])]? = [
        (0, HelloBuilder.serverName(["node1.edge.test"])),
        (16, HelloBuilder.alpn(["h2", "http/1.1"])),
        (43, [4, 0x03, 0x04, 0x03, 0x03]),
        (51, [0x00, 0x00]),
    ]
    var recordVersion: UInt16 = 0x0301
    var handshakeType: UInt8 = 1

    /// A length field: its offset in `bytes()` and its width in bytes.
    struct LengthField { var name: String; var offset: Int; var width: Int }

    static func serverName(_ names: [String], type: UInt8 = 0) -> [UInt8] {
        var list: [UInt8] = []
        for n in names { list += [type] + be16(n.utf8.count) + Array(n.utf8) }
        return be16(list.count) + list
    }

    static func alpn(_ names: [String]) -> [UInt8] {
        var list: [UInt8] = []
        for n in names { list += [UInt8(n.utf8.count)] + Array(n.utf8) }
        return be16(list.count) + list
    }

    static func be16(_ n: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] }

    /// The hello body (after the 4-byte handshake header), and its length fields' offsets in it.
    func body() -> (bytes: [UInt8], lengths: [LengthField]) {
        var b = Self.be16(Int(legacyVersion)) + Array(repeating: 0x5A, count: 32)
        var f: [LengthField] = []
        f.append(.init(name: "session_id", offset: b.count, width: 1))
        b += [UInt8(sessionID.count)] + sessionID
        f.append(.init(name: "cipher_suites", offset: b.count, width: 2))
        b += Self.be16(cipherSuites.count) + cipherSuites
        f.append(.init(name: "compression_methods", offset: b.count, width: 1))
        b += [UInt8(compression.count)] + compression
        guard let extensions else { return (b, f) }
        f.append(.init(name: "extensions", offset: b.count, width: 2))
        let blockStart = b.count
        b += [0, 0]
        for e in extensions {
            b += Self.be16(Int(e.type))
            f.append(.init(name: "extension \(e.type)", offset: b.count, width: 2))
            b += Self.be16(e.data.count)
            let dataAt = b.count
            b += e.data
            // The inner lengths of the extensions this parser reads.
            switch e.type {
            case 0 where e.data.count >= 5:
                f.append(.init(name: "server_name list", offset: dataAt, width: 2))
                f.append(.init(name: "host_name", offset: dataAt + 3, width: 2))
            case 16 where e.data.count >= 3:
                f.append(.init(name: "alpn list", offset: dataAt, width: 2))
                f.append(.init(name: "alpn name", offset: dataAt + 2, width: 1))
            case 43 where e.data.count >= 1:
                f.append(.init(name: "supported_versions", offset: dataAt, width: 1))
            default: break
            }
        }
        let block = Self.be16(b.count - blockStart - 2)
        b[blockStart] = block[0]
        b[blockStart + 1] = block[1]
        return (b, f)
    }

    /// The whole hello in one record, and every length field's offset in it (record and
    /// handshake headers included).
    func wire() -> (bytes: [UInt8], lengths: [LengthField]) {
        let (b, inner) = body()
        let n = b.count + 4
        var out: [UInt8] = [22, UInt8(recordVersion >> 8), UInt8(recordVersion & 0xFF)] + Self.be16(n)
        out += [handshakeType, UInt8(truncatingIfNeeded: b.count >> 16)] + Self.be16(b.count) + b
        let outer = [LengthField(name: "record", offset: 3, width: 2), LengthField(name: "handshake", offset: 6, width: 3)]
        return (out, outer + inner.map { LengthField(name: $0.name, offset: $0.offset + 9, width: $0.width) })
    }

    func bytes() -> [UInt8] { wire().bytes }
}

extension [UInt8] {
    /// A copy with the big-endian length field at `field` changed by `delta` (wrapping).
    func adjusting(_ field: HelloBuilder.LengthField, by delta: Int) -> [UInt8] {
        var c = self
        var v = 0
        for i in 0..<field.width { v = v << 8 | Int(c[field.offset + i]) }
        v = (v + delta) & ((1 << (8 * field.width)) - 1)
        for i in 0..<field.width { c[field.offset + i] = UInt8(truncatingIfNeeded: v >> (8 * (field.width - 1 - i))) }
        return c
    }
}

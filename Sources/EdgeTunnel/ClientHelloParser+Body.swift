/// The ClientHello body (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 for TLS 1.2 clients), parsed from
/// one contiguous buffer: the fields in order, then the extensions the router needs.
extension ClientHelloParser {
    /// Extension types read here (IANA TLS ExtensionType registry).
    enum ExtensionType {
        static let serverName = 0
        static let alpn = 16
        static let supportedVersions = 43
    }

    static func parseBody(_ body: UnsafeRawBufferPointer, recordBytes: Int) throws(ClientHelloMalformed) -> ClientHelloInfo {
        var r = ByteReader(body)
        let legacyVersion = try r.u16()
        guard legacyVersion >> 8 == 3 else { throw .legacyVersion }
        _ = try r.bytes(32)                                          // random
        let sessionID = try r.u8()
        guard sessionID <= 32 else { throw .sessionID }
        _ = try r.bytes(sessionID)
        let suites = try r.u16()
        guard suites >= 2, suites % 2 == 0 else { throw .cipherSuites }
        _ = try r.bytes(suites)
        let methods = try r.u8()
        guard methods >= 1 else { throw .compressionMethods }
        _ = try r.bytes(methods)
        var info = ClientHelloInfo(serverName: nil, alpn: [], legacyVersion: UInt16(legacyVersion), offersTLS13: false,
                                   recordBytes: recordBytes)
        // The extensions block is optional (RFC 5246 §7.4.1.2); present, it fills the body exactly.
        guard !r.isAtEnd else { return info }
        let blockLength = try r.u16()
        guard blockLength == r.remaining else { throw .extensionsLength }
        var block = ByteReader(try r.bytes(blockLength))
        // One bit per extension type, on the stack: a hello may hold ~4,000 empty extensions,
        // so a pairwise duplicate search would cost millions of comparisons.
        let result: Result<ClientHelloInfo, ClientHelloMalformed> =
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 1024) { seen in
                seen.initialize(repeating: 0)
                do throws(ClientHelloMalformed) {
                    while !block.isAtEnd {
                        let type = try block.u16()
                        let data = try block.bytes(try block.u16())
                        let word = Int(type >> 6), bit = UInt64(1) << (type & 63)
                        guard seen[word] & bit == 0 else { throw .duplicateExtension }
                        seen[word] |= bit
                        switch type {
                        case ExtensionType.serverName: info.serverName = try serverName(data)
                        case ExtensionType.alpn: info.alpn = try alpn(data)
                        case ExtensionType.supportedVersions: info.offersTLS13 = try offersTLS13(data)
                        default: break                                      // unknown: skipped
                        }
                    }
                    return .success(info)
                } catch {
                    return .failure(error)
                }
            }
        return try result.get()
    }

    /// server_name (RFC 6066 §3): a ServerNameList holding exactly one host_name. Entries of
    /// other name types are skipped (the RFC leaves room for them; none is defined).
    static func serverName(_ data: UnsafeRawBufferPointer) throws(ClientHelloMalformed) -> String {
        var r = ByteReader(data)
        guard let listLength = try? r.u16(), listLength == r.remaining, listLength > 0 else { throw .serverNameList }
        var list = ByteReader(try r.bytes(listLength))
        var hostName: UnsafeRawBufferPointer?
        while !list.isAtEnd {
            let nameType = try list.u8()
            let name = try list.bytes(try list.u16())
            guard nameType == 0 else { continue }
            guard hostName == nil else { throw .serverNameList }
            hostName = name
        }
        guard let hostName else { throw .serverNameList }
        return try dnsName(hostName)
    }

    /// A host name as RFC 6066 §3 and RFC 1035 §2.3.4 shape it: at most 255 bytes, labels of
    /// 1...63 bytes of letters, digits and hyphens. One trailing dot (an absolute name, which
    /// RFC 6066 says not to send but some clients do) is dropped. Lowercased: DNS names compare
    /// case-insensitively (RFC 4343), routes are stored lowercase.
    static func dnsName(_ raw: UnsafeRawBufferPointer) throws(ClientHelloMalformed) -> String {
        guard raw.count <= 255 else { throw .hostName }
        var count = raw.count
        if count > 0 && raw[count - 1] == UInt8(ascii: ".") { count -= 1 }
        guard count > 0 else { throw .hostName }
        var label = 0
        for i in 0..<count {
            let b = raw[i]
            switch b {
            case UInt8(ascii: "."):
                guard label > 0 else { throw .hostName }              // empty label
                label = 0
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                label += 1
                guard label <= 63 else { throw .hostName }
            default:
                throw .hostName
            }
        }
        guard label > 0 else { throw .hostName }                      // "a.." (two trailing dots)
        return String(unsafeUninitializedCapacity: count) { out in
            for i in 0..<count {
                let b = raw[i]
                out[i] = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
            }
            return count
        }
    }

    /// application_layer_protocol_negotiation (RFC 7301 §3.1): a non-empty list of non-empty names.
    static func alpn(_ data: UnsafeRawBufferPointer) throws(ClientHelloMalformed) -> [[UInt8]] {
        var r = ByteReader(data)
        guard let listLength = try? r.u16(), listLength == r.remaining, listLength > 0 else { throw .alpn }
        var list = ByteReader(try r.bytes(listLength))
        var names: [[UInt8]] = []
        while !list.isAtEnd {
            let length = try list.u8()
            guard length > 0 else { throw .alpn }
            names.append(Array(try list.bytes(length)))
        }
        return names
    }

    /// supported_versions in a ClientHello (RFC 8446 §4.2.1): `versions<2..254>`.
    static func offersTLS13(_ data: UnsafeRawBufferPointer) throws(ClientHelloMalformed) -> Bool {
        var r = ByteReader(data)
        guard let length = try? r.u8(), length == r.remaining, length >= 2, length % 2 == 0 else {
            throw .supportedVersions
        }
        var offers = false
        while !r.isAtEnd { offers = try r.u16() == 0x0304 || offers }
        return offers
    }
}

/// Big-endian reads from a bounded buffer; every read past the end throws `.truncated`.
struct ByteReader {
    private let base: UnsafeRawBufferPointer
    private var at = 0

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var remaining: Int { base.count - at }
    var isAtEnd: Bool { at == base.count }

    mutating func u8() throws(ClientHelloMalformed) -> Int {
        guard remaining >= 1 else { throw .truncated }
        defer { at += 1 }
        return Int(base[at])
    }

    mutating func u16() throws(ClientHelloMalformed) -> Int {
        guard remaining >= 2 else { throw .truncated }
        defer { at += 2 }
        return Int(base[at]) << 8 | Int(base[at + 1])
    }

    /// The next `n` bytes (n ≥ 0), without copying.
    mutating func bytes(_ n: Int) throws(ClientHelloMalformed) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw .truncated }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: base[at..<(at + n)])
    }
}

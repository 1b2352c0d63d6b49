import EdgeTunnel
import Testing

/// Broken and hostile hellos: each is refused with its reason, whole and split at every byte.
@Suite struct ClientHelloMalformedTests {
    /// The step for `input` whole, after checking that every two-piece split says the same.
    func step(_ input: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> ClientHelloParser.Step {
        let whole = parse(input)
        for cut in 0...input.count where parse(input, splits: [cut]) != whole {
            Issue.record("cut at \(cut): \(parse(input, splits: [cut])) vs \(whole)", sourceLocation: sourceLocation)
            break
        }
        return whole
    }

    func hello(_ edit: (inout HelloBuilder) -> Void) -> [UInt8] {
        var b = HelloBuilder()
        edit(&b)
        return b.bytes()
    }

    @Test func builderHelloIsValid() {
        #expect(step(HelloBuilder().bytes()) == .hello(.init(
            serverName: "node1.edge.test", alpn: [Array("h2".utf8), Array("http/1.1".utf8)],
            legacyVersion: 0x0303, offersTLS13: true, recordBytes: HelloBuilder().bytes().count)))
        // No extensions block at all is allowed (RFC 5246 §7.4.1.2).
        guard case .hello(let bare) = step(hello { $0.extensions = nil }) else { Issue.record("no hello"); return }
        #expect(bare.serverName == nil && bare.alpn.isEmpty && !bare.offersTLS13)
    }

    /// Each length field one too short and one too long. The two outer lengths decide in a
    /// known way (the stream may still be arriving); every inner one is malformed.
    @Test func lengthsOffByOne() {
        let (bytes, fields) = HelloBuilder().wire()
        #expect(fields.count == 15)
        for f in fields {
            for delta in [-1, 1] {
                let got = step(bytes.adjusting(f, by: delta))
                switch (f.name, delta) {
                case ("record", 1), ("handshake", -1):
                    #expect(got == .malformed(.trailingRecordBytes), "\(f.name) \(delta)")
                case ("record", -1), ("handshake", 1):
                    #expect(got == .needMore, "\(f.name) \(delta)")   // the rest is yet to come
                default:
                    guard case .malformed = got else { Issue.record("\(f.name) \(delta): \(got)"); continue }
                }
            }
        }
    }

    @Test func specificLengthReasons() {
        let (bytes, fields) = HelloBuilder().wire()
        let field = { (n: String) in fields.first { $0.name == n }! }
        #expect(step(bytes.adjusting(field("extensions"), by: 1)) == .malformed(.extensionsLength))
        #expect(step(bytes.adjusting(field("cipher_suites"), by: -1)) == .malformed(.cipherSuites))
        #expect(step(bytes.adjusting(field("session_id"), by: 1)) == .malformed(.sessionID))
        #expect(step(bytes.adjusting(field("server_name list"), by: 1)) == .malformed(.serverNameList))
        #expect(step(bytes.adjusting(field("alpn list"), by: -1)) == .malformed(.alpn))
        #expect(step(bytes.adjusting(field("supported_versions"), by: 1)) == .malformed(.supportedVersions))
        #expect(step(hello { $0.cipherSuites = [] }) == .malformed(.cipherSuites))
        #expect(step(hello { $0.compression = [] }) == .malformed(.compressionMethods))
        #expect(step(hello { $0.sessionID = Array(repeating: 1, count: 33) }) == .malformed(.sessionID))
        #expect(step(hello { $0.legacyVersion = 0x0203 }) == .malformed(.legacyVersion))
        // A body too short for its fixed fields.
        #expect(step([22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0]) == .malformed(.truncated))
        #expect(step([22, 3, 1, 0, 4, 1, 0, 0, 0]) == .malformed(.truncated))
    }

    @Test func duplicateExtensions() {
        #expect(step(hello { $0.extensions! += [(0, HelloBuilder.serverName(["other.edge.test"]))] })
                == .malformed(.duplicateExtension))
        #expect(step(hello { $0.extensions! += [(0xFE0D, []), (0xFE0D, [])] }) == .malformed(.duplicateExtension))
        // Distinct unknown types, GREASE among them (RFC 8701), are skipped.
        guard case .hello = step(hello { $0.extensions! += [(0x0A0A, []), (0xFAFA, [0]), (0xFFFF, [1, 2])] })
        else { Issue.record("unknown extensions refused"); return }
    }

    @Test func serverNameRules() {
        func name(_ n: String) -> ClientHelloParser.Step {
            parse(hello { $0.extensions![0] = (0, HelloBuilder.serverName([n])) })
        }
        func accepted(_ n: String) -> String? {
            guard case .hello(let h) = name(n) else { return nil }
            return h.serverName
        }
        #expect(accepted("Node1.EDGE.Test") == "node1.edge.test")
        #expect(accepted("node1.edge.test.") == "node1.edge.test")       // absolute name
        #expect(accepted("localhost") == "localhost")
        #expect(accepted("a-b.c0") == "a-b.c0")
        #expect(accepted(String(repeating: "a", count: 63) + ".test") != nil)
        let long255 = [String](repeating: String(repeating: "b", count: 63), count: 4).joined(separator: ".") // 255
        #expect(accepted(long255) == long255)
        for bad in ["", ".", "..", "a..b", ".a", "a.b..", "node_1.edge.test", "n\u{F6}de.test", "a b", "a/b", "a:443",
                    "x\u{0}y", String(repeating: "a", count: 64) + ".test", long255 + "c", "[::1]"] {
            #expect(name(bad) == .malformed(.hostName), "\(bad)")
        }
        // Exactly one host_name: two in one list, none, or an empty list are refused.
        #expect(step(hello { $0.extensions![0] = (0, HelloBuilder.serverName(["a.test", "b.test"])) })
                == .malformed(.serverNameList))
        #expect(step(hello { $0.extensions![0] = (0, HelloBuilder.serverName(["a.test"], type: 1)) })
                == .malformed(.serverNameList))
        #expect(step(hello { $0.extensions![0] = (0, [0, 0]) }) == .malformed(.serverNameList))
        #expect(step(hello { $0.extensions![0] = (0, []) }) == .malformed(.serverNameList))
        // An entry of another name type beside the host_name is skipped (RFC 6066 §3).
        var both = HelloBuilder.serverName(["x"], type: 7)
        both = HelloBuilder.be16(both.count - 2 + 3 + 6) + both[2...] + [0, 0, 6] + Array("a.test".utf8)
        guard case .hello(let h) = step(hello { $0.extensions![0] = (0, both) }) else { Issue.record("refused"); return }
        #expect(h.serverName == "a.test")
    }

    @Test func alpnAndVersionsRules() {
        #expect(step(hello { $0.extensions![1] = (16, [0, 0]) }) == .malformed(.alpn))
        #expect(step(hello { $0.extensions![1] = (16, [0, 3, 3, 0x68, 0x32]) }) == .malformed(.truncated))
        #expect(step(hello { $0.extensions![1] = (16, [0, 4, 2, 0x68, 0x32, 0]) }) == .malformed(.alpn))
        #expect(step(hello { $0.extensions![2] = (43, [3, 3, 4, 3]) }) == .malformed(.supportedVersions))
        #expect(step(hello { $0.extensions![2] = (43, [0]) }) == .malformed(.supportedVersions))
        guard case .hello(let h) = step(hello { $0.extensions![2] = (43, [2, 0x03, 0x03]) }) else { return }
        #expect(!h.offersTLS13)
    }

    @Test func recordLayerRules() {
        var b = HelloBuilder().bytes()
        #expect(step(HelloBuilder.recordAs(b, version: 0x0300)).isHello)            // SSL 3.0 record layer
        #expect(step(HelloBuilder.recordAs(b, version: 0x0304)).isHello)
        #expect(step(HelloBuilder.recordAs(b, version: 0x0305)) == .malformed(.recordVersion))
        #expect(step(HelloBuilder.recordAs(b, version: 0x0203)) == .malformed(.recordVersion))
        #expect(step(HelloBuilder.recordAs(b, version: 0x0403)) == .malformed(.recordVersion))
        #expect(step([22, 3, 1, 0, 0]) == .malformed(.emptyRecord))
        #expect(step([22, 3, 1, 0x40, 0x01]) == .malformed(.recordOverflow))           // 16,385
        #expect(step([22, 3, 1, 0xFF, 0xFF, 1]) == .malformed(.recordOverflow))
        // A non-handshake first record, plain HTTP, an SSLv2-format hello: not TLS, from byte one.
        for first: UInt8 in [20, 21, 23, 24, 0x80, 0] {
            #expect(parse([first]) == .notTLS)
        }
        #expect(step(Array("GET / HTTP/1.1\r\nHost: node1.edge.test\r\n\r\n".utf8)) == .notTLS)
        #expect(step(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)) == .notTLS)
        // A later record of another type mid-hello (RFC 8446 §5.1: no interleaving).
        let split = records(handshakeBytes(b), sizes: [20])
        var alertInside = Array(split[..<25])
        alertInside += [21, 3, 3, 0, 2, 2, 40]
        #expect(step(alertInside) == .malformed(.recordType))
        // Not a client_hello (server_hello, 2), decided on the type byte.
        b[5] = 2
        #expect(step(b) == .malformed(.handshakeType))
        #expect(parse(Array(b[..<6])) == .malformed(.handshakeType))
    }

    @Test func sizeBounds() {
        // A padding extension makes a body of exactly 16 KiB: two records, accepted.
        func padded(to bodyBytes: Int) -> [UInt8] {
            let base = HelloBuilder().body().bytes.count
            let h = hello { $0.extensions! += [(21, Array(repeating: 0, count: bodyBytes - base - 4))] }
            return records(handshakeBytes(h), sizes: [16384])
        }
        let max = padded(to: 16384)
        #expect(max.count == 16384 + 4 + 10)
        #expect(step(max).isHello)
        // One byte more is refused as soon as the handshake header announces it.
        let over = padded(to: 16385)
        #expect(parse(Array(over[..<9])) == .tooLarge)
        #expect(parse([22, 3, 1, 0, 4, 1, 0xFF, 0xFF, 0xFF]) == .tooLarge)
        // The wire bound: a 10 KiB hello in 100-byte records fits (10.5 KiB); in 1-byte records
        // (60 KiB of wire) it is refused once the records pass 32 KiB.
        let tenK = handshakeBytes(padded(to: 10 * 1024))
        #expect(parse(records(tenK, sizes: [100])).isHello)
        #expect(parse(records(tenK, sizes: [1])) == .tooLarge)
        // A record whose announced length overruns the wire bound is refused at its header.
        let tight = ClientHelloParser(maxBodyBytes: 16384, maxWireBytes: 100)
        #expect(parse([22, 3, 1, 0, 96], parser: tight) == .tooLarge)
        #expect(parse([22, 3, 1, 0, 95], parser: tight) == .needMore)
        // A body bigger than what is left of the bound after this record is refused early.
        #expect(parse([22, 3, 1, 0, 10, 1, 0, 0, 200], parser: tight) == .tooLarge)
    }
}

extension HelloBuilder {
    /// `hello` with its (single) record's legacy_record_version replaced.
    static func recordAs(_ hello: [UInt8], version: UInt16) -> [UInt8] {
        var h = hello
        h[1] = UInt8(version >> 8)
        h[2] = UInt8(version & 0xFF)
        return h
    }
}

extension ClientHelloParser.Step {
    var isHello: Bool { if case .hello = self { true } else { false } }
}

import Foundation
@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import RouteResolver
import Testing

/// The request head of a pod route: `X-Switchyard-Hop` and `X-Switchyard-Cluster` from the client
/// never pass; the gateway's own chain (extended only when trusted) and, towards a center, the
/// secret are written once.
@Suite("Pod routes: hop header and cluster secret in the rewritten head")
struct ClusterHeadTests {
    static let cluster = ClusterIdentity(nodeID: "center-b", centerPool: "center", secret: Array("s3cret-0123456789".utf8),
                                         maxHops: 1, clusterListeners: [true])

    func rewrite(_ fields: String, pod: PodLeg) throws -> String {
        let text = "GET /alice/x HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n"
        let bytes = Array(text.utf8)
        let headers = HeaderTable(capacity: 16)
        return try bytes.withUnsafeBufferPointer { p in
            let head = try RequestHead.parse(p.baseAddress!, start: 0, end: p.count, headers: headers)
            var out = IOBuffer(capacity: 4096)
            defer { out.base.deallocate() }
            let ip = Array("10.0.0.9".utf8), id = Array("0123456789abcdef0123456789abcdef".utf8)
            ip.withUnsafeBufferPointer { ipp in
                id.withUnsafeBufferPointer { idp in
                    HeadWriter.request(into: &out, p.baseAddress!, head, headers, clientIP: ipp.baseAddress!, clientIPLength: ip.count,
                                       requestID: idp.baseAddress!, requestIDLength: id.count, pod: pod, cluster: Self.cluster)
                }
            }
            return String(decoding: UnsafeBufferPointer(start: out.base + out.start, count: out.count), as: UTF8.self)
        }
    }

    func values(_ head: String, _ name: String) -> [String] {
        head.split(separator: "\r\n").compactMap { line -> String? in
            let text = String(line)
            guard let colon = text.firstIndex(of: ":"), text[..<colon].lowercased() == name.lowercased() else { return nil }
            return String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test("A client's hop and secret are dropped; a local pod request names this center only")
    func clientCopiesDropped() throws {
        let h = try rewrite("X-Switchyard-Hop: evil\r\nx-switchyard-cluster: guess\r\nX-Other: 1\r\n", pod: .local(trusted: false))
        #expect(values(h, "X-Switchyard-Hop") == ["center-b"])
        #expect(values(h, "X-Switchyard-Cluster").isEmpty)
        #expect(values(h, "X-Other") == ["1"])
    }

    @Test("A trusted chain is extended; towards a center the secret goes once")
    func trustedChain() throws {
        let h = try rewrite("X-Switchyard-Hop: center-a\r\nX-Switchyard-Cluster: s3cret-0123456789\r\n", pod: .center(trusted: true))
        #expect(values(h, "X-Switchyard-Hop") == ["center-a, center-b"])
        #expect(values(h, "X-Switchyard-Cluster") == ["s3cret-0123456789"])
        let untrusted = try rewrite("X-Switchyard-Hop: center-a\r\n", pod: .center(trusted: false))
        #expect(values(untrusted, "X-Switchyard-Hop") == ["center-b"])
    }

    @Test("Other routes drop both headers and add neither")
    func otherRoutes() throws {
        let h = try rewrite("X-Switchyard-Hop: center-a\r\nX-Switchyard-Cluster: s3cret-0123456789\r\n", pod: .none)
        #expect(values(h, "X-Switchyard-Hop").isEmpty && values(h, "X-Switchyard-Cluster").isEmpty)
        #expect(h.hasSuffix("\r\n\r\n"))
    }
}

// 100 MB bodies in both directions, with the gateway's memory watched while
// they stream: "never buffer without a bound" (DESIGN.md) means its RSS stays
// flat whatever the body size.

import Foundation
import Testing

/// Serialized: four 100 MB transfers at once on a 2-core machine would only
/// measure contention, and the RSS bound is per transfer.
@Suite("Streaming large bodies", .serialized)
struct StreamingTests {
    static let size = 100 * 1024 * 1024
    /// Well under the body size: a gateway that buffers a body cannot pass.
    static let rssLimitKiB = 64 * 1024

    private func checkRSS(_ sampler: RSSSampler, _ what: String) {
        let (count, peak) = sampler.stop()
        print("gateway RSS peak during \(what): \(peak) KiB over \(count) samples")
        #expect(count > 0, "no RSS samples taken during \(what)")
        #expect(peak < Self.rssLimitKiB, "gateway RSS peaked at \(peak / 1024) MiB during \(what) (limit \(Self.rssLimitKiB / 1024) MiB)")
    }

    @Test("100 MB upload with Content-Length streams through with flat memory")
    func uploadContentLength() throws {
        let scope = try Scope("up-cl")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        let file = try scope.makePayload("up.bin", size: Self.size)
        let digest = try scope.sha256(ofFile: file)

        let sampler = RSSSampler(gw.child)
        // -T streams the file with its Content-Length (and Expect: 100-continue).
        let r = try scope.curl(["-X", "POST", "-T", file, gw.url("/upload")], maxTime: 90)
        checkRSS(sampler, "a Content-Length upload")
        #expect(r.status == 200, "\(r.summary)")
        #expect(r.json?["size"] as? Int == Self.size, "\(r.bodyText)")
        #expect(r.json?["sha256"] as? String == digest, "upstream received different bytes")
    }

    @Test("100 MB chunked upload streams through with flat memory")
    func uploadChunked() throws {
        let scope = try Scope("up-ch")
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        let file = try scope.makePayload("up.bin", size: Self.size)
        let digest = try scope.sha256(ofFile: file)

        let sampler = RSSSampler(gw.child)
        let r = try scope.curl(["-X", "POST", "-T", file, "-H", "Transfer-Encoding: chunked", gw.url("/upload")],
                               maxTime: 90)
        checkRSS(sampler, "a chunked upload")
        #expect(r.status == 200, "\(r.summary)")
        #expect(r.json?["size"] as? Int == Self.size, "\(r.bodyText)")
        #expect(r.json?["sha256"] as? String == digest, "upstream received different bytes")
    }

    @Test("100 MB download with Content-Length streams through with flat memory")
    func downloadContentLength() throws {
        try download(query: "", label: "dl-cl")
    }

    @Test("100 MB chunked download streams through with flat memory")
    func downloadChunked() throws {
        try download(query: "?chunked=1", label: "dl-ch")
    }

    private func download(query: String, label: String) throws {
        let scope = try Scope(label)
        defer { scope.close() }
        let up = try scope.startUpstreams()
        let gw = try scope.startGateway(to: up.addresses)
        let out = scope.path("down.bin")

        let sampler = RSSSampler(gw.child)
        let r = try scope.curl([gw.url("/bytes/\(Self.size)\(query)")], maxTime: 90, bodyFile: out)
        checkRSS(sampler, "a download (\(label))")
        #expect(r.status == 200, "\(r.summary)")
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? -1
        #expect(size == Self.size, "downloaded \(size) bytes")
        let expected = try #require(r.header("X-Body-SHA256"), "upstream digest header missing")
        #expect(try scope.sha256(ofFile: out) == expected, "client received different bytes")
    }
}

import Testing
@testable import TLSTerminator

@Suite("SNI lookup and covers")
struct CertificateLookupTests {
    let set: CertificateSet

    init() throws {
        set = try CertificateSet.load(directory: TestPKI.shared.certs)
    }

    private func names(_ sni: String?) -> [String] { set.lookup(serverName: sni).names }

    @Test func exactNamesFirst() {
        #expect(names("a.example.com") == ["a.example.com", "www.a.example.com"])
        #expect(names("www.a.example.com") == ["a.example.com", "www.a.example.com"])
        #expect(names("b.example.com") == ["b.example.com"])
        // An exact certificate beats the wildcard that also covers the name.
        #expect(names("special.apps.example.com") == ["special.apps.example.com"])
    }

    @Test func wildcardCoversExactlyOneLabel() {
        #expect(names("x.apps.example.com") == ["*.apps.example.com"])
        #expect(names("x-y.apps.example.com") == ["*.apps.example.com"])
        let fallback = set.defaultCertificate.names
        #expect(names("apps.example.com") == fallback)
        #expect(names("a.b.apps.example.com") == fallback)
        #expect(names(".apps.example.com") == fallback)
    }

    @Test func defaultForNoNameOrUnknownName() {
        let d = set.defaultCertificate
        #expect(set.lookup(serverName: nil) === d)
        #expect(set.lookup(serverName: "") === d)
        #expect(set.lookup(serverName: "unknown.example.org") === d)
        #expect(set.lookup(serverName: "example.com") === d)
    }

    @Test func caseAndTrailingDotDoNotMatter() {
        #expect(names("B.Example.COM") == ["b.example.com"])
        #expect(names("b.example.com.") == ["b.example.com"])
        #expect(names("X.APPS.example.com.") == ["*.apps.example.com"])
    }

    @Test func coversFollowsTheSameRules() {
        let apps = set.lookup(serverName: "x.apps.example.com")
        #expect(apps.covers("x.apps.example.com"))
        #expect(apps.covers("Y.Apps.Example.Com."))
        #expect(!apps.covers("apps.example.com"))
        #expect(!apps.covers("a.b.apps.example.com"))
        #expect(!apps.covers("b.example.com"))
        #expect(!apps.covers(""))
        let a = set.lookup(serverName: "a.example.com")
        #expect(a.covers("www.a.example.com"))
        #expect(!a.covers("x.a.example.com"))
        var host: [UInt8] = Array("WWW.A.EXAMPLE.COM".utf8)
        #expect(host.withUnsafeMutableBytes { a.covers(UnsafeRawBufferPointer($0)) })
    }

    @Test func nameIndexKeepsTheFirstOfDuplicates() {
        let index = NameIndex([(Array("x.org".utf8), 1), (Array("y.org".utf8), 2), (Array("x.org".utf8), 3)])
        func find(_ s: String) -> Int? { var s = s; return s.withUTF8 { index.find(UnsafeRawBufferPointer($0)) } }
        #expect(find("x.org") == 1)
        #expect(find("Y.ORG") == 2)
        #expect(find("z.org") == nil)
    }
}

// The sticky cookie on HTTPS listeners (issue 16's loose ends): `Secure` there (RFC 6265
// §4.1.2.5: a browser then sends it back over HTTPS only), not on plain listeners.

import Foundation
import Testing

@Suite("Sticky cookie over HTTPS")
struct SecureCookieTests {
    @Test("Set-Cookie carries Secure on a TLS listener, over HTTP/1.1 and HTTP/2, and not on a plain one")
    func secureOnTLS() throws {
        let scope = try Scope("secure-cookie")
        defer { scope.close() }
        let up = try scope.startUpstreams(1)
        let pki = try ListenerPKI.shared()
        let certs = scope.path("certs")
        try pki.install(["default"], into: certs)
        let tls = try Ports.free(), plain = try Ports.free()
        let yaml = """
        workers: 1
        listeners:
          - {name: secure, address: 127.0.0.1:\(tls), tls: {certificates: \(certs), default_certificate: default}}
          - {name: plain, address: 127.0.0.1:\(plain)}
        logging: {access: "off", error: stderr}
        admin: {address: "off"}
        registry: {database: "\(scope.path("registry.db"))"}
        nodes:
          - {name: ws-1, pool: workspace, address: "\(up.addresses[0])", heartbeats: false}
        routes:
          - {name: workspace, path_prefix: /ws/, key: {path_segment: /ws/}, pool: workspace, set_cookie: ws_uid}

        """
        _ = try scope.startGateway(yaml: yaml, ports: [tls, plain])
        let base = ["--cacert", pki.rootCertificate, "--resolve", "default.test:\(tls):127.0.0.1"]
        let h1 = try scope.curl(base + ["--http1.1", "https://default.test:\(tls)/ws/alice/echo"])
        #expect(h1.header("Set-Cookie") == "ws_uid=alice; Path=/; HttpOnly; SameSite=Lax; Secure", "\(h1.headers)")
        let h2 = try scope.curl(base + ["--http2", "https://default.test:\(tls)/ws/bob/echo"])
        #expect(h2.header("Set-Cookie") == "ws_uid=bob; Path=/; HttpOnly; SameSite=Lax; Secure", "\(h2.headers)")
        let clear = try scope.get("http://127.0.0.1:\(plain)/ws/carol/echo")
        #expect(clear.header("Set-Cookie") == "ws_uid=carol; Path=/; HttpOnly; SameSite=Lax", "\(clear.headers)")
    }
}

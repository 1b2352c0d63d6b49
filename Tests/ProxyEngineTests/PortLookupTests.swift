@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

/// The container-port lookup's bytes, without sockets: the request it sends and how it reads
/// the node API's answer (the integration suite runs it against a real node API process).
@Suite("Port lookup: request and answer")
struct PortLookupTests {
    func answer(_ raw: String, split: Int? = nil) -> PortLookup.Answer {
        var scanner = HeadScanner(maxFirstLine: 8192, maxHeaderBytes: 8192, maxHeaders: 64)
        let headers = HeaderTable(capacity: 64)
        var buffer = IOBuffer(capacity: 16_384)
        defer { buffer.base.deallocate() }
        let bytes = b(raw)
        if let split {
            buffer.append(Array(bytes[..<split]))
            let first = PortLookup.parseAnswer(buffer, scanner: &scanner, headers: headers)
            guard first == .needMore else { return first }
            buffer.append(Array(bytes[split...]))
        } else {
            buffer.append(bytes)
        }
        return PortLookup.parseAnswer(buffer, scanner: &scanner, headers: headers)
    }

    @Test("The request: path, key parameter, Host, token, Connection: close")
    func request() {
        var settings = EngineConfig.PortLookup()
        settings.token = "s3cret"
        var buffer = IOBuffer(capacity: 1024)
        defer { buffer.base.deallocate() }
        let key = b("alice")
        key.withUnsafeBufferPointer { PortLookup.writeRequest(into: &buffer, settings, key: $0, host: "10.0.0.7:8080") }
        let text = String(decoding: UnsafeBufferPointer(start: buffer.readPointer, count: buffer.count), as: UTF8.self)
        #expect(text == "GET /api/fun-ai/workspace/internal/nginx/port?userId=alice HTTP/1.1\r\nHost: 10.0.0.7:8080\r\n"
                + "X-WS-Token: s3cret\r\nUser-Agent: switchyard\r\nConnection: close\r\n\r\n")
    }

    @Test("A 200 with a usable X-WS-Port is the port, whole or in pieces; the body is not needed")
    func port() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-ws-port: 31022\r\n\r\nok"
        #expect(answer(ok) == .port(31022))
        #expect(answer(ok, split: 20) == .port(31022))
        #expect(answer("HTTP/1.1 200 OK\r\nX-WS-Port: 1\r\n\r\n") == .port(1))
        #expect(answer("HTTP/1.1 200 OK\r\nX-WS-Port: 65535\r\nContent-Length: 0\r\n\r\n") == .port(65535))
        #expect(answer("HTTP/1.1 200 OK\r\nX-WS-Port: 1") == .needMore)
    }

    @Test("Anything else is a failure with a reason: other statuses, no port, a port out of range or not digits, a malformed head",
          arguments: ["HTTP/1.1 404 Not Found\r\nX-WS-Port: 3000\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port: 0\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port: 65536\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port: 123456\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port: 30a0\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port: -1\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port:\r\n\r\n",
                      "NOT HTTP AT ALL\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nX-WS-Port 3000\r\n\r\n"])
    func failures(raw: String) {
        guard case .failed(let why) = answer(raw) else {
            Issue.record("accepted: \(raw.debugDescription)")
            return
        }
        #expect(!why.isEmpty)
    }
}

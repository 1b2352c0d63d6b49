import ArgumentParser
import Foundation

// The operator commands (`nodes`, `placements`, `route`): clients of a running gateway's admin
// API (docs/admin-api.md). Tables for people, `--json` for scripts; exit 1 when the API refuses,
// 2 for usage and configuration errors, 3 when the gateway cannot be reached.

/// Why an operator command failed, and the status it exits with.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    let status: Int32

    init(_ description: String, status: Int32) {
        self.description = description
        self.status = status
    }
}

/// An operator command: it gets a session with the resolved endpoint; a failure becomes one
/// line on stderr and the exit status.
protocol AdminCommand: ParsableCommand {
    var options: AdminOptions { get }
    func perform(_ api: AdminSession) throws(CLIFailure)
}

extension AdminCommand {
    func run() throws {
        do {
            let endpoint = try AdminEndpoint.resolve(options)
            try perform(AdminSession(endpoint: endpoint, options: options))
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(error.description)\n".utf8))
            throw ExitCode(error.status)
        }
    }
}

/// One operator's conversation with the admin API.
struct AdminSession {
    let endpoint: AdminEndpoint
    let json: Bool
    let client: AdminHTTPClient

    init(endpoint: AdminEndpoint, options: AdminOptions) {
        self.endpoint = endpoint
        json = options.json
        client = AdminHTTPClient(host: endpoint.host, port: endpoint.port, timeout: options.timeout)
    }

    /// A 2xx answer.
    struct Reply {
        let status: Int
        let body: [UInt8]
    }

    /// Sends one request with the admin token. Path segments and query values are
    /// percent-encoded here; nil query values are left out. A non-2xx answer is a failure
    /// (exit 1) carrying the API's `error` and `field`; with `--json` its body goes to stdout.
    func call(_ method: String, _ path: [String], query: [(String, String?)] = [],
              body: [UInt8]? = nil, echoRefusal: Bool = true) throws(CLIFailure) -> Reply {
        var target = "/" + path.map { Self.percentEncode($0) }.joined(separator: "/")
        let pairs = query.compactMap { name, value in value.map { "\(Self.percentEncode(name))=\(Self.percentEncode($0))" } }
        if !pairs.isEmpty { target += "?" + pairs.joined(separator: "&") }
        let answer: AdminAnswer
        do {
            answer = try client.exchange(method: method, target: target, headers: [("X-Admin-Token", endpoint.token)], body: body)
        } catch {
            throw CLIFailure("cannot reach the admin API at \(endpoint.url): \(error)", status: 3)
        }
        guard (200..<300).contains(answer.status) else {
            if json && echoRefusal { FileHandle.standardOutput.write(Data(answer.body)) }
            throw CLIFailure(Self.refusal(answer), status: 1)
        }
        return Reply(status: answer.status, body: answer.body)
    }

    /// "refused (HTTP 409): node ws-3 is disabled or already holds it (field: node)".
    static func refusal(_ answer: AdminAnswer) -> String {
        struct APIError: Decodable {
            let error: String
            let field: String?
        }
        if let e = try? JSONDecoder().decode(APIError.self, from: Data(answer.body)) {
            return "refused (HTTP \(answer.status)): \(e.error)" + (e.field.map { " (field: \($0))" } ?? "")
        }
        let text = String(decoding: answer.body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "refused (HTTP \(answer.status))" + (text.isEmpty ? "" : ": \(text)")
    }

    /// Warns on stderr when `node` is not healthy. The API moves users to a named node that is
    /// enabled whatever its heartbeats say, and there they would get 503 node_down until the
    /// node reports again.
    func warnIfUnhealthy(_ node: String) {
        guard let reply = try? call("GET", ["admin", "nodes", node], echoRefusal: false),
              let n = try? decode(NodeView.self, reply), !n.healthy else { return }
        printNote("warning: \(node) is not healthy (no heartbeat within the pool's threshold): "
                  + "users moved there get 503 node_down until it reports again")
    }

    /// Prints the answer's JSON as it came (sorted keys, one trailing newline).
    func printJSON(_ reply: Reply) {
        var bytes = reply.body
        if bytes.last != 0x0A { bytes.append(0x0A) }
        FileHandle.standardOutput.write(Data(bytes))
    }

    func decode<T: Decodable>(_ type: T.Type, _ reply: Reply) throws(CLIFailure) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(reply.body)) } catch {
            throw CLIFailure("unexpected answer from the admin API (\(error)): \(String(decoding: reply.body.prefix(200), as: UTF8.self))",
                             status: 1)
        }
    }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Plain structs of strings, numbers and booleans: encoding cannot fail.
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, so a `/`, `?`,
    /// `&`, `+` or space in a key, URL or cookie reaches the API as written (the admin server
    /// decodes `+` in queries as a space).
    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E:
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int, with c: Character = "0") -> String {
        count >= width ? self : String(repeating: c, count: width - count) + self
    }
}

extension Switchyard {
    /// The operator commands exit 2 for usage errors, like configuration errors (ArgumentParser
    /// says 64, EX_USAGE), so a script can tell "you called me wrong" (2) from "the gateway said
    /// no" (1) and "no gateway there" (3). Other commands keep ArgumentParser's behaviour.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let first = arguments.first, ["nodes", "placements", "route"].contains(first) else {
            main(nil)
            return
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                exit(withError: ExitCode(2))
            }
            exit(withError: error)
        }
    }
}

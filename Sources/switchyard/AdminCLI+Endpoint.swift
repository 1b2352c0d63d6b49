import AdminPlane
import ArgumentParser
import Foundation
import IOCore
import ProxyEngine
import RouteResolver
import Yams

/// Where the operator commands find the admin API and its token, and how they print.
struct AdminOptions: ParsableArguments {
    @Option(name: .customLong("admin"), help: ArgumentHelp(
        "The admin API, http://host:port (default: $SWITCHYARD_ADMIN, else admin.address of --config).",
        valueName: "url"))
    var admin: String?

    @Option(help: ArgumentHelp(
        "The admin token (default: $SWITCHYARD_ADMIN_TOKEN, else admin.token or the file admin.token_file of --config).",
        valueName: "token"))
    var token: String?

    @Option(name: .shortAndLong, help: "The gateway's YAML configuration, read for what --admin and --token do not give.")
    var config: String = "config/switchyard.yaml"

    @Option(help: "Seconds to wait for the gateway's answer.")
    var timeout: Double = 30

    @Flag(help: "Print the API's JSON answer instead of a table (an error's JSON too, on stdout).")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be between 0 and 3600 seconds") }
    }
}

/// The admin API to talk to and the token to send.
struct AdminEndpoint {
    let host: String
    let port: UInt16
    let token: String

    var url: String { host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)" }

    /// Flags first, then the environment, then the configuration file: the file is read only
    /// when a flag or variable leaves something open.
    static func resolve(_ o: AdminOptions,
                        environment: [String: String] = ProcessInfo.processInfo.environment) throws(CLIFailure) -> AdminEndpoint {
        let env = { (name: String) -> String? in environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var admin: AdminConfig?
        func configured() throws(CLIFailure) -> AdminConfig {
            if let admin { return admin }
            let loaded = try loadAdminSection(o.config)
            admin = loaded
            return loaded
        }
        let (host, port): (String, UInt16)
        if let text = o.admin ?? env("SWITCHYARD_ADMIN") {
            let from = o.admin != nil ? "--admin" : "SWITCHYARD_ADMIN"
            guard let parsed = parseURL(text) else {
                throw CLIFailure("\(from): \"\(text)\" is not http://host:port", status: 2)
            }
            (host, port) = parsed
        } else {
            guard let address = try configured().address else {
                throw CLIFailure("\(o.config): admin.address is off (no admin listener); pass --admin http://host:port", status: 2)
            }
            (host, port) = connectable(address)
        }
        let token: String
        if let t = o.token ?? env("SWITCHYARD_ADMIN_TOKEN") {
            token = t
        } else {
            let a = try configured()
            if !a.token.isEmpty {
                token = a.token
            } else {
                token = try readTokenFile(a.tokenFile, config: o.config)
            }
        }
        guard !token.isEmpty, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw CLIFailure("the admin token must be visible ASCII without spaces", status: 2)
        }
        return AdminEndpoint(host: host, port: port, token: token)
    }

    /// `http://host:port`, `http://host` (port 80) or a bare `host:port`; an IPv6 host in
    /// brackets. A trailing `/` is allowed; https is not (the admin listener speaks plain HTTP
    /// on a private address).
    static func parseURL(_ text: String) -> (String, UInt16)? {
        var rest = Substring(text)
        var defaultPort: UInt16?
        if rest.lowercased().hasPrefix("http://") {
            rest = rest.dropFirst(7)
            defaultPort = 80
        } else if rest.contains("://") {
            return nil
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?") else { return nil }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { return nil }
        if let portText {
            guard let p = UInt16(portText), p != 0 else { return nil }
            return (String(host), p)
        }
        guard let defaultPort else { return nil }
        return (String(host), defaultPort)
    }

    /// The configured listen address as a place to connect to: a wildcard address
    /// (0.0.0.0, ::) means this host's loopback.
    static func connectable(_ address: SocketAddress) -> (String, UInt16) {
        var host = address.text
        if let close = host.lastIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        if host == "localhost" { host = "127.0.0.1" }
        return (host, address.port)
    }

    /// Only the `admin:` section of the configuration, validated as `serve` does: an operator's
    /// copy of the file need not resolve the routes' upstream names to find the admin API.
    static func loadAdminSection(_ path: String) throws(CLIFailure) -> AdminConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIFailure("cannot read \(path) (\(error.localizedDescription)): pass --config, or --admin and --token", status: 2)
        }
        let section: Node?
        do {
            guard let root = try Yams.compose(yaml: text), let mapping = root.mapping else {
                throw CLIFailure("\(path): the file must be a YAML mapping", status: 2)
            }
            section = mapping[Node("admin")]
        } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw CLIFailure("\(path): not valid YAML: \(error)", status: 2)
        }
        var admin = AdminConfig()
        do { try ConfigLoader.parseAdmin(section, into: &admin, listeners: []) } catch {
            throw CLIFailure("\(path): \(error)", status: 2)
        }
        return admin
    }

    /// The token the gateway generated into (or was given in) `admin.token_file`. Relative
    /// paths are relative to the working directory, as they are for `serve`. Never creates it.
    static func readTokenFile(_ path: String, config: String) throws(CLIFailure) -> String {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIFailure("cannot read the admin token from \(path) (admin.token_file of \(config)): "
                             + "\(error.localizedDescription); pass --token or set SWITCHYARD_ADMIN_TOKEN", status: 2)
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else {
            throw CLIFailure("\(path) holds no admin token (fewer than 16 characters)", status: 2)
        }
        return token
    }
}

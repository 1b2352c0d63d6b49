import Glibc
import HTTP1Codec
import IOCore
import Synchronization
import TLSTerminator

/// A TLS listener's certificates could not be loaded: which listener, which file, why.
public struct ListenerCertificateError: Error, CustomStringConvertible {
    public let listener: String
    public let error: CertificateError
    public var description: String { "listener \(listener): \(error)" }
}

/// The certificate sets of the TLS listeners (index = listener index; nil for plain ones) and
/// their session-ticket keys. Reloaded on SIGHUP and when a certificate file changes; a set
/// that fails to load is refused with a log line and the current one stays. Workers notice a
/// new generation on their next loop turn and build new contexts from it; connections already
/// open keep the context (and certificate) they started with.
public final class ListenerCertificates: Sendable {
    private let sets: Mutex<[CertificateSet?]>
    /// Per listener: the directory as last loaded, and as seen at the last check.
    private let signatures: Mutex<[String]>
    private let seen: Mutex<[String]>
    let generation = Atomic<UInt64>(1)
    let ticketKeys: [TicketKeys?]
    let listeners: [EngineConfig.Listener]

    /// Loads every TLS listener's directory; the first problem is thrown.
    public init(config: EngineConfig) throws(ListenerCertificateError) {
        listeners = config.listeners
        var loaded: [CertificateSet?] = []
        var keys: [TicketKeys?] = []
        for l in config.listeners {
            guard let tls = l.tls else { loaded.append(nil); keys.append(nil); continue }
            do {
                loaded.append(try CertificateSet.load(directory: tls.certificates, defaultCertificate: tls.defaultCertificate))
            } catch {
                throw ListenerCertificateError(listener: l.name, error: error)
            }
            keys.append(tls.sessionTickets ? TicketKeys(rotation: Int64(max(60, tls.ticketRotation / 1000))) : nil)
        }
        sets = Mutex(loaded)
        ticketKeys = keys
        let initial = config.listeners.map { $0.tls.map { Self.signature(of: $0.certificates) } ?? "" }
        signatures = Mutex(initial)
        seen = Mutex(initial)
    }

    public var hasTLS: Bool { listeners.contains { $0.tls != nil } }

    func current() -> [CertificateSet?] { sets.withLock { $0 } }

    /// Reloads the listeners whose files changed (or all, `force`: SIGHUP). Returns one line per
    /// listener reloaded or refused, for the error log.
    func reload(force: Bool) -> [String] {
        var messages: [String] = []
        var changed = false
        for (i, l) in listeners.enumerated() {
            guard let tls = l.tls else { continue }
            let signature = Self.signature(of: tls.certificates)
            let previous = signatures.withLock { $0[i] }
            let lastSeen = seen.withLock { old in defer { old[i] = signature }; return old[i] }
            // A change is loaded once the directory has stood still for one check, so a pair
            // renamed into place file by file is not caught half-way (and refused for nothing).
            if !force && (signature == previous || signature != lastSeen) { continue }
            signatures.withLock { $0[i] = signature }
            do {
                let set = try CertificateSet.load(directory: tls.certificates, defaultCertificate: tls.defaultCertificate)
                sets.withLock { $0[i] = set }
                changed = true
                messages.append("event=\"certificates reloaded\" listener=\(l.name) certificates=\(set.certificates.count)")
            } catch {
                let detail = String("\(error)".map { $0 == "\"" ? "'" : $0 })
                messages.append("level=warn event=\"certificate reload refused\" listener=\(l.name) detail=\"\(detail)\" kept=current")
            }
        }
        if changed { generation.add(1, ordering: .releasing) }
        return messages
    }

    /// Names, sizes, mtimes and inodes of the directory's entries: changes when a file does
    /// (a rename into place as well as an edit).
    static func signature(of directory: String) -> String {
        guard let dir = opendir(directory) else { return "" }
        defer { closedir(dir) }
        var entries: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            var st = stat()
            guard stat(directory + "/" + name, &st) == 0 else { continue }
            entries.append("\(name):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec):\(st.st_ino)")
        }
        return entries.sorted().joined(separator: "|")
    }
}

import Foundation
import Synchronization

/// One line per admin change: when, who (operator token or node), from where, what, and the
/// state before and after, as JSON. Written to stderr (or a file) synchronously: changes are rare.
public final class AuditLog: Sendable {
    private let handle: Mutex<FileHandle>

    public init(path: String? = nil) {
        if let path, FileManager.default.createFile(atPath: path, contents: nil) || FileManager.default.fileExists(atPath: path),
           let h = FileHandle(forWritingAtPath: path) {
            h.seekToEndOfFile()
            handle = Mutex(h)
        } else {
            handle = Mutex(FileHandle.standardError)
        }
    }

    func record(who: String, client: String, action: String, target: String, before: Any?, after: Any?) {
        var o: [String: Any] = ["who": who, "client": client, "action": action, "target": target]
        o["before"] = before ?? NSNull()
        o["after"] = after ?? NSNull()
        let json = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let time = ISO8601DateFormatter().string(from: Date())
        let line = "\(time) level=audit \(json)\n"
        handle.withLock { $0.write(Data(line.utf8)) }
    }
}

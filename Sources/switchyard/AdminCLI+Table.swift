import Foundation

/// Columns aligned for people, as `kubectl get` prints them: upper-case headers, left-aligned
/// cells, three spaces between columns, no cell containing a space (an empty one prints `-`),
/// so `awk '{print $1}'` still works.
struct TextTable {
    let headers: [String]
    private(set) var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ cells: [String]) {
        precondition(cells.count == headers.count, "a row of \(cells.count) cells in a table of \(headers.count) columns")
        rows.append(cells.map { $0.isEmpty ? "-" : $0.replacingOccurrences(of: " ", with: "_") })
    }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                if i == cells.count - 1 {
                    out += cell  // no trailing blanks
                } else {
                    out += cell + String(repeating: " ", count: widths[i] - cell.count + 3)
                }
            }
            return out
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

/// Small formatters shared by the tables.
enum Format {
    static func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }

    /// 850ms, 12s, 5m, 3h, 2d: the age of a heartbeat at a glance.
    static func age(ms: Int64) -> String {
        switch ms {
        case ..<1000: return "\(max(0, ms))ms"
        case ..<120_000: return "\(ms / 1000)s"
        case ..<(120 * 60_000): return "\(ms / 60_000)m"
        case ..<(48 * 3_600_000): return "\(ms / 3_600_000)h"
        default: return "\(ms / 86_400_000)d"
        }
    }

    /// Milliseconds since the epoch as `2026-11-22T14:27:14Z` (UTC).
    static func timestamp(ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// A duration in milliseconds with the precision that matters: 0.42 ms, 12.3 ms, 1840 ms.
    static func millis(_ ms: Double) -> String {
        ms < 10 ? String(format: "%.2f ms", ms) : ms < 100 ? String(format: "%.1f ms", ms) : String(format: "%.0f ms", ms)
    }

    static func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
}

/// Writes a note for people to stderr, so stdout stays the table alone.
func printNote(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

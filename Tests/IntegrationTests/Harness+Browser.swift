// Headless Chromium for the browser tests: peers/browser_cdp.py drives one tab through the
// DevTools protocol and writes a JSON report; each test decodes the parts it asserts on.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension Scope {
    /// This scope's Chromium profile (also how its processes are found afterwards).
    var chromiumProfile: String { path("chromium-profile") }

    /// Opens the URLs in turn in one headless Chromium tab and decodes what the pages showed.
    /// `extra`: more browser_cdp.py options.
    func browse<Report: Decodable>(_ urls: [String], extra: [String] = [], as: Report.Type) throws -> Report {
        guard let chromium = Paths.which("chromium") else {
            throw HarnessError("chromium not found on PATH: `make deps-test` installs Debian's chromium package")
        }
        let out = path("browser.json")
        let r = try run(try venvPython(),
                        [Paths.peer("browser_cdp.py"), "--chromium", chromium,
                         "--profile", chromiumProfile, "--out", out, "--parent", "\(getpid())",
                         "--timeout", "30"] + extra + urls,
                        timeout: 60 + 35 * Double(urls.count))
        guard r.status == 0, let data = FileManager.default.contents(atPath: out) else {
            throw HarnessError("browser_cdp.py failed (status \(r.status)\(r.timedOut ? ", timed out" : "")): \(r.stderr.suffix(4000))")
        }
        do {
            return try JSONDecoder().decode(Report.self, from: data)
        } catch {
            throw HarnessError("unreadable browser report (\(error)): \(String(decoding: data.prefix(2000), as: UTF8.self))")
        }
    }

    /// No process of this scope's Chromium profile survives the driver; any straggler is killed
    /// here so a failure does not leave a browser behind.
    func expectNoChromiumLeft() {
        let needle = chromiumProfile
        var left: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            if String(decoding: cmdline.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(needle) { left.append(pid) }
        }
        for pid in left { kill(pid, SIGKILL) }
        #expect(left.isEmpty, "Chromium processes still running after the driver returned: \(left)")
    }
}

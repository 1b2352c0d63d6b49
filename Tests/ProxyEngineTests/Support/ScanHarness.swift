@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine

/// What a scanner concluded, and where it decided the head starts.
struct ScanResult: Equatable, CustomStringConvertible {
    var outcome: HeadScanner.Outcome
    var headStart: Int

    var description: String { "\(outcome) headStart=\(headStart)" }
}

/// Feeds `bytes` to `scanner` as a growing region: first `bytes[0..<cuts[0]]`, then up to each
/// further cut, then everything, stopping at the first outcome other than `.needMore`.
func scan(_ bytes: [UInt8], cuts: [Int] = [], with scanner: HeadScanner = makeRequestScanner()) -> ScanResult {
    var s = scanner
    var outcome = HeadScanner.Outcome.needMore
    for cut in cuts + [bytes.count] {
        outcome = withExactBuffer(bytes[0..<cut]) { p, n in s.scan(p, count: n) }
        if outcome != .needMore { break }
    }
    return ScanResult(outcome: outcome, headStart: s.headStart)
}

/// Independent oracle for a valid head's length: through the first CRLFCRLF after `headStart`.
func expectedHeadLength(_ bytes: [UInt8], headStart: Int) -> Int? {
    var i = headStart
    while i + 4 <= bytes.count {
        if bytes[i] == 0x0D && bytes[i + 1] == 0x0A && bytes[i + 2] == 0x0D && bytes[i + 3] == 0x0A {
            return i + 4
        }
        i += 1
    }
    return nil
}

/// Scans and parses one complete request head (no body handling).
func parseRequest(_ bytes: [UInt8], capacity: Int = Limits.tableCapacity,
                  scanner: HeadScanner = makeRequestScanner()) -> Result<HeadSummary, HTTPError> {
    let scanned = scan(bytes, with: scanner)
    switch scanned.outcome {
    case .failed(let e): return .failure(e)
    case .needMore: fatalError("test input is not a complete head: \(text(bytes))")
    case .complete(let length):
        let headers = HeaderTable(capacity: capacity)
        return withExactBuffer(bytes[0..<length]) { p, _ in
            do throws(HTTPError) {
                let h = try RequestHead.parse(p, start: scanned.headStart, end: length, headers: headers)
                return .success(HeadSummary(h, headers, p))
            } catch {
                return .failure(error)
            }
        }
    }
}

/// Scans and parses one complete response head.
func parseResponse(_ bytes: [UInt8], method: Method = .get) -> Result<ResponseSummary, HTTPError> {
    let scanned = scan(bytes, with: makeResponseScanner())
    switch scanned.outcome {
    case .failed(let e): return .failure(e)
    case .needMore: fatalError("test input is not a complete head: \(text(bytes))")
    case .complete(let length):
        let headers = HeaderTable(capacity: Limits.tableCapacity)
        return withExactBuffer(bytes[0..<length]) { p, _ in
            do throws(HTTPError) {
                let h = try ResponseHead.parse(p, start: scanned.headStart, end: length, headers: headers,
                                               requestMethod: method)
                return .success(ResponseSummary(h, headers, p))
            } catch {
                return .failure(error)
            }
        }
    }
}

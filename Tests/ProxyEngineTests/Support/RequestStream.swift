@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine

/// A small stand-in for the engine's read side, without sockets: it keeps what has arrived, scans
/// and parses each head, walks its body by the framing the parser chose, and moves on to the next
/// pipelined request. Feeding the same bytes in different pieces must give the same result.
///
/// Every parsed head is also checked against `Invariants.request`.
struct RequestStream {
    struct Message: Equatable {
        var head: HeadSummary
        /// Payload bytes (de-chunked for a chunked body).
        var body: [UInt8] = []
        /// Bytes the body occupied on the wire, framing included.
        var wireBodyLength = 0
        var complete = false
    }

    /// What the stream is waiting for.
    private enum Phase {
        case head(HeadScanner)
        case length(remaining: UInt64)
        case chunked(ChunkedDecoder)
        /// An error, or a request that asked to close: nothing after it is read.
        case stopped
    }

    private(set) var received: [UInt8] = []
    private(set) var messages: [Message] = []
    private(set) var error: HTTPError?
    private(set) var violations: [String] = []
    private var phase = Phase.head(makeRequestScanner())
    private var messageStart = 0
    private var bodyStart = 0
    private var position = 0
    private let headers = HeaderTable(capacity: Limits.tableCapacity)

    /// The observable outcome, for comparing two ways of feeding the same bytes.
    var result: Result { Result(messages: messages, error: error) }

    struct Result: Equatable {
        var messages: [Message]
        var error: HTTPError?
    }

    /// Feeds all of `bytes`, in reads that end at each of `cuts` and then at the end.
    static func run(_ bytes: [UInt8], cuts: [Int] = []) -> RequestStream {
        var s = RequestStream()
        var previous = 0
        for cut in cuts + [bytes.count] where cut >= previous {
            s.feed(bytes[previous..<cut])
            previous = cut
        }
        return s
    }

    mutating func feed(_ more: ArraySlice<UInt8>) {
        received += more
        while advance() {}
    }

    /// One step of progress; false when more bytes are needed or the stream stopped.
    private mutating func advance() -> Bool {
        switch phase {
        case .stopped:
            return false
        case .head(var scanner):
            let outcome = withExactBuffer(received[messageStart...]) { p, n in scanner.scan(p, count: n) }
            switch outcome {
            case .needMore:
                phase = .head(scanner)
                return false
            case .failed(let e):
                return stop(e)
            case .complete(let length):
                return startMessage(headStart: scanner.headStart, length: length)
            }
        case .length(let remaining):
            let take = min(UInt64(received.count - position), remaining)
            messages[messages.count - 1].body += received[position..<(position + Int(take))]
            position += Int(take)
            if take == remaining { return finishMessage() }
            phase = .length(remaining: remaining - take)
            return false
        case .chunked(var decoder):
            while position < received.count && !decoder.isDone {
                let step = withExactBuffer(received[position...]) { p, n -> Swift.Result<(Int, ChunkedDecoder.Kind), HTTPError> in
                    do throws(HTTPError) {
                        let r = try decoder.step(p, n)
                        return .success((r.count, r.kind))
                    } catch {
                        return .failure(error)
                    }
                }
                switch step {
                case .failure(let e):
                    return stop(e)
                case .success(let (count, kind)):
                    if count <= 0 || count > received.count - position {
                        violations.append("chunked step returned \(count) of \(received.count - position)")
                        return stop(.badChunk)
                    }
                    if kind == .payload {
                        messages[messages.count - 1].body += received[position..<(position + count)]
                    }
                    position += count
                }
            }
            if decoder.isDone { return finishMessage() }
            phase = .chunked(decoder)
            return false
        }
    }

    private mutating func startMessage(headStart: Int, length: Int) -> Bool {
        let parsed = withExactBuffer(received[messageStart..<(messageStart + length)]) { p, _ -> Swift.Result<(HeadSummary, BodyFraming), HTTPError> in
            do throws(HTTPError) {
                let h = try RequestHead.parse(p, start: headStart, end: length, headers: headers)
                violations += Invariants.request(h, headers, p, start: headStart, end: length)
                return .success((HeadSummary(h, headers, p), h.framing))
            } catch {
                return .failure(error)
            }
        }
        switch parsed {
        case .failure(let e):
            return stop(e)
        case .success(let (summary, framing)):
            messages.append(Message(head: summary))
            position = messageStart + length
            bodyStart = position
            switch framing {
            case .none: return finishMessage()
            case .length(let n): phase = .length(remaining: n)
            case .chunked: phase = .chunked(ChunkedDecoder())
            case .untilClose:
                violations.append("request framed until close")
                return stop(.badRequestLine)
            }
            return true
        }
    }

    private mutating func finishMessage() -> Bool {
        messages[messages.count - 1].complete = true
        messages[messages.count - 1].wireBodyLength = position - bodyStart
        messageStart = position
        if messages[messages.count - 1].head.close {
            phase = .stopped
            return false
        }
        phase = .head(makeRequestScanner())
        return true
    }

    private mutating func stop(_ e: HTTPError) -> Bool {
        error = e
        phase = .stopped
        return false
    }
}

import Glibc

/// Finds the end of a message head as bytes arrive, enforcing the size limits before the whole
/// head is in memory (so an oversized head costs one buffer, not more).
///
/// It keeps only offsets relative to the first byte of the head, so it survives the buffer being
/// compacted or moved to a larger one. Feed it the same growing region each time; it resumes where
/// it stopped. Lines must end in CRLF: a bare LF is refused here (RFC 9112 §2.2 allows refusing it,
/// and accepting it is how request smuggling starts).
public struct HeadScanner {
    public enum Outcome: Equatable {
        case needMore
        /// The head is complete; `length` bytes (through the blank line's LF) belong to it.
        case complete(length: Int)
        case failed(HTTPError)
    }

    public let maxFirstLine: Int
    public let maxHeaderBytes: Int
    public let maxHeaders: Int
    /// Requests may be preceded by empty lines (RFC 9112 §2.2); at most this many are skipped.
    public let leadingEmptyLines: Int

    /// Offset of the first byte not yet examined.
    @usableFromInline var scanned = 0
    @usableFromInline var lineStart = 0
    /// Offset of the first header line (after the start line); -1 until the start line ended.
    @usableFromInline var headersStart = -1
    @usableFromInline var headerLines = 0
    @usableFromInline var skippedEmpty = 0
    /// Where the head really starts (after skipped empty lines).
    public var headStart = 0

    public init(maxFirstLine: Int, maxHeaderBytes: Int, maxHeaders: Int, leadingEmptyLines: Int = 0) {
        self.maxFirstLine = maxFirstLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaders = maxHeaders
        self.leadingEmptyLines = leadingEmptyLines
    }

    public mutating func reset() {
        scanned = 0; lineStart = 0; headersStart = -1; headerLines = 0; skippedEmpty = 0; headStart = 0
    }

    /// True once any byte of a head has been seen (used to tell an idle connection from a slow one).
    public var started: Bool { scanned > 0 }

    /// Scans `p[0..<count]`, where `p` is the first byte of the head and earlier calls saw a prefix.
    @inlinable @inline(__always)
    public mutating func scan(_ p: UnsafePointer<UInt8>, count: Int) -> Outcome {
        // The hot state lives in locals (stored back on every exit): as fields of `self` each
        // would be reloaded and stored around every memchr call.
        var scanned = self.scanned, lineStart = self.lineStart, headerLines = self.headerLines
        defer {
            self.scanned = scanned
            self.lineStart = lineStart
            self.headerLines = headerLines
        }
        while headersStart < 0 {
            guard scanned < count else { return .needMore }
            guard let hit = memchr(p + scanned, 0x0A, count - scanned) else {
                scanned = count
                return checkPartialLine(count: count, lineStart: lineStart)
            }
            let lf = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - p
            scanned = lf + 1
            if lf == lineStart || p[lf - 1] != 0x0D { return .failed(.bareLF) }
            let lineLength = lf - 1 - lineStart
            if lineLength == 0 {
                // Empty line before the start line.
                if skippedEmpty >= leadingEmptyLines { return .failed(.badRequestLine) }
                skippedEmpty += 1
                lineStart = scanned
                headStart = scanned
                continue
            }
            if lineLength > maxFirstLine { return .failed(.uriTooLong) }
            headersStart = scanned
            lineStart = scanned
        }
        let headersStart = self.headersStart, maxHeaders = self.maxHeaders, maxHeaderBytes = self.maxHeaderBytes
        while scanned < count {
            guard let hit = memchr(p + scanned, 0x0A, count &- scanned) else {
                scanned = count
                return checkPartialLine(count: count, lineStart: lineStart)
            }
            let lf = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - p
            scanned = lf &+ 1
            if lf == lineStart || p[lf &- 1] != 0x0D { return .failed(.bareLF) }
            if lf &- 1 == lineStart { return .complete(length: scanned) }
            headerLines &+= 1
            if headerLines > maxHeaders { return .failed(.tooManyHeaders) }
            if scanned &- headersStart > maxHeaderBytes { return .failed(.headersTooLarge) }
            lineStart = scanned
        }
        return .needMore
    }

    @usableFromInline func checkPartialLine(count: Int, lineStart: Int) -> Outcome {
        if headersStart < 0 {
            if count - lineStart > maxFirstLine + 1 { return .failed(.uriTooLong) }
        } else if count - headersStart > maxHeaderBytes + 2 {
            return .failed(.headersTooLarge)
        }
        return .needMore
    }
}

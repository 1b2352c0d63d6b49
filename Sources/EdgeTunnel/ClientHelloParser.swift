/// Peeks a TLS ClientHello before any TLS library sees the connection (issue 15): the listener
/// routes by its SNI — raw bytes into an edge node's tunnel, or on to OpenSSL — so the bytes are
/// read, never consumed.
///
/// **Streaming.** The caller keeps every byte it received in its own buffer (those bytes go to
/// OpenSSL or into the tunnel unchanged) and feeds each new run once, as it arrives. The parser
/// walks the record layer byte-run by byte-run and never needs fed bytes again: a hello that
/// arrives whole in one run and one record is parsed in place, with no copy; one split across
/// reads or records has its handshake bytes (only those, not the record headers) gathered into
/// one buffer reserved at the message's announced size. No allocation per byte, none per record.
///
/// **What it accepts, and why each bound.**
/// - Records (RFC 8446 §5.1): content type 22 (handshake) — the very first byte decides
///   `.notTLS`, so plain HTTP on a TLS port is told apart after one byte; a later record of
///   another type is malformed (handshake messages must not be interleaved with other records).
///   legacy_record_version 0x0300...0x0304: RFC 8446 §5.1 says to ignore the field, but only
///   major 3 is TLS at all, and Appendix D's older clients send 0x0300 (SSL 3.0 record layer) to
///   0x0303 — OpenSSL likewise accepts any 0x03xx on a first record; minors above 4 name no
///   version and are refused. Length 1...2^14: zero-length handshake fragments are forbidden,
///   longer records are a record_overflow.
/// - The handshake message may span any number of records; its header may be split too. It must
///   be client_hello(1), with a body of at most `maxBodyBytes` (16 KiB: real hellos are 200 B to
///   2 KiB, post-quantum key shares included). Bytes after the hello in its last record are
///   malformed (a message before a key change ends on a record boundary, RFC 8446 §5.1).
/// - All records together are at most `maxWireBytes` (32 KiB): the largest accepted hello needs
///   two records (16,398 bytes); the rest is room for finer fragmentation. This is the most the
///   caller ever buffers for the peek. Exceeding either bound is `.tooLarge`, decided as soon as
///   a header announces it. A client that sends nothing is the caller's timer's business (the
///   header timeout); the parser holds no clock.
/// - The body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): legacy_version with major 3, random (32),
///   session_id (≤ 32), cipher_suites (even, ≥ 2), compression methods (≥ 1), then the optional
///   extensions block, whose length must match the rest of the body exactly. Each extension
///   lies within the block; a repeated type is malformed (RFC 8446 §4.2); unknown ones are
///   skipped. server_name (RFC 6066 §3): exactly one host_name, a DNS name of 1...255 bytes
///   (RFC 1035 §2.3.4), labels of 1...63 bytes of [A-Za-z0-9-], one trailing dot dropped, then
///   lowercased; entries of other name types are skipped. ALPN (RFC 7301 §3.1): a non-empty list
///   of names of 1...255 bytes. supported_versions (RFC 8446 §4.2.1): 2...254 bytes, even.
///
/// Every length is checked against what encloses it; nothing traps on input.
public struct ClientHelloParser: Sendable {
    /// Where the parser stands in the record layer. The handshake message's own progress (its
    /// 4-byte header, then its body) runs across records and lives beside it.
    public enum State: Equatable, Sendable {
        /// Reading a record header; `have` of its 5 bytes seen (the first record starts here at 0).
        case recordHeader(have: Int)
        /// Inside a handshake record's fragment, `remaining` bytes of it still to come.
        case fragment(remaining: Int)
        /// An outcome was reached; `feed` repeats it and examines no more input.
        case done
    }

    public static let recordHeaderBytes = 5
    public static let maxRecordLength = 1 << 14
    static let handshakeHeaderBytes = 4

    /// Largest accepted ClientHello body (the handshake message minus its 4-byte header).
    public let maxBodyBytes: Int
    /// Largest accepted total of the hello's records, headers included.
    public let maxWireBytes: Int

    public private(set) var state: State = .recordHeader(have: 0)
    /// The outcome once `state == .done`.
    private var outcome: Step = .needMore
    /// Wire bytes examined so far.
    private var wire = 0
    /// The current record header's bytes, shifted in one by one.
    private var recordHeader: UInt64 = 0
    /// The handshake header's bytes so far, and how many.
    private var messageHeader: UInt32 = 0
    private var messageHeaderHave = 0
    /// The announced body length, once the handshake header is complete.
    private var bodyLength = 0
    /// Body bytes gathered when the hello does not arrive in one run of one record.
    private var body: [UInt8] = []

    public init(maxBodyBytes: Int = 16 * 1024, maxWireBytes: Int = 32 * 1024) {
        self.maxBodyBytes = maxBodyBytes
        self.maxWireBytes = maxWireBytes
    }

    /// Examines the next bytes received, in order, each byte once. Returns `.needMore` until the
    /// hello is complete or refused; after that every call returns the same terminal step.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Step {
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .done:
                return outcome
            case .recordHeader(let have):
                let b = bytes[i]
                i += 1
                wire += 1
                if have == 0 && wire == 1 && b != 22 { return finish(.notTLS) }
                recordHeader = recordHeader << 8 | UInt64(b)
                if have + 1 < Self.recordHeaderBytes {
                    state = .recordHeader(have: have + 1)
                } else if let refused = recordHeaderComplete() {
                    return finish(refused)
                }
            case .fragment(let remaining):
                let take = min(remaining, n - i)
                let run = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)])
                i += take
                wire += take
                state = take == remaining ? .recordHeader(have: 0) : .fragment(remaining: remaining - take)
                if let decided = fragmentBytes(run, recordRest: remaining - take) { return finish(decided) }
            }
        }
        return state == .done ? outcome : .needMore
    }

    /// Validates a complete record header and enters its fragment; a refusal otherwise.
    private mutating func recordHeaderComplete() -> Step? {
        let type = UInt8(truncatingIfNeeded: recordHeader >> 32)
        let version = UInt16(truncatingIfNeeded: recordHeader >> 16)
        let length = Int(UInt16(truncatingIfNeeded: recordHeader))
        recordHeader = 0
        guard type == 22 else { return .malformed(.recordType) }
        guard version >> 8 == 3, version & 0xFF <= 4 else { return .malformed(.recordVersion) }
        guard length > 0 else { return .malformed(.emptyRecord) }
        guard length <= Self.maxRecordLength else { return .malformed(.recordOverflow) }
        // `wire` counts the header; the fragment must fit in what remains of the bound.
        guard length <= maxWireBytes - wire else { return .tooLarge }
        state = .fragment(remaining: length)
        return nil
    }

    /// Takes one run of a fragment's bytes; `recordRest` is what the record still holds after
    /// the run. Returns the outcome once the hello is complete or refused.
    private mutating func fragmentBytes(_ run: UnsafeRawBufferPointer, recordRest: Int) -> Step? {
        var at = 0
        while messageHeaderHave < Self.handshakeHeaderBytes {
            guard at < run.count else { return nil }
            messageHeader = messageHeader << 8 | UInt32(run[at])
            messageHeaderHave += 1
            at += 1
            if messageHeaderHave == 1 && messageHeader != 1 { return .malformed(.handshakeType) }
        }
        if messageHeaderHave == Self.handshakeHeaderBytes && at > 0 {
            // The header just completed: the announced length is known.
            bodyLength = Int(messageHeader & 0xFF_FFFF)
            guard bodyLength <= maxBodyBytes else { return .tooLarge }
            // Body bytes the current record cannot hold need another record, header included.
            let beyond = bodyLength - (run.count - at) - recordRest
            guard beyond >= 0 else { return .malformed(.trailingRecordBytes) }
            guard beyond == 0 || beyond <= maxWireBytes - wire - recordRest - Self.recordHeaderBytes else { return .tooLarge }
        }
        let need = bodyLength - body.count
        let rest = run.count - at
        if body.isEmpty && rest >= need {
            // The whole body is in this run: parse it where it lies.
            return complete(UnsafeRawBufferPointer(rebasing: run[at..<(at + need)]), extra: rest - need + recordRest)
        }
        if body.capacity < bodyLength { body.reserveCapacity(bodyLength) }
        let take = min(need, rest)
        body.append(contentsOf: UnsafeRawBufferPointer(rebasing: run[at..<(at + take)]))
        guard body.count == bodyLength else { return nil }
        return body.withUnsafeBytes { complete($0, extra: rest - take + recordRest) }
    }

    /// The body is complete; `extra` record bytes follow it.
    private func complete(_ body: UnsafeRawBufferPointer, extra: Int) -> Step {
        guard extra == 0 else { return .malformed(.trailingRecordBytes) }
        do {
            return .hello(try Self.parseBody(body, recordBytes: wire))
        } catch {
            return .malformed(error)
        }
    }

    private mutating func finish(_ step: Step) -> Step {
        state = .done
        outcome = step
        body = []
        return step
    }
}

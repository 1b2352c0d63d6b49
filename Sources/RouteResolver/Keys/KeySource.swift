/// Where a sticky route finds its key (a user id, an app id). Names and prefixes are stored as
/// bytes because they are compared against raw request bytes on every request.
public enum KeySource: Sendable, Equatable {
    /// The path segment right after `prefix` ("/ws/" finds "abc" in "/ws/abc/x").
    case pathSegment(prefix: [UInt8])
    /// The cookie `name` ("ws_uid"), compared case-sensitively as RFC 6265 §5.4 does.
    case cookie(name: [UInt8])
    /// The query parameter `name` ("userId"), compared exactly, without percent-decoding.
    case query(name: [UInt8])
    /// The whole value of the header field `name`, stored lowercase ("x-ws-user") so the engine
    /// can compare it case-insensitively against request bytes.
    case header(name: [UInt8])
}

/// The result of looking for a key in one request part.
public enum KeyLookup: Sendable, Equatable {
    /// The key is `count` bytes at `start`; offsets are relative to the buffer that was searched.
    case found(start: Int, count: Int)
    /// The part does not carry the key at all: the route has no key for this request.
    case missing
    /// The key is present but is not `[A-Za-z0-9_-]{1,64}`: the request is malformed (400).
    case invalid

    /// The key's offsets, or nil when there is none.
    public var range: Range<Int>? {
        if case .found(let start, let count) = self { return start..<(start + count) }
        return nil
    }
}

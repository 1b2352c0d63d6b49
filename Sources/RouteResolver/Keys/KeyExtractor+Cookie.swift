// Keys carried in a Cookie header field.
//
// RFC 6265 §4.2.1 says user agents send `name=value` pairs joined by "; ". Real clients are
// looser (no space, tabs, stray ';', pairs without '=', bytes outside cookie-octet), so parsing
// follows what servers that accept browser traffic do: split on ';', trim SP and HTAB around
// the pair, its name and its value (the §5.2 trimming applied to the request side), skip pairs
// without '=', and let unrelated garbage pass untouched. Only the pair we are after is checked.

extension KeyExtractor {
    /// The cookie `name` in one Cookie header field value ("a=1; ws_uid=u1; b=2").
    ///
    /// Names compare case-sensitively (RFC 6265 §5.4 matches cookies by exact name) and must be
    /// the whole name, so "xws_uid" and "ws_uid2" are other cookies. The first pair with the name
    /// wins, even when its value is bad, the same rule as for query parameters. A value wrapped in
    /// DQUOTEs (cookie-value of §4.1.1) has them removed: the offsets point inside the quotes.
    /// Empty, over-long, unbalanced-quote or otherwise malformed values -> invalid.
    ///
    /// A request may carry several Cookie fields (HTTP/2 splits them, RFC 9113 §8.2.3); the engine
    /// calls this for each in order and uses the first result that is not `.missing`.
    public static func fromCookie(_ value: UnsafeRawBufferPointer, name: [UInt8]) -> KeyLookup {
        var start = 0
        while start < value.count {
            let end = firstIndex(of: UInt8(ascii: ";"), in: value, from: start, to: value.count)
            let equalSign = firstIndex(of: UInt8(ascii: "="), in: value, from: start, to: end)
            if equalSign < end {
                let (nameStart, nameEnd) = trimmed(value, from: start, to: equalSign)
                if equals(value, from: nameStart, to: nameEnd, name) {
                    let (valueStart, valueEnd) = trimmed(value, from: equalSign + 1, to: end)
                    return cookieValue(value, from: valueStart, to: valueEnd)
                }
            }
            start = end + 1
        }
        return .missing
    }

    /// The key in a trimmed cookie value, unwrapping one pair of DQUOTEs. A quote on one side
    /// only is not a key byte, so it falls through to `.invalid` without a special case.
    private static func cookieValue(_ value: UnsafeRawBufferPointer, from start: Int, to end: Int) -> KeyLookup {
        let quote = UInt8(ascii: "\"")
        if end - start >= 2, value[start] == quote, value[end - 1] == quote {
            return keyLookup(value, from: start + 1, to: end - 1)
        }
        return keyLookup(value, from: start, to: end)
    }
}

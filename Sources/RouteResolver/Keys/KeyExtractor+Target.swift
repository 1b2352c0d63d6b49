// Keys carried in the request target: a path segment or a query parameter.
//
// `target` is the origin-form request target (RFC 9112 §3.2.1: absolute-path ["?" query]). A
// fragment is never sent by conforming clients, but '#' still ends the search so a sloppy client
// cannot smuggle a second key behind one. Nothing is percent-decoded: no key needs encoding, so an
// encoded byte can only mean a malformed key, and decoding would let two spellings of one id
// reach different placements.

extension KeyExtractor {
    /// The path segment right after `prefix`, which normally ends in '/' ("/ws/").
    ///
    /// "/ws/abc", "/ws/abc/", "/ws/abc/x?y", "/ws/abc?y" -> found "abc".
    /// A target that does not start with the prefix ("/ws", "/ws?x", "/wsx/a", "/other") -> missing.
    /// An empty, over-long or otherwise malformed segment ("/ws/", "/ws//x", "/ws/?q",
    /// "/ws/a%20b", "/ws/..") -> invalid. The prefix compares case-sensitively, as paths do.
    public static func fromPath(_ target: UnsafeRawBufferPointer, prefix: [UInt8]) -> KeyLookup {
        guard target.count >= prefix.count else { return .missing }
        var i = 0
        for b in prefix {
            if target[i] != b { return .missing }
            i += 1
        }
        let start = i
        while i < target.count {
            let b = target[i]
            if b == UInt8(ascii: "/") || b == UInt8(ascii: "?") || b == UInt8(ascii: "#") { break }
            i += 1
        }
        return keyLookup(target, from: start, to: i)
    }

    /// The first query parameter called `name` in the target's query ("?a=1&userId=u1&b").
    ///
    /// Parameters are split on '&' (the form-urlencoded convention; ';' is not a separator), the
    /// name ends at the first '='. Names must match exactly, so "xuserId" and "userId2" are other
    /// parameters. The first parameter with the name decides, even when its value is bad: picking
    /// a later one would let a crafted URL choose between two ids. "userId=" and a bare "userId"
    /// -> invalid; no '?', an empty query or no such parameter -> missing.
    public static func fromQuery(_ target: UnsafeRawBufferPointer, name: [UInt8]) -> KeyLookup {
        let hash = firstIndex(of: UInt8(ascii: "#"), in: target, from: 0, to: target.count)
        let question = firstIndex(of: UInt8(ascii: "?"), in: target, from: 0, to: hash)
        var start = question + 1
        while start < hash {
            let end = firstIndex(of: UInt8(ascii: "&"), in: target, from: start, to: hash)
            let equalSign = firstIndex(of: UInt8(ascii: "="), in: target, from: start, to: end)
            if equals(target, from: start, to: equalSign, name) {
                // A bare "userId" has no value: the range below is empty, hence invalid.
                return keyLookup(target, from: min(equalSign + 1, end), to: end)
            }
            start = end + 1
        }
        return .missing
    }
}

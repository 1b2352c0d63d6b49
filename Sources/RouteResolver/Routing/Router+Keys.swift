import HTTP1Codec

/// Finding a sticky route's key in a parsed request: the request target for path and query
/// keys, the header table for cookies and header keys. Offsets come back absolute in the head
/// buffer.
extension Router {
    public static func findKey(_ source: KeySource, _ head: borrowing RequestHead, headers: HeaderTable,
                               base: UnsafePointer<UInt8>) -> KeyLookup {
        switch source {
        case .pathSegment(let prefix):
            let target = UnsafeRawBufferPointer(start: base + head.pathStart, count: head.pathLength)
            return offset(KeyExtractor.fromPath(target, prefix: prefix), by: head.pathStart)
        case .query(let name):
            let target = UnsafeRawBufferPointer(start: base + head.pathStart, count: head.pathLength)
            return offset(KeyExtractor.fromQuery(target, name: name), by: head.pathStart)
        case .cookie(let name):
            guard headers.has(.cookie) else { return .missing }
            // Several Cookie fields (HTTP/2 splits them; some clients repeat): the first that
            // carries the name decides.
            for i in 0..<headers.count where headers[i].kind == .cookie {
                let f = headers[i]
                let value = UnsafeRawBufferPointer(start: base + Int(f.valueStart), count: Int(f.valueLength))
                let r = KeyExtractor.fromCookie(value, name: name)
                if r != .missing { return offset(r, by: Int(f.valueStart)) }
            }
            return .missing
        case .header(let name):
            for i in 0..<headers.count {
                let f = headers[i]
                guard Int(f.nameLength) == name.count,
                      name.withUnsafeBufferPointer({ equalsIgnoringCase(base + Int(f.nameStart), $0.baseAddress!, name.count) })
                else { continue }
                let value = UnsafeRawBufferPointer(start: base + Int(f.valueStart), count: Int(f.valueLength))
                return offset(KeyExtractor.fromHeaderValue(value), by: Int(f.valueStart))
            }
            return .missing
        }
    }

    private static func offset(_ r: KeyLookup, by delta: Int) -> KeyLookup {
        if case .found(let s, let n) = r { return .found(start: s + delta, count: n) }
        return r
    }
}

@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine

/// One header field copied out of the buffer, so results from different feeds can be compared.
struct FieldSummary: Equatable, CustomStringConvertible {
    var name: String
    var value: String
    var kind: HeaderKind
    var dropped: Bool

    var description: String { "\(name): \(value) [\(kind)\(dropped ? ", dropped" : "")]" }
}

/// A parsed request head with its offsets resolved to text.
struct HeadSummary: Equatable {
    var method: Method
    var methodText: String
    var path: String
    var host: String?
    var hostName: String?
    var version: UInt8
    var framing: BodyFraming
    var close: Bool
    var keepAlive10: Bool
    var expectContinue: Bool
    var requestID: String?
    var fields: [FieldSummary]

    init(_ h: RequestHead, _ headers: HeaderTable, _ p: UnsafePointer<UInt8>) {
        method = h.method
        methodText = text(UnsafeBufferPointer(start: p + h.methodStart, count: h.methodLength))
        path = text(UnsafeBufferPointer(start: p + h.pathStart, count: h.pathLength))
        if h.hostStart >= 0 {
            host = text(UnsafeBufferPointer(start: p + h.hostStart, count: h.hostLength))
            hostName = text(UnsafeBufferPointer(start: p + h.hostStart, count: h.hostNameLength))
        }
        version = h.version
        framing = h.framing
        close = h.close
        keepAlive10 = h.keepAlive10
        expectContinue = h.expectContinue
        if h.requestIDStart >= 0 {
            requestID = text(UnsafeBufferPointer(start: p + h.requestIDStart, count: h.requestIDLength))
        }
        fields = fieldSummaries(headers, p)
    }

    func field(_ name: String) -> FieldSummary? {
        fields.first { $0.name.lowercased() == name.lowercased() }
    }
}

/// A parsed response head with its offsets resolved to text.
struct ResponseSummary: Equatable {
    var status: Int
    var version: UInt8
    var reason: String
    var framing: BodyFraming
    var close: Bool
    var fields: [FieldSummary]

    init(_ h: ResponseHead, _ headers: HeaderTable, _ p: UnsafePointer<UInt8>) {
        status = h.status
        version = h.version
        reason = text(UnsafeBufferPointer(start: p + h.reasonStart, count: h.reasonLength))
        framing = h.framing
        close = h.close
        fields = fieldSummaries(headers, p)
    }

    func field(_ name: String) -> FieldSummary? {
        fields.first { $0.name.lowercased() == name.lowercased() }
    }
}

func fieldSummaries(_ headers: HeaderTable, _ p: UnsafePointer<UInt8>) -> [FieldSummary] {
    (0..<headers.count).map { i in
        let f = headers[i]
        return FieldSummary(
            name: text(UnsafeBufferPointer(start: p + Int(f.nameStart), count: Int(f.nameLength))),
            value: text(UnsafeBufferPointer(start: p + Int(f.valueStart), count: Int(f.valueLength))),
            kind: f.kind, dropped: f.dropped)
    }
}

/// What the access log (and the error log, and the counters) say of one exchange, filled in as
/// it goes: the status answered, bytes each way, when it started and how long the upstream
/// took, its request id, the client's address and "METHOD path". A value inside the session,
/// its byte fields in storage allocated once per session and reused.
struct AccessRecord {
    var status = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    var startUs: UInt64 = 0
    var upstreamStartUs: UInt64 = 0
    var upstreamUs: UInt64 = 0
    let requestID = UnsafeMutablePointer<UInt8>.allocate(capacity: AccessRecord.requestIDCapacity)
    var requestIDLength = 0
    static let requestIDCapacity = 128
    let clientIP = UnsafeMutablePointer<UInt8>.allocate(capacity: AccessRecord.clientIPCapacity)
    var clientIPLength = 0
    static let clientIPCapacity = 64
    /// "METHOD path" copied from the head (truncated).
    let requestLine = UnsafeMutablePointer<UInt8>.allocate(capacity: AccessRecord.requestLineCapacity)
    var requestLineLength = 0
    static let requestLineCapacity = 512

    /// For the next exchange on the connection (the client's address stays).
    mutating func reset() {
        status = 0
        bytesIn = 0
        bytesOut = 0
        startUs = 0
        upstreamUs = 0
        requestIDLength = 0
        requestLineLength = 0
    }

    /// Frees the byte fields; the session calls it once, in its `deinit`.
    func deallocate() {
        requestID.deallocate()
        clientIP.deallocate()
        requestLine.deallocate()
    }
}

import IOCore

/// The upstream side of a session's current exchange: which address was chosen, the connection
/// (borrowed), how many tries, when it connected and sent, and the rewritten request head kept
/// until the response head arrives so a failed first try can replay it.
struct UpstreamLeg {
    /// Not owning: while linked, the worker's slot table owns the connection (it is
    /// registered), and every path that closes it unlinks it first. Unmanaged so the hot path
    /// can borrow it (`_withUnsafeGuaranteedRef`) instead of paying a retain/release pair on
    /// every load.
    var connectionRef: Unmanaged<UpstreamConnection>?
    /// The address chosen for this exchange (the access log names it, even on 502); -1: none
    /// (yet).
    var addressIndex = -1
    var attempts = 0
    var connectStartMs: UInt64 = 0
    var requestSentMs: UInt64 = 0
    /// The rewritten request head; kept until the response head arrives so it can be replayed.
    var requestHeadOut: IOBuffer?
    var requestHeadSent = 0
}

import CLinux
import Glibc
import IOCore

/// Every socket of the agent: edge-triggered, fixed interest for its whole life, as the
/// gateway's workers do. "Not polling EPOLLIN" while a buffer is full is "not reading": the
/// kernel's receive buffer fills and TCP's window closes on the peer.
enum AgentEpoll {
    static let socket = Epoll.input | Epoll.output | Epoll.readHangup | Epoll.edgeTriggered
}

/// Reconnect delays (docs/edge-tunnel.md §6): 0.2 s doubling to 10 s, each drawn ±50% around
/// its nominal value so that many agents cut off at once do not come back in step.
struct Backoff {
    static let firstMs: UInt64 = 200
    static let maxMs: UInt64 = 10_000
    private(set) var nominalMs = Backoff.firstMs
    private var state: UInt64

    init() {
        var seed: UInt64 = 0
        if cl_getrandom(&seed, 8) != 8 { seed = cl_monotonic_us() }
        state = seed | 1
    }

    /// The next delay; the one after it is twice as long (up to the cap).
    mutating func next() -> UInt64 {
        let base = nominalMs
        nominalMs = min(nominalMs * 2, Backoff.maxMs)
        // xorshift64: plenty for jitter.
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return base / 2 + state % (base + 1)
    }

    /// A successful attach: the next failure starts over at 0.2 s.
    mutating func reset() { nominalMs = Backoff.firstMs }
}

/// One line on stderr, "switchyard: edge_agent ...". Attach, detach and refusals only: never per
/// byte or per frame.
func agentLog(_ text: String) {
    var line = "switchyard: edge_agent \(text)\n"
    // One write(2) per line on fd 2: lines from several threads never interleave mid-line.
    line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

/// Text from a peer made safe for one log line: printable ASCII only, at most `max` bytes.
func printable(_ p: UnsafePointer<UInt8>, _ n: Int, max: Int = 200) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(min(n, max))
    for i in 0..<min(n, max) {
        let c = p[i]
        bytes.append(c >= 0x20 && c < 0x7F ? c : UInt8(ascii: " "))
    }
    return String(decoding: bytes, as: UTF8.self)
}

import COpenSSL
import Glibc
import Synchronization

/// Session-ticket keys shared by every worker (so a client resumes on whichever worker accepts
/// its next connection), rotated every `rotation` seconds. The current key encrypts new tickets;
/// the previous one still decrypts, and such a ticket is renewed under the current key, so a
/// ticket works for at least `rotation` seconds across one rotation. Tickets also carry a
/// lifetime of `rotation` seconds (SSL_CTX_set_timeout), so a key older than two periods is never
/// needed. Keys are random (RAND_priv_bytes), never derived from a long-lived secret: a key that
/// leaks exposes at most two periods of TLS 1.2 sessions.
///
/// Rotation is lazy and lock-light: periods are numbered `clock() / rotation`; each worker caches
/// the pair for its period (`TLSContext`) and takes the lock only when the period changes, to
/// fetch (or create, if it is the first to see the new period) the next key.
public final class TicketKeys: Sendable {
    public let rotation: Int64
    let clock: @Sendable () -> Int64
    private let state: Mutex<State>

    struct State {
        var period: Int64
        var current: TicketKey
        var previous: TicketKey?
    }

    /// - Parameters:
    ///   - rotation: seconds between key changes (and the ticket lifetime); at least 1.
    ///   - clock: seconds on any steady scale (tests drive it); CLOCK_MONOTONIC_COARSE by default.
    public init(rotation: Int64 = 3_600, clock: @escaping @Sendable () -> Int64 = TicketKeys.monotonicSeconds) {
        precondition(rotation >= 1, "ticket key rotation must be at least one second")
        self.rotation = rotation
        self.clock = clock
        state = Mutex(State(period: clock() / rotation, current: TicketKey.random(), previous: nil))
    }

    public static let monotonicSeconds: @Sendable () -> Int64 = {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return Int64(ts.tv_sec)
    }

    /// The period number now.
    @inline(__always)
    func period() -> Int64 { clock() / rotation }

    /// The keys for `period`: the shared state advances to it if it is behind (a jump of more than
    /// one period drops the previous key). A caller whose period is already behind the shared one
    /// gets the newer keys; the period returned is the one the keys belong to.
    func keys(for period: Int64) -> (period: Int64, current: TicketKey, previous: TicketKey?) {
        state.withLock { s in
            if period > s.period {
                s.previous = period == s.period + 1 ? s.current : nil
                s.current = TicketKey.random()
                s.period = period
            }
            return (s.period, s.current, s.previous)
        }
    }
}

/// One ticket key: a 16-byte name sent in the clear in each ticket, an AES-256-CBC key and an
/// HMAC-SHA256 key, in one buffer wiped on release.
final class TicketKey: @unchecked Sendable {
    // Written once in `random()`, read-only afterwards.
    static let nameLength = 16
    static let aesLength = 32
    static let hmacLength = 32
    static let size = nameLength + aesLength + hmacLength
    let storage: UnsafeMutableRawBufferPointer

    private init() {
        storage = .allocate(byteCount: TicketKey.size, alignment: 16)
    }

    static func random() -> TicketKey {
        let k = TicketKey()
        guard RAND_priv_bytes(k.storage.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(k.storage.count)) == 1 else {
            fatalError("RAND_priv_bytes failed: \(OpenSSLErrors.drain())")
        }
        return k
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    // Field access on a key block (a `TicketKey.size`-byte buffer laid out name, AES, HMAC).
    @inline(__always)
    static func name(_ block: UnsafeRawPointer) -> UnsafeRawPointer { block }
    @inline(__always)
    static func aesKey(_ block: UnsafeRawPointer) -> UnsafePointer<UInt8> {
        (block + nameLength).assumingMemoryBound(to: UInt8.self)
    }
    @inline(__always)
    static func hmacKey(_ block: UnsafeRawPointer) -> UnsafePointer<UInt8> {
        (block + nameLength + aesLength).assumingMemoryBound(to: UInt8.self)
    }
}

/// A worker's private copy of the current and previous ticket keys: issuing or opening a ticket
/// then touches no memory (not even a reference count) shared with other workers. Refreshed from
/// `TicketKeys` when the period changes. Wiped on release.
final class TicketKeyCache {
    let keys: TicketKeys
    private(set) var period: Int64 = .min
    private(set) var hasPrevious = false
    /// Two key blocks: current, then previous.
    private let storage: UnsafeMutableRawBufferPointer

    init(_ keys: TicketKeys) {
        self.keys = keys
        storage = .allocate(byteCount: 2 * TicketKey.size, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    /// Copies in the keys for the current period if it changed since the last call.
    @inline(__always)
    func refresh() {
        let now = keys.period()
        if now == period { return }
        let fresh = keys.keys(for: now)
        period = fresh.period
        storage.baseAddress!.copyMemory(from: fresh.current.storage.baseAddress!, byteCount: TicketKey.size)
        if let previous = fresh.previous {
            (storage.baseAddress! + TicketKey.size).copyMemory(from: previous.storage.baseAddress!, byteCount: TicketKey.size)
            hasPrevious = true
        } else {
            hasPrevious = false
        }
    }

    var current: UnsafeRawPointer { UnsafeRawPointer(storage.baseAddress!) }
    var previous: UnsafeRawPointer? { hasPrevious ? UnsafeRawPointer(storage.baseAddress! + TicketKey.size) : nil }

    /// The key block whose name is `name`, and whether it is the previous key.
    @inline(__always)
    func block(named name: UnsafeRawPointer) -> (block: UnsafeRawPointer, previous: Bool)? {
        if memcmp(current, name, TicketKey.nameLength) == 0 { return (current, false) }
        if let p = previous, memcmp(p, name, TicketKey.nameLength) == 0 { return (p, true) }
        return nil
    }
}

import RouteResolver
import Glibc

/// Owns one `pthread_mutex_t`. Heap-allocated because a pthread mutex must never move, which a
/// Swift stored property does not promise.
final class PThreadMutex: @unchecked Sendable {
    fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() {
        // Only EINVAL/EDEADLK can come back, and both would be our bug.
        let rc = pthread_mutex_lock(mutex)
        precondition(rc == 0, "pthread_mutex_lock failed: \(rc)")
    }

    func unlock() {
        let rc = pthread_mutex_unlock(mutex)
        precondition(rc == 0, "pthread_mutex_unlock failed: \(rc)")
    }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Owns one `pthread_cond_t` on the monotonic clock, so a timed wait is not stretched or cut
/// short when the wall clock is set.
final class PThreadCondition: @unchecked Sendable {
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        let rc = pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        precondition(rc == 0, "pthread_cond_init failed: \(rc)")
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Sleeps until signalled; `mutex` must be held and is held again on return. Wake-ups may be
    /// spurious: callers re-check their predicate in a loop.
    func wait(_ mutex: PThreadMutex) {
        pthread_cond_wait(condition, mutex.mutex)
    }

    /// As `wait`, but returns after `nanoseconds` at the latest.
    func wait(_ mutex: PThreadMutex, nanoseconds: Int) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = Int(now.tv_nsec) + nanoseconds
        var deadline = timespec(tv_sec: now.tv_sec + total / 1_000_000_000, tv_nsec: total % 1_000_000_000)
        pthread_cond_timedwait(condition, mutex.mutex, &deadline)
    }

    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// Starts threads that run a closure (the stores' writers and followers).
enum PThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts a thread running `body`; returns it to join, or the error `pthread_create` gave.
    static func start(_ body: @escaping () -> Void) -> Result<pthread_t, PThreadError> {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            return .failure(PThreadError(code: rc))
        }
        return .success(thread)
    }
}

struct PThreadError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { "pthread_create failed (\(code))" }
}

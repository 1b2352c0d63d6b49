import Foundation
import Synchronization
import RouteResolver

/// Waits up to `seconds` for `condition`, polling every 10 ms.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// Collects what a store's change feed hands over (the feed is asynchronous: wait with
/// `eventually`).
final class FeedInbox: Sendable {
    let events = Mutex<[StoreFeedEvent]>([])
    var changes: [StoreChange] {
        events.withLock { $0.flatMap { if case .changes(let c, _) = $0 { return c } else { return [] } } }
    }
    var resyncs: Int { events.withLock { $0.filter { if case .resync = $0 { true } else { false } }.count } }
    func add(_ e: StoreFeedEvent) { events.withLock { $0.append(e) } }
}

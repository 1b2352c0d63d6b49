@testable import HTTP1Codec
@testable import IOCore
@testable import ProxyEngine
import Testing

@Suite("Timer wheel")
struct TimerWheelTests {
    @Test func firesEachEntryAtItsTickAndNotBefore() {
        var wheel = TimerWheel(now: 1_000)
        let t1 = wheel.insert(1, tick: TimerWheel.tick(for: 1_120))
        let t2 = wheel.insert(2, tick: TimerWheel.tick(for: 1_500))
        #expect(t1 < t2)
        var due: [(token: UInt64, tick: UInt64)] = []
        wheel.advance(now: 1_100, into: &due)
        #expect(due.isEmpty)
        wheel.advance(now: 1_150, into: &due)
        #expect(due.map(\.token) == [1])
        wheel.advance(now: 1_499, into: &due)
        #expect(due.map(\.token) == [1])
        wheel.advance(now: 1_500, into: &due)
        #expect(due.map(\.token) == [1, 2])
        #expect(due[1].tick == t2)
        #expect(wheel.pending == 0)
        #expect(wheel.timeoutMs(now: 1_500) == -1)
    }

    @Test(arguments: [UInt64(60_000), 75_000, 120_000, 300_000])
    func deadlinesBeyondOneTurnFireOnceWhenDue(due: UInt64) {
        // The wheel turns every 51.2 s; a later deadline shares a bucket with nearer ticks and
        // must stay there (not be handed out early, not be lost) until its own tick.
        var wheel = TimerWheel(now: 0)
        let tick = wheel.insert(7, tick: TimerWheel.tick(for: due))
        var fired: [UInt64] = []
        var now: UInt64 = 0
        var entries: [(token: UInt64, tick: UInt64)] = []
        while now <= due + 200 {
            now += 50
            wheel.advance(now: now, into: &entries)
            for e in entries {
                #expect(e.token == 7 && e.tick == tick)
                fired.append(now)
            }
            entries.removeAll()
        }
        #expect(fired.count == 1, "fired at \(fired)")
        #expect(fired.first.map { $0 >= due && $0 < due + 100 } == true, "due \(due), fired \(fired)")
        #expect(wheel.pending == 0)
    }

    @Test func aStallLongerThanATurnHandsOutOverdueFarEntries() {
        var wheel = TimerWheel(now: 0)
        _ = wheel.insert(1, tick: TimerWheel.tick(for: 70_000))   // beyond one turn
        _ = wheel.insert(2, tick: TimerWheel.tick(for: 500_000))  // not due yet
        var entries: [(token: UInt64, tick: UInt64)] = []
        wheel.advance(now: 200_000, into: &entries)
        #expect(entries.map(\.token) == [1])
        entries.removeAll()
        wheel.advance(now: 500_000, into: &entries)
        #expect(entries.map(\.token) == [2])
    }

    @Test func aLongStallProcessesEveryBucketOnce() {
        var wheel = TimerWheel(now: 0)
        for i in 1...100 { _ = wheel.insert(UInt64(i), tick: UInt64(i)) }
        var entries: [(token: UInt64, tick: UInt64)] = []
        wheel.advance(now: 10_000_000, into: &entries)
        #expect(entries.count == 100)
        #expect(wheel.pending == 0)
    }

    @Test func insertingInThePastLandsOnTheNextTick() {
        var wheel = TimerWheel(now: 10_000)
        let t = wheel.insert(1, tick: 3)
        #expect(t == 10_000 / TimerWheel.tickMs + 1)
        #expect(wheel.timeoutMs(now: 10_000) == Int32(TimerWheel.tickMs))
    }
}

@Suite("Buffers and addresses")
struct BufferAndAddressTests {
    @Test func consumeRewindsAndCompactMoves() {
        let pool = BufferPool(keepStandard: 2, keepLarge: 1)
        var b = pool.take()
        #expect(b.capacity == BufferPool.standardSize)
        b.append("hello world")
        b.consume(6)
        #expect(b.count == 5 && b.start == 6)
        #expect(b.compact() == 6)
        #expect(b.start == 0 && String(decoding: UnsafeBufferPointer(start: b.readPointer, count: b.count), as: UTF8.self) == "world")
        b.consume(5)
        #expect(b.start == 0 && b.end == 0)
        pool.give(b)
        let again = pool.take()
        #expect(again.base == b.base && again.isEmpty)
        pool.give(again)
    }

    @Test(arguments: [(UInt64(0), "0"), (7, "7"), (1234567890, "1234567890"), (UInt64.max, "18446744073709551615")])
    func decimal(value: UInt64, text: String) {
        var b = IOBuffer(capacity: 64)
        defer { b.base.deallocate() }
        b.append(decimal: value)
        #expect(String(decoding: UnsafeBufferPointer(start: b.readPointer, count: b.count), as: UTF8.self) == text)
    }

    @Test func hexIsZeroPadded() {
        var b = IOBuffer(capacity: 64)
        defer { b.base.deallocate() }
        b.append(hex: 0xABC, width: 8)
        #expect(String(decoding: UnsafeBufferPointer(start: b.readPointer, count: b.count), as: UTF8.self) == "00000abc")
    }

    @Test(arguments: ["127.0.0.1:80", "[::1]:8080", "0.0.0.0:65535", "localhost:3000"])
    func addressesParse(text: String) {
        #expect(SocketAddress(text) != nil)
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[::1]80", "example.com:80", "1.2.3.4:8a", ":80", "[::1]:-1"])
    func badAddressesDoNot(text: String) {
        #expect(SocketAddress(text) == nil)
    }

    @Test func equalityIsByValue() {
        #expect(SocketAddress("localhost:1") == SocketAddress("127.0.0.1:1"))
        #expect(SocketAddress("127.0.0.1:1") != SocketAddress("127.0.0.1:2"))
    }
}

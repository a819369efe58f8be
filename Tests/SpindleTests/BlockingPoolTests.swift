@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct BlockingPoolTests {
    /// The pool never runs more than `limit` closures at once, runs them all, and its
    /// threads exit after `keepAlive` of idleness.
    @Test func boundedGrowthAndShrinkAfterIdle() throws {
        let pool = BlockingPool(name: "bp", limit: 3, keepAlive: .milliseconds(100))
        let finished = SharedCounter()
        let box = PoolCounters()
        for _ in 0..<12 {
            try pool.submit {
                let now = box.enter()
                box.noteMax(now)
                usleep(20_000)
                box.leave()
                finished.increment()
            }
        }
        let deadline = Sys.nowNanos() + 10_000_000_000
        while finished.value < 12 && Sys.nowNanos() < deadline { usleep(1_000) }
        #expect(finished.value == 12)
        #expect(box.max <= 3)
        #expect(box.max >= 2) // it did grow beyond one thread
        #expect(pool.threadCount <= 3)
        // Idle threads go away after keepAlive.
        while pool.threadCount > 0 && Sys.nowNanos() < deadline { usleep(5_000) }
        #expect(pool.threadCount == 0)
        // And it grows again on demand.
        let again = SharedCounter()
        try pool.submit { again.increment() }
        while again.value == 0 && Sys.nowNanos() < deadline { usleep(1_000) }
        #expect(again.value == 1)
        pool.shutdown()
    }
}

final class PoolCounters: Sendable {
    private let running = Atomic<Int>(0)
    private let maxRunning = Atomic<Int>(0)
    func enter() -> Int { running.add(1, ordering: .acquiringAndReleasing).newValue }
    func leave() { running.subtract(1, ordering: .acquiringAndReleasing) }
    func noteMax(_ v: Int) {
        var cur = maxRunning.load(ordering: .relaxed)
        while v > cur {
            let (done, actual) = maxRunning.compareExchange(expected: cur, desired: v, ordering: .relaxed)
            if done { break }
            cur = actual
        }
    }
    var max: Int { maxRunning.load(ordering: .relaxed) }
}

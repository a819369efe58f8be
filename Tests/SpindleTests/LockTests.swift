import CSpindle
@testable import Spindle
import Synchronization
import Testing

/// Lock, on its futex word: mutual exclusion under contention, and a taker that went to
/// sleep on the word is woken by the unlock (the "2" state).
@Suite struct LockTests {
    /// Threads hammer one counter with a plain read-modify-write under the lock: no update
    /// is lost (without exclusion, four threads lose many of 400,000).
    @Test func contendedIncrementsAreNotLost() throws {
        let scale = testScale
        let perThread = 100_000 / scale, threads = 4
        let counter = Lock(0)
        let finished = Atomic<Int>(0)
        for _ in 0..<threads {
            try OSThread.spawn(name: "lock-test") {
                for _ in 0..<perThread {
                    counter.withLock { v in
                        let read = v
                        v = read + 1
                    }
                }
                finished.add(1, ordering: .releasing)
            }
        }
        #expect(waitUntil(timeout: .seconds(60)) { finished.load(ordering: .acquiring) == threads })
        #expect(counter.withLock { $0 } == perThread * threads)
    }

    /// A holder keeps the lock until the other threads have given up spinning and marked
    /// the word as having sleepers (2); its unlock must then wake them, one after the other.
    @Test func sleepingTakersAreWoken() throws {
        let lock = Lock(0)
        let started = Atomic<Int>(0), finished = Atomic<Int>(0)
        let takers = 3
        lock.lockRaw()
        for _ in 0..<takers {
            try OSThread.spawn(name: "lock-sleeper") {
                started.add(1, ordering: .relaxed)
                lock.withLock { $0 += 1 }
                finished.add(1, ordering: .releasing)
            }
        }
        #expect(waitUntil { started.load(ordering: .relaxed) == takers })
        // A taker past its spin has marked the word: it sleeps (or is about to) on it.
        #expect(waitUntil { spindle_word_load(lock.word) == 2 })
        #expect(finished.load(ordering: .acquiring) == 0)
        lock.unlockRaw()
        #expect(waitUntil(timeout: .seconds(30)) { finished.load(ordering: .acquiring) == takers })
        #expect(lock.withLock { $0 } == takers)
        #expect(spindle_word_load(lock.word) == 0)
    }
}

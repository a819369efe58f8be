// Resources: nothing a runtime holds outlives its use (descriptors, stack pools, blocking
// threads, joiners), and nothing queued is dropped. Each test failed before its fix.
@testable import Spindle
import CSpindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif


/// Waits until `condition` holds, for at most 30 s; false if it never did.
private func eventually(_ condition: () -> Bool) -> Bool {
    let giveUp = Sys.nowNanos() + 30_000_000_000
    while !condition() {
        if Sys.nowNanos() > giveUp { return false }
        sched_yield()
    }
    return true
}

@Suite(.serialized) struct ResourceTests {
    /// A runtime that forwarded a job stays allocated for good; its 2(N+1) epoll and event
    /// descriptors are closed anyway once its threads are gone.
    @Test func aStoppedRuntimeThatForwardedClosesItsDescriptors() async throws {
        // Swift's own executor opens descriptors of its own the first time it sleeps
        // (Dispatch's timers); let it do so before counting.
        try await Task.detached { try await Task.sleep(for: .milliseconds(1)) }.value
        let before = ProcessStats.openDescriptors()
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "r"))
        #expect(ProcessStats.openDescriptors() >= before + 6)
        // A cancelled Task.sleep's wake-up stays armed: shutdown forwards it.
        let sleeper = Task(executorPreference: rt) { try? await Task.sleep(for: .seconds(3600)) }
        #expect(eventually { rt.timers.count >= 1 })
        rt.shutdown()
        #expect(rt.forwardedJobCount >= 1)
        sleeper.cancel()
        #expect(eventually { ProcessStats.openDescriptors() <= before }, "\(ProcessStats.openDescriptors()) open, \(before) before")
    }

    /// A runtime whose reactor cannot be completed closes the backends it had made.
    @Test func aFailedInitClosesWhatItOpened() throws {
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved)
        let before = ProcessStats.openDescriptors()
        // Room for a few epoll instances, not for the 2 × 9 that 8 workers need.
        var limited = saved
        limited.rlim_cur = rlim_t(before + 7)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limited)
        var failed = false
        do {
            _ = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 8, name: "r"))
        } catch RuntimeError.reactorUnavailable {
            failed = true
        } catch {}
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved)
        #expect(failed)
        #expect(ProcessStats.openDescriptors() == before)
    }

    /// `shutdown(timeout:)` that gives up still shuts the blocking pool down: its idle
    /// threads exit (they used to linger for their keep-alive).
    @Test func aTimedOutShutdownStillStopsTheBlockingPool() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, blockingKeepAlive: .seconds(3600)))
        _ = try rt.run { try await rt.spawnBlocking { 1 } }
        #expect(rt.blocking.threadCount == 1)
        let release = Flag(), spinning = Flag()
        Task(executorPreference: rt) {
            spinning.set()
            while !release.isSet { sched_yield() } // a job that does not return in time
        }
        #expect(eventually { spinning.isSet })
        #expect(rt.shutdown(timeout: .milliseconds(50)) == false)
        #expect(eventually { rt.blocking.threadCount == 0 }, "\(rt.blocking.threadCount) blocking threads left")
        release.set()
    }

    /// A fiber that gives up joining (cancelled) is freed when it ends, not when the fiber
    /// it joined ends.
    @Test func aCancelledJoinerIsFreedBeforeItsTargetEnds() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "r"))
        defer { rt.shutdown() }
        let gate = Channel<Int>(capacity: 0)
        let target = rt.spawnFiber { () -> Int in (try? gate.receive()) ?? 0 }
        weak var joinerCore: FiberCore?
        do {
            let joiner = rt.spawnFiber { () throws -> Int in try target.join() }
            joinerCore = joiner.core
            #expect(eventually { target.core.joiners.load(ordering: .acquiring) != 0 })
            joiner.cancel()
            let outcome = try onPlainThread { () -> Bool in
                do { _ = try joiner.join(); return false } catch is CancellationError { return true }
            }
            #expect(outcome)
        }
        #expect(eventually { joinerCore == nil }, "the cancelled joiner is still alive")
        #expect(!target.isFinished)
        try onPlainThread { try gate.send(1) }
        #expect(try onPlainThread { try target.join() } == 1)
    }

    /// Idle rule 2: at most half the workers search at once, even when many try together.
    /// (A guard, not a proof: on this 2-core machine it did not catch the old load-then-add
    /// race in 1.6M attempts; the fix is by construction, a compare-exchange loop.)
    @Test func theSearcherCapHoldsUnderContention() throws {
        let idle = Idle(workerCount: 4)
        let over = Atomic<Int>(0)
        let rounds = 200_000 / testScale
        let done = Atomic<Int>(0)
        let ready = Atomic<Int>(0)
        let threads = 8
        for _ in 0..<threads {
            try OSThread.spawn(name: "idle") {
                // Start together, so the attempts really overlap.
                ready.add(1, ordering: .acquiringAndReleasing)
                while ready.load(ordering: .acquiring) < threads {}
                for _ in 0..<rounds {
                    if idle.transitionToSearching() {
                        // Stay a searcher for a moment, so others try while the count is
                        // at the cap's edge.
                        for _ in 0..<50 { if idle.searchingCount > 2 { over.add(1, ordering: .relaxed) } }
                        _ = idle.transitionFromSearching()
                    }
                }
                done.add(1, ordering: .releasing)
            }
        }
        #expect(eventually { done.load(ordering: .acquiring) == threads })
        #expect(over.load(ordering: .relaxed) == 0, "the cap of 2 searchers was exceeded \(over.load(ordering: .relaxed)) times")
    }

    /// Local-queue overflow into a closed inject queue (the runtime stopping) hands the
    /// jobs to the caller instead of dropping them.
    @Test func overflowIntoAClosedInjectQueueIsNotDropped() {
        let q = LocalQueue(capacity: 4)
        let inject = InjectQueue()
        _ = inject.close()
        var orphans: [UInt] = []
        let pushed = (1...9).map { UInt($0) << 4 }
        for bits in pushed {
            q.push(Runnable(bits: bits), overflow: inject, orphaned: { orphans.append($0.bits) })
        }
        var kept: [UInt] = []
        while let r = q.pop() { kept.append(r.bits) }
        #expect((kept + orphans).sorted() == pushed)
    }
}

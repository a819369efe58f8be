// A worker whose fibers hand off to each other directly (fiber to fiber, never back to
// the loop of their own accord) still takes its housekeeping tick: due timers fire, and a
// dump gets its answer. Both failed before: `directSuccessor` took the tick that is the
// loop's and handed back one tick early, so the loop's next tick was never the periodic one.
import Spindle
import Synchronization
import Testing

@Suite(.serialized) struct HandOffChainTests {
    /// Two fibers yield to each other until a third, sleeping, fiber wakes up.
    @Test func aSleeperWakesWhileTwoFibersYieldToEachOther() async throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "chain-sleep", stallThreshold: nil))
        defer { rt.shutdown() }
        let woke = Atomic<Bool>(false)
        let yielders = (0..<2).map { _ in
            rt.spawnFiber {
                // Bounded: a hang guard, far above what a working runtime needs.
                var n = 0
                while !woke.load(ordering: .acquiring) && n < 5_000_000 { try Fiber.yield(); n += 1 }
                return n
            }
        }
        let sleeper = rt.spawnFiber {
            // The workload, not synchronization: a timer that must fire while the worker
            // never leaves the hand-off chain of its own accord.
            try Fiber.sleep(for: .milliseconds(5))
            woke.store(true, ordering: .releasing)
        }
        try await sleeper.value
        for y in yielders {
            let n = try await y.value
            #expect(n < 5_000_000, "the sleeper woke only when the yielders gave up")
        }
    }

    @Test func aWorkerInAHandOffChainAnswersADump() async throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "chain-dump", stallThreshold: nil))
        defer { rt.shutdown() }
        let stop = Atomic<Bool>(false), running = Atomic<Int>(0)
        let yielders = (0..<2).map { i in
            rt.spawnFiber(name: "yielder-\(i)") {
                running.add(1, ordering: .relaxed)
                var n = 0
                while !stop.load(ordering: .acquiring) && n < 5_000_000 { try Fiber.yield(); n += 1 }
            }
        }
        #expect(await waitUntil { running.load(ordering: .relaxed) == 2 })
        let dump = rt.dump(printing: false)
        stop.store(true, ordering: .releasing)
        for y in yielders { try await y.value }
        #expect(dump.workers.count == 1 && dump.workers[0].answered, "\(dump)")
        #expect(Set(dump.fibers.compactMap(\.name)) == ["yielder-0", "yielder-1"], "\(dump)")
    }
}

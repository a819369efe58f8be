// Hardening: defects found by running and reading the code, each with the test that failed
// before its fix. Ordering tests, not timing tests: a bound only fires on a real hang.
@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Waits on the calling (plain) thread until `condition` holds, for at most 30 s.
private func waitFor(_ what: String, _ condition: () -> Bool) {
    let giveUp = Sys.nowNanos() + 30_000_000_000
    while !condition() {
        if Sys.nowNanos() > giveUp { Issue.record("timed out waiting for \(what)"); return }
        sched_yield()
    }
}

/// A blocking call made from synchronous code (the blocking forms are `noasync`, so async
/// code reaches them only through a synchronous function like this one).
private func sleepBlocking(_ d: Duration) throws { try Fiber.sleep(for: d) }

@Suite(.serialized) struct HardeningTests {
    /// A task in `Spindle.sleep` when its runtime shuts down still wakes, at its deadline,
    /// on Swift's executor (it was dropped: the task stayed suspended forever).
    @Test func spindleSleepResumesAfterShutdownAtItsDeadline() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "h"))
        let done = Completion<Int64>()
        let deadline = Sys.nowNanos() + 200_000_000
        Task(executorPreference: rt) {
            try? await Spindle.sleep(for: .milliseconds(200))
            done.finish(.success(Sys.nowNanos()))
        }
        waitFor("the sleep to be armed") { rt.timers.count == 1 }
        #expect(rt.shutdown(timeout: .seconds(10)))
        #expect(done.done.wait(deadline: Sys.nowNanos() + 10_000_000_000), "the sleeping task never resumed")
        if done.isDone { #expect(try done.take() >= deadline, "it woke before its deadline") }
        #expect(rt.forwardedJobCount >= 1)
    }

    /// `withTimeout` and `Interval` sleep the same way: a `withTimeout` whose operation
    /// outlives the runtime still times out.
    @Test func withTimeoutStillTimesOutAfterShutdown() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "h"))
        let done = Completion<Bool>()
        let gate = Channel<Int>(capacity: 0)
        Task(executorPreference: rt) {
            do {
                _ = try await withTimeout(.milliseconds(100)) { try await gate.receive() }
                done.finish(.success(false))
            } catch is TimeoutError {
                done.finish(.success(true))
            } catch {
                done.finish(.success(false))
            }
        }
        waitFor("the timeout to be armed") { rt.timers.count >= 1 }
        #expect(rt.shutdown(timeout: .seconds(10)))
        #expect(done.done.wait(deadline: Sys.nowNanos() + 10_000_000_000), "withTimeout never returned")
        if done.isDone { #expect(try done.take()) }
        gate.close()
    }

    /// A timeout-only select from a task suspends it instead of sleeping its worker's
    /// thread: on a one-worker runtime another task runs while it waits.
    @Test func timeoutOnlySelectFromATaskDoesNotBlockItsWorker() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "h"))
        defer { rt.shutdown() }
        let other = Flag(), selecting = Flag()
        let sawOther = Completion<Bool>()
        Task(executorPreference: rt) {
            selecting.set()
            var s = Select<Int>()
            s.onTimeout(.seconds(2)) { 1 }
            _ = try? await s.run()
            sawOther.finish(.success(other.isSet))
        }
        waitFor("the select to start") { selecting.isSet }
        Task(executorPreference: rt) { other.set() }
        sawOther.done.wait()
        #expect(try sawOther.take(), "the other task ran only after the select's timeout")
    }

    /// From a fiber the same select parks the fiber and returns the timeout's value (this
    /// one passed before too; it covers the fiber path).
    @Test func timeoutOnlySelectFromAFiberParksIt() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "h"))
        defer { rt.shutdown() }
        let other = Flag()
        let f = rt.spawnFiber { () throws -> (Int, Bool) in
            var s = Select<Int>()
            s.onTimeout(.milliseconds(300)) { 7 }
            let v = try s.run()
            return (v, other.isSet)
        }
        Task(executorPreference: rt) { other.set() }
        let (v, sawOther) = try onPlainThread { try f.join() }  // join blocks: a plain thread's
        #expect(v == 7)
        #expect(sawOther, "the task ran only after the fiber's select")
    }

    /// `Fiber.sleep` from a task on a worker refuses instead of sleeping the worker.
    @Test func fiberSleepFromAWorkerTaskRefuses() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "h"))
        defer { rt.shutdown() }
        let refused = try rt.run { () -> Bool in
            do { try sleepBlocking(.seconds(5)); return false } catch FiberError.blockingOnWorker { return true } catch { return false }
        }
        #expect(refused)
    }

    /// A select with no branches and no timeout is an error, not a crash.
    @Test func emptySelectThrows() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "h"))
        defer { rt.shutdown() }
        let asyncError = try rt.run { () -> SelectError? in
            do { _ = try await Select<Int>().run(); return nil } catch let e as SelectError { return e } catch { return nil }
        }
        #expect(asyncError == .noBranches)
        let fiber = rt.spawnFiber { () -> SelectError? in
            do { _ = try Select<Int>().run(); return nil } catch let e as SelectError { return e } catch { return nil }
        }
        let fiberError = try onPlainThread { try fiber.join() }  // join blocks: a plain thread's
        #expect(fiberError == .noBranches)
        #expect(SelectError.noBranches.description.contains("onTimeout"))
    }

    /// A fiber's select takes its timer out when a branch wins (selects with an hour's
    /// timeout left their timers armed for the hour).
    @Test func fiberSelectCancelsItsTimerWhenABranchWins() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "h"))
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        let rounds = 50
        let f = rt.spawnFiber { () throws -> Int in
            var sum = 0
            for _ in 0..<rounds {
                var s = Select<Int>()
                s.onReceive(ch) { $0 ?? -1 }
                s.onTimeout(.seconds(3600)) { -2 }
                sum += try s.run()
            }
            return sum
        }
        // Send once the select waits (its timer armed), at least in the first round.
        waitFor("the first select to wait") { rt.timers.count >= 1 }
        // The blocking sends and join, from a plain thread (inside this test's task they
        // refuse).
        let sum = try onPlainThread { () throws -> Int in
            for _ in 0..<rounds { try ch.send(1) }
            return try f.join()
        }
        #expect(sum == rounds)
        waitFor("the timers to go") { rt.timers.count == 0 }
        #expect(rt.timers.count == 0, "\(rt.timers.count) select timers left armed")
    }
}

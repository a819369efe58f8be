// One suite, stamped out for every runtime shape (current-thread, multi-thread with 1, 2
// and 4 workers), like Tokio's rt_common.
@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct Boom: Error, Equatable { let code: Int }

actor Tally {
    var count = 0
    var onWorker = true
    func add(from runtime: Runtime) {
        count += 1
        if Runtime.current !== runtime { onWorker = false }
    }
}

enum Trace {
    @TaskLocal static var label = "none"
}

@Suite(.serialized) struct RuntimeSuite {
    @Test(arguments: Shape.all)
    func runReturnsValue(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let v = try rt.run { 6 * 7 }
        #expect(v == 42)
        // Twice: a runtime serves many runs.
        #expect(try rt.run { "again" } == "again")
    }

    @Test(arguments: Shape.all)
    func runRethrows(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        #expect(throws: Boom(code: 7)) {
            try rt.run { () async throws -> Int in throw Boom(code: 7) }
        }
    }

    @Test(arguments: Shape.all)
    func bodyRunsOnAWorker(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let (same, index) = try rt.run { (Runtime.current === rt, Runtime.currentWorkerIndex) }
        #expect(same)
        #expect(index.map { $0 >= 0 && $0 < rt.workerCount } == true)
    }

    @Test(arguments: Shape.all)
    func runInsideWorkerIsRefused(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let other = try Runtime(flavor: .currentThread)
        defer { other.shutdown() }
        let refused = try rt.run { () -> [RuntimeError?] in
            var errors: [RuntimeError?] = []
            for target in [rt, other] {
                do { _ = try target.run { 1 }; errors.append(nil) } catch let e as RuntimeError { errors.append(e) } catch { errors.append(nil) }
            }
            return errors
        }
        #expect(refused == [.runInsideWorker, .runInsideWorker])
        #expect(RuntimeError.runInsideWorker.description.contains("inside a Spindle worker"))
    }

    /// Work pushed from outside while the workers go idle between pushes must always wake
    /// one: a lost wake-up shows up as an iteration that misses its deadline.
    @Test(arguments: Shape.all.filter { $0.flavor == .multiThread })
    func noLostWakeUpsFromOutside(shape: Shape) throws {
        let rt = try shape.make()
        var missed = 0
        // Bounded: a stranded job would otherwise keep the drain open forever.
        defer { #expect(rt.shutdown(timeout: .seconds(5))) }
        for i in 0..<(20_000 / testScale) {
            let c = Completion<Int>()
            Task(executorPreference: rt) { c.finish(.success(i)) }
            if !c.done.wait(deadline: Sys.nowNanos() + 5_000_000_000) { missed += 1; break }
            if i % 7 == 0 { // let the workers reach their park (all of them, not a guess at how long)
                let parkBy = Sys.nowNanos() + 1_000_000_000
                while rt.idle.unparkedCount != 0 && Sys.nowNanos() < parkBy { usleep(20) }
            }
        }
        #expect(missed == 0)
    }

    /// A job that wakes B (B lands in its worker's run-next slot) and then blocks that
    /// worker: another worker, searching because of other new work, must take B.
    @Test(arguments: Shape.all.filter { $0.flavor == .multiThread && $0.workers >= 2 })
    func runNextIsStolenFromABlockedWorker(shape: Shape) throws {
        let rt = try shape.make()
        defer { #expect(rt.shutdown(timeout: .seconds(5))) }
        let box = ContinuationBox()
        let ranB = Flag()
        let stolen = try rt.run { () async -> Bool in
            let b = Task(executorPreference: rt) {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in box.store(c) }
                ranB.set()
            }
            while !box.isStored { await Task.yield() }
            Task(executorPreference: rt) {} // lands in run-next first...
            box.resume()                     // ...then B takes run-next and pushes it out
            let deadline = Sys.nowNanos() + 5_000_000_000
            while !ranB.isSet && Sys.nowNanos() < deadline { usleep(100) } // blocks this worker
            let ok = ranB.isSet
            await b.value
            return ok
        }
        #expect(stolen)
    }

    /// 1M tasks (a task group's children), each completes exactly once, all on workers.
    @Test(arguments: Shape.all)
    func millionTasksEachCompleteOnce(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let n = 1_000_000 / testScale
        let seen = SeenSet(count: n)
        let offWorker = Atomic<Int>(0)
        let flags = SharedCounter()
        try rt.run {
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<n {
                    group.addTask {
                        seen.mark(i)
                        if Runtime.current !== rt { flags.increment() }
                    }
                }
            }
        }
        _ = offWorker
        #expect(seen.missing == 0)
        #expect(seen.duplicates == 0)
        #expect(flags.value == 0)
    }

    @Test(arguments: Shape.all)
    func asyncLetAndGroupsAndActors(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let (sum, tallied, onWorker) = try rt.run { () async -> (Int, Int, Bool) in
            async let a = (1...100).reduce(0, +)
            async let b = (Runtime.current === rt) ? 1 : 0
            let tally = Tally()
            await withTaskGroup(of: Void.self) { g in
                for _ in 0..<1_000 { g.addTask { await tally.add(from: rt) } }
            }
            return (await a + b, await tally.count, await tally.onWorker)
        }
        #expect(sum == 5051)
        #expect(tallied == 1_000)
        #expect(onWorker)
    }

    @Test(arguments: Shape.all)
    func taskLocalsFlowIntoChildren(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let labels = try rt.run { () async -> [String] in
            await Trace.$label.withValue("outer") {
                async let x = Trace.label
                let fromGroup = await withTaskGroup(of: String.self) { g in
                    g.addTask { Trace.label }
                    return await g.next()!
                }
                return [await x, fromGroup, Trace.label]
            }
        }
        #expect(labels == ["outer", "outer", "outer"])
    }

    @Test(arguments: Shape.all)
    func cancellationReachesChildren(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let result = try rt.run { () async -> (Bool, Bool) in
            let child = Task(executorPreference: rt) { () async -> Bool in
                do {
                    try await Task.sleep(for: .seconds(60))
                    return false
                } catch is CancellationError {
                    return Task.isCancelled
                } catch { return false }
            }
            // Cancel it while it sleeps: once its wake-up is armed.
            let armed = await waitUntil { !rt.timers.isEmpty }
            child.cancel()
            let groupCancelled = await withTaskGroup(of: Bool.self) { g in
                g.addTask {
                    while !Task.isCancelled { await Task.yield() }
                    return true
                }
                g.cancelAll()
                return await g.next()!
            }
            return (await child.value && armed, groupCancelled)
        }
        #expect(result == (true, true))
    }

    @Test(arguments: Shape.all)
    func sleepsFireInDeadlineOrder(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let order = try rt.run { () async -> [Int] in
            let log = OrderLog()
            // The deadlines are fixed before any sleeper starts (a common base, 50 ms ahead),
            // so a sleeper that starts late on a loaded machine cannot reorder them.
            let base = ContinuousClock.now + .milliseconds(50)
            await withTaskGroup(of: Void.self) { g in
                for ms in [40, 10, 30, 20, 0] {
                    g.addTask {
                        try? await Task.sleep(until: base + .milliseconds(ms), clock: .continuous)
                        await log.append(ms)
                    }
                }
            }
            return await log.items
        }
        #expect(order == [0, 10, 20, 30, 40])
    }

    @Test(arguments: Shape.all)
    func sleepLastsAtLeastItsDuration(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let (elapsed, onWorker) = try rt.run { () async throws -> (Duration, Bool) in
            let t0 = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(25))
            return (ContinuousClock.now - t0, Runtime.current === rt)
        }
        #expect(elapsed >= .milliseconds(25))
        #expect(onWorker)
    }

    /// Blocking closures run off the workers: while 10 of them sleep, tasks keep running.
    @Test(arguments: Shape.all)
    func spawnBlockingLeavesWorkersFree(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let release = Flag()
        let started = SharedCounter()
        let (progress, offWorkers) = try rt.run { () async throws -> (Int, Bool) in
            let blockers = Task(executorPreference: rt) { () async throws -> Bool in
                try await withThrowingTaskGroup(of: Bool.self) { g in
                    for _ in 0..<10 {
                        g.addTask {
                            try await rt.spawnBlocking { () -> Bool in
                                started.increment()
                                while !release.isSet { usleep(1_000) }
                                return Runtime.current == nil
                            }
                        }
                    }
                    var all = true
                    for try await ok in g { all = all && ok }
                    return all
                }
            }
            // All ten are now blocking threads; the workers must still run tasks.
            while started.value < 10 { try await Task.sleep(for: .milliseconds(1)) }
            var progress = 0
            for _ in 0..<1_000 {
                await Task.yield()
                progress += 1
            }
            let count = await withTaskGroup(of: Int.self) { g in
                for _ in 0..<100 { g.addTask { 1 } }
                return await g.reduce(0, +)
            }
            release.set()
            return (progress + count, try await blockers.value)
        }
        #expect(progress == 1_100)
        #expect(offWorkers)
    }

    @Test(arguments: Shape.all)
    func spawnBlockingPropagatesErrors(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        #expect(throws: Boom(code: 3)) {
            try rt.run { try await rt.spawnBlocking { () throws -> Int in throw Boom(code: 3) } }
        }
    }

    /// Shutdown waits for queued and running work, including the work it spawns.
    @Test(arguments: Shape.all)
    func shutdownFinishesWorkInFlight(shape: Shape) throws {
        let rt = try shape.make()
        let done = SharedCounter()
        try rt.run {
            for _ in 0..<200 {
                Task(executorPreference: rt) {
                    for _ in 0..<10 { await Task.yield() }
                    // Work spawned while the shutdown is already draining counts too.
                    await withTaskGroup(of: Void.self) { g in
                        for _ in 0..<5 { g.addTask { await Task.yield() } }
                    }
                    done.increment()
                }
            }
        }
        #expect(rt.shutdown(timeout: .seconds(30)))
        #expect(done.value == 200)
        #expect(rt.isShutDown)
        #expect(rt.forwardedJobCount == 0)
    }

    /// A job that reaches a stopped runtime is forwarded to Swift's global executor: the
    /// task finishes there instead of hanging or crashing.
    @Test(arguments: Shape.all)
    func enqueueAfterShutdownIsForwarded(shape: Shape) async throws {
        let rt = try shape.make()
        let box = ContinuationBox()
        let finished = Task { () async -> Bool in
            await withTaskExecutorPreference(rt) {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in box.store(c) }
                return Runtime.current === rt
            }
        }
        if shape.flavor == .currentThread {
            // Someone must drive a current-thread runtime for the task to start.
            try rt.run { while !box.isStored { await Task.yield() } }
        }
        while !box.isStored { usleep(1_000) }
        rt.shutdown()
        #expect(rt.isShutDown)
        box.resume()
        let ranOnStoppedRuntime = await finished.value
        #expect(ranOnStoppedRuntime == false)
        #expect(rt.forwardedJobCount >= 1)
        #expect(throws: RuntimeError.shutDown) { try rt.run { 1 } }
    }

    /// A sleeping task is suspended, not in flight: shutdown does not wait for it, and its
    /// wake-up keeps its deadline on the fallback executor. Checked as an ordering, not a
    /// wall-clock budget for shutdown: the sleeper has not resumed when shutdown returns,
    /// and it resumes no earlier than its deadline. (The sleep is 1 s so that a shutdown
    /// slowed by a loaded machine still returns well before it.)
    @Test(arguments: Shape.all)
    func shutdownForwardsArmedTimers(shape: Shape) async throws {
        let rt = try shape.make()
        let started = Flag()
        let resumed = Flag()
        let sleeper = Task { () async -> Duration? in
            await withTaskExecutorPreference(rt) {
                started.set()
                let asleep = ContinuousClock.now
                do { try await Task.sleep(for: .seconds(1)) } catch { return nil }
                resumed.set()
                return ContinuousClock.now - asleep
            }
        }
        if shape.flavor == .currentThread {
            try rt.run { while !started.isSet { await Task.yield() } }
        }
        while !started.isSet { usleep(1_000) }
        while rt.timers.isEmpty { usleep(1_000) }
        let t0 = ContinuousClock.now
        #expect(rt.shutdown(timeout: .seconds(10)))
        #expect(!resumed.isSet) // shutdown did not wait for the sleeper
        let slept = await sleeper.value
        #expect(slept != nil)
        #expect(slept.map { $0 >= .seconds(1) } == true) // its deadline was kept
        #expect(ContinuousClock.now - t0 >= .milliseconds(250))
        #expect(rt.forwardedJobCount >= 1)
    }

    /// `shutdown(timeout:)` gives up on a job that never finishes, and forwards what is
    /// still queued behind it.
    @Test(arguments: Shape.all.filter { $0.flavor == .multiThread })
    func shutdownTimeoutGivesUpOnStuckJob(shape: Shape) throws {
        let rt = try shape.make()
        let release = Flag()
        let stuck = SharedCounter()
        let followers = SharedCounter()
        // Blocks every worker on purpose (the run body itself becomes the last one).
        try rt.run {
            for _ in 0..<(rt.workerCount - 1) {
                Task(executorPreference: rt) {
                    stuck.increment()
                    while !release.isSet { usleep(1_000) }
                }
            }
            while stuck.value < rt.workerCount - 1 { await Task.yield() }
        }
        Task(executorPreference: rt) {
            stuck.increment()
            while !release.isSet { usleep(1_000) }
        }
        while stuck.value < rt.workerCount { usleep(1_000) }
        // Every worker is stuck; queue work behind them from outside.
        for _ in 0..<50 {
            Task(executorPreference: rt) { followers.increment() }
        }
        let t0 = ContinuousClock.now
        #expect(rt.shutdown(timeout: .milliseconds(100)) == false)
        #expect(ContinuousClock.now - t0 < .seconds(5))
        #expect(rt.isShutDown)
        release.set()
        // The queued followers were forwarded to Swift's executor and still ran.
        let deadline = ContinuousClock.now + .seconds(10)
        while followers.value < 50 && ContinuousClock.now < deadline { usleep(1_000) }
        #expect(followers.value == 50)
        #expect(rt.forwardedJobCount >= 50)
    }

    /// Called from one of its own workers, shutdown starts and returns at once.
    @Test(arguments: Shape.all)
    func shutdownFromInsideStartsIt(shape: Shape) throws {
        let rt = try shape.make()
        let returned = try rt.run { rt.shutdown(timeout: .seconds(5)) }
        #expect(returned == false)
        #expect(rt.shutdown(timeout: .seconds(5)))
        #expect(rt.isShutDown)
    }
}

actor OrderLog {
    var items: [Int] = []
    func append(_ i: Int) { items.append(i) }
}

final class SharedCounter: Sendable {
    private let v = Atomic<Int>(0)
    func increment() { v.add(1, ordering: .relaxed) }
    var value: Int { v.load(ordering: .acquiring) }
}

final class ContinuationBox: Sendable {
    private let slot = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let stored = Flag()
    func store(_ c: CheckedContinuation<Void, Never>) { slot.withLock { $0 = c }; stored.set() }
    var isStored: Bool { stored.isSet }
    func resume() { slot.withLock { $0.take() }?.resume() }
}

@testable import Spindle
import Testing
import Synchronization

@Suite(.serialized) struct TimeTests {
    func runtime(_ workers: Int = 2) throws -> Runtime {
        try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: workers, name: "time"))
    }

    @Test func sleepsEndInDeadlineOrder() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let order = Lock<[Int]>([])
        try rt.run {
            // The deadlines are fixed before any sleeper starts (a common base, 50 ms ahead),
            // so a sleeper that starts late on a loaded machine cannot reorder them.
            let base = ContinuousClock.now + .milliseconds(50)
            await withTaskGroup(of: Void.self) { g in
                for i in [5, 1, 4, 2, 3] {
                    g.addTask {
                        try? await Spindle.sleep(until: base + .milliseconds(10 * i))
                        order.withLock { $0.append(i) }
                    }
                }
            }
        }
        #expect(order.withLock { $0 } == [1, 2, 3, 4, 5])
    }

    @Test func sleepLastsAtLeastItsDuration() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let elapsed = try rt.run { () async throws -> Duration in
            let start = ContinuousClock.now
            try await Spindle.sleep(for: .milliseconds(20))
            return ContinuousClock.now - start
        }
        #expect(elapsed >= .milliseconds(20))
    }

    /// Cancelled sleeps take their timers out at once (Task.sleep's would stay armed).
    @Test func cancellingSleepingTasksRemovesTheirTimers() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let n = 10_000 / testScale
        let cancelled = Lock(0)
        try rt.run {
            var tasks: [Task<Void, Never>] = []
            for _ in 0..<n {
                tasks.append(Task(executorPreference: rt) {
                    do { try await Spindle.sleep(for: .seconds(3600)) } catch is CancellationError {
                        cancelled.withLock { $0 += 1 }
                    } catch {}
                })
            }
            // Wait until every sleep is armed (bounded: a failure, not a hang).
            let giveUp = ContinuousClock.now + .seconds(60)
            while rt.timers.count < n && ContinuousClock.now < giveUp { await Task.yield() }
            #expect(rt.timers.count == n)
            for t in tasks { t.cancel() }
            for t in tasks { await t.value }
        }
        #expect(cancelled.withLock { $0 } == n)
        #expect(rt.timers.count == 0)
        #expect(rt.timers.isEmpty)
    }

    @Test func fiberSleepCancellationRemovesItsTimer() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let f = rt.spawnFiber { () throws -> Void in try Spindle.sleep(for: .seconds(3600)) }
        while rt.timers.count == 0 { Sys.sleepThread(untilNanos: Sys.nowNanos() + 1_000_000) }
        f.cancel()
        // join blocks: from a plain thread (inside this test's task it refuses).
        #expect(throws: CancellationError.self) { try onPlainThread { try f.join() } }
        #expect(rt.timers.count == 0)
    }

    @Test func timeoutThrowsWhenTheOperationIsLateAndCancelsIt() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let sawCancel = Flag()
        let result = try rt.run { () async -> Result<Int, any Error> in
            do {
                return .success(try await withTimeout(.milliseconds(20)) { () async throws -> Int in
                    do { try await Spindle.sleep(for: .seconds(60)) } catch { sawCancel.set(); throw error }
                    return 1
                })
            } catch { return .failure(error) }
        }
        guard case .failure(let e) = result else { Issue.record("expected a timeout"); return }
        #expect(e as? TimeoutError == TimeoutError(limit: .milliseconds(20)))
        #expect(sawCancel.isSet)
        #expect(rt.timers.count == 0) // the operation's sleep was removed too
    }

    @Test func timeoutReturnsTheValueWhenInTime() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let v = try rt.run { try await withTimeout(.seconds(60)) { 42 } }
        #expect(v == 42)
        #expect(rt.timers.count == 0) // the timeout's timer was removed
    }

    @Test func timeoutPassesTheOperationsErrorThrough() throws {
        struct Boom: Error {}
        let rt = try runtime()
        defer { rt.shutdown() }
        #expect(throws: Boom.self) {
            try rt.run { try await withTimeout(.seconds(60)) { () async throws -> Int in throw Boom() } }
        }
    }

    @Test func intervalTicksFromTasksAndFibers() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let ticks = try rt.run { () async -> Int in
            var n = 0
            for await _ in Interval(every: .milliseconds(5)) {
                n += 1
                if n == 5 { break }
            }
            return n
        }
        #expect(ticks == 5)
        let f = rt.spawnFiber { () throws -> [ContinuousClock.Instant] in
            var t = Interval(every: .milliseconds(5), missedTicks: .burst).makeTicker()
            return try (0..<4).map { _ in try t.next() }
        }
        let instants = try onPlainThread { try f.join() }   // join blocks: a plain thread's
        #expect(instants.count == 4)
        for (a, b) in zip(instants, instants.dropFirst()) { #expect(b - a == .milliseconds(5)) }
    }

    @Test func intervalEndsWhenTheTaskIsCancelled() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let n = try rt.run { () async -> Int in
            let t = Task(executorPreference: rt) { () async -> Int in
                var n = 0
                for await _ in Interval(every: .seconds(3600)) { n += 1 }
                return n
            }
            try? await Spindle.sleep(for: .milliseconds(10))
            t.cancel()
            return await t.value
        }
        #expect(n == 1) // the immediate first tick, then the end
    }

    /// The missed-tick rules, on the pure schedule (no clock involved).
    @Test func missedTickBehaviours() {
        func run(_ b: MissedTickBehavior, deliveries: [Int64]) -> [Int64] {
            var s = IntervalSchedule(period: 10, behavior: b)
            let base = s.nextTarget
            var targets: [Int64] = []
            for d in deliveries {
                targets.append(s.nextTarget - base)
                _ = s.fired(now: base + d)
            }
            return targets
        }
        // Ticks due at 0,10,20,…; the second is delivered late at 35.
        #expect(run(.burst, deliveries: [0, 35, 35, 35, 40]) == [0, 10, 20, 30, 40])
        #expect(run(.delay, deliveries: [0, 35, 45, 55]) == [0, 10, 45, 55])
        #expect(run(.skip, deliveries: [0, 35, 40, 50]) == [0, 10, 40, 50])
    }

    @Test func blockingSleepIsRefusedOnAWorkerTask() throws {
        let rt = try runtime()
        defer { rt.shutdown() }
        let refused = try rt.run { () async -> Bool in
            do { try { () throws in try Spindle.sleep(for: .milliseconds(1)) }() } catch FiberError.blockingOnWorker { return true } catch {}
            return false
        }
        #expect(refused)
    }
}

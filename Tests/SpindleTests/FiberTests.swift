// Fibers on the runtime's workers: spawn, yield, sleep, join, await, wait for async work,
// cancellation, fairness with tasks, shutdown. Stamped out for every runtime shape.
@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Counts deinits, to prove a fiber's frames released what they held.
final class DeinitCounter: Sendable {
    let count = Atomic<Int>(0)
    final class Token: Sendable {
        let owner: DeinitCounter
        init(_ owner: DeinitCounter) { self.owner = owner }
        deinit { owner.count.add(1, ordering: .relaxed) }
    }
    func token() -> Token { Token(self) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// An ordered log shared between fibers and tasks.
final class EventLog: Sendable {
    private let events = Lock<[String]>([])  // Lock, not Mutex: TSan cannot see Mutex (README)
    func add(_ e: String) { events.withLock { $0.append(e) } }
    var all: [String] { events.withLock { $0 } }
}

@Suite(.serialized) struct FiberTests {
    /// A fiber joining others parks on its own join node, the same one join after join
    /// (no allocation per join), and nothing keeps the joiner alive once it ends: not that
    /// node (it refers to the fiber while armed), not a join whose target had already
    /// finished, not a join it gave up when cancelled while the target still runs.
    @Test(arguments: Shape.all)
    func joinersReuseTheirOwnNodeAndAreFreedAfterwards(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        final class Seen: @unchecked Sendable {
            // SAFETY: written by the joiner fiber before it ends; read after its join.
            var nodes = Set<ObjectIdentifier>()
            weak var joiner: FiberCore?
        }
        let seen = Seen()
        let forever = Channel<Int>(capacity: 0)
        let blocked = rt.spawnFiber { _ = try forever.receive() }
        let (joined, freed, freedAfterGivingUp) = try rt.run { () async throws -> (Int, Bool, Bool) in
            // Handles live only inside these blocks, so the fibers' last references go
            // with them.
            let joined: Int
            do {
                let h = rt.spawnFiber { () throws -> Int in
                    for i in 0..<200 {
                        let child = try Fiber.spawn { () throws -> Int in
                            try Fiber.yield()
                            return i
                        }
                        _ = try child.join()
                        if let node = Fiber.currentCore?.ownJoinWaiter { seen.nodes.insert(ObjectIdentifier(node)) }
                        _ = try child.join()   // already finished
                    }
                    seen.joiner = Fiber.currentCore
                    return 1
                }
                joined = try await h.value
            }
            let freed = await waitUntil { seen.joiner == nil }
            // Cancelled while joining a fiber that goes on: the joiner still goes away.
            do {
                let q = rt.spawnFiber {
                    seen.joiner = Fiber.currentCore
                    _ = try? blocked.join()
                }
                _ = await waitUntil { blocked.core.joiners.load(ordering: .acquiring) != 0 }
                q.cancel()
                try await q.value
            }
            let freedAfterGivingUp = await waitUntil { seen.joiner == nil }
            forever.close()
            try await blocked.value
            return (joined, freed, freedAfterGivingUp)
        }
        #expect(joined == 1)
        #expect(seen.nodes.count == 1)
        #expect(freed)
        #expect(freedAfterGivingUp)
    }

    @Test(arguments: Shape.all)
    func valueAndErrorCrossTheBoundary(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let ok = rt.spawnFiber { 6 * 7 }
        let bad = rt.spawnFiber { () throws -> Int in throw Boom(code: 3) }
        let (v, e) = try rt.run { () async -> (Int?, Boom?) in
            let v = try? await ok.value
            do { _ = try await bad.value; return (v, nil) } catch let b as Boom { return (v, b) } catch { return (v, nil) }
        }
        #expect(v == 42)
        #expect(e == Boom(code: 3))
        #expect(ok.isFinished && bad.isFinished)
        #expect(try ok.result?.get() == 42)
    }

    @Test(arguments: Shape.all)
    func yieldFromNestedCallsInterleaves(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let log = EventLog()
        @Sendable func descend(_ depth: Int, _ tag: String) throws {
            if depth == 0 {
                for i in 0..<10 {
                    log.add("\(tag)\(i)")
                    try Fiber.yield()
                }
                return
            }
            try descend(depth - 1, tag)
        }
        // Both fibers are spawned from one fiber, so they start on the same worker and
        // alternate there (yield goes to the back of that worker's ready list).
        let outer = rt.spawnFiber { () throws -> Int in
            let a = try Fiber.spawn { try descend(20, "a") }
            let b = try Fiber.spawn { try descend(20, "b") }
            try a.join()
            try b.join()
            return 0
        }
        _ = try rt.run { try await outer.value }
        let events = log.all
        #expect(events.count == 20)
        #expect(events.filter { $0.hasPrefix("a") } == (0..<10).map { "a\($0)" })
        #expect(events.filter { $0.hasPrefix("b") } == (0..<10).map { "b\($0)" })
        if shape.workers == 1 {
            // One worker: the yields let the other fiber run, so neither did all its steps
            // before the other began.
            let i = { (e: String) in events.firstIndex(of: e)! }
            #expect(i("a0") < i("b9") && i("b0") < i("a9"), "\(events)")
        }
    }

    @Test(arguments: Shape.all)
    func aFiberStaysOnItsWorker(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let moved = DeinitCounter()  // used as a plain shared counter here
        let n = 4 * rt.workerCount
        let rounds = 200 / testScale + 10
        let handles = (0..<n).map { i in
            rt.spawnFiber { () throws -> Int in
                let home = Runtime.currentWorkerIndex
                for r in 0..<rounds {
                    if r % 50 == 0 { try Fiber.sleep(for: .microseconds(200)) } else { try Fiber.yield() }
                    if Runtime.currentWorkerIndex != home { moved.count.add(1, ordering: .relaxed) }
                }
                return i
            }
        }
        // Meanwhile tasks are spawned and stolen all around the fibers.
        let sum = try rt.run { () async throws -> Int in
            let spawned = await withTaskGroup(of: Int.self) { g in
                for i in 0..<2_000 { g.addTask { await Task.yield(); return i } }
                return await g.reduce(0, +)
            }
            var s = 0
            for h in handles { s += try await h.value }
            return s + spawned
        }
        #expect(sum == (0..<n).reduce(0, +) + (0..<2_000).reduce(0, +))
        #expect(moved.value == 0)
    }

    @Test(arguments: Shape.all)
    func fibersAndTasksInBothDirections(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        // task → fiber (await the fiber), fiber → task (Fiber.wait), fiber → fiber (join),
        // fiber spawned from a task and from a fiber.
        let result = try rt.run { () async throws -> Int in
            let f = rt.spawnFiber { () throws -> Int in
                let fromTask = try Fiber.wait { () async throws -> Int in
                    try await Task.sleep(for: .milliseconds(2))
                    return 10
                }
                let child = try Fiber.spawn { () throws -> Int in
                    try Fiber.sleep(for: .milliseconds(1))
                    return 5
                }
                return fromTask + (try child.join())
            }
            return try await f.value
        }
        #expect(result == 15)
    }

    @Test(arguments: Shape.all)
    func sleepWaitsAtLeastItsDuration(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let f = rt.spawnFiber { () throws -> Int64 in
            let start = Sys.nowNanos()
            try Fiber.sleep(for: .milliseconds(20))
            return Sys.nowNanos() - start
        }
        let elapsed = try rt.run { try await f.value }
        #expect(elapsed >= 20_000_000)
    }

    @Test(arguments: Shape.all)
    func sleepersWakeInDeadlineOrder(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let log = EventLog()
        // All on one worker (spawned from one fiber) so the wake order is observable.
        let outer = rt.spawnFiber { () throws -> Int in
            let hs = try [30, 10, 20].map { ms in
                try Fiber.spawn { () throws -> Int in
                    try Fiber.sleep(for: .milliseconds(ms))
                    log.add("\(ms)")
                    return ms
                }
            }
            return try hs.reduce(0) { $0 + (try $1.join()) }
        }
        #expect(try rt.run { try await outer.value } == 60)
        #expect(log.all == ["10", "20", "30"])
    }

    @Test(arguments: Shape.all)
    func cancellationUnwindsBlockedFibers(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let counter = DeinitCounter()
        let never = rt.spawnFiber { () throws -> Int in
            let t = counter.token()
            try Fiber.sleep(for: .seconds(3600))
            return withExtendedLifetime(t) { 0 }
        }
        let sleeper = rt.spawnFiber { () throws -> Int in
            let t = counter.token()
            try Fiber.sleep(for: .seconds(3600))
            return withExtendedLifetime(t) { 1 }
        }
        let joiner = rt.spawnFiber { () throws -> Int in
            let t = counter.token()
            let v = try never.join()
            return withExtendedLifetime(t) { v }
        }
        let waiter = rt.spawnFiber { () throws -> Int in
            let t = counter.token()
            let v = try Fiber.wait { () async throws -> Int in
                try await Task.sleep(for: .seconds(3600))
                return 2
            }
            return withExtendedLifetime(t) { v }
        }
        let yielding = Flag()
        let yielder = rt.spawnFiber { () throws -> Int in
            let t = counter.token()
            yielding.set()
            while true { try Fiber.yield() }
            return withExtendedLifetime(t) { 3 }
        }
        let outcomes = try rt.run { () async -> [String] in
            // Cancel once each is blocked: parked (sleeping, joining, waiting on its task)
            // or, for the yielder, in its loop.
            await waitUntil {
                [never.core, sleeper.core, joiner.core, waiter.core].allSatisfy { $0.waiting.load(ordering: .sequentiallyConsistent) }
                    && yielding.isSet
            }
            for h in [sleeper, joiner, waiter, yielder] { h.cancel() }
            var out: [String] = []
            for h in [sleeper, joiner, waiter, yielder] {
                do { _ = try await h.value; out.append("value") } catch is CancellationError { out.append("cancelled") } catch { out.append("\(error)") }
            }
            never.cancel()
            do { _ = try await never.value; out.append("value") } catch is CancellationError { out.append("cancelled") } catch { out.append("\(error)") }
            return out
        }
        #expect(outcomes == ["cancelled", "cancelled", "cancelled", "cancelled", "cancelled"])
        #expect(counter.value == 5)
        // A fiber wakes its joiners just before it leaves the live count (finishFiber):
        // a joiner on another worker can get here first.
        let giveUp = Sys.nowNanos() + 5_000_000_000
        while rt.liveFiberCount.load(ordering: .relaxed) != 0 && Sys.nowNanos() < giveUp { sched_yield() }
        #expect(rt.liveFiberCount.load(ordering: .relaxed) == 0)
    }

    @Test(arguments: Shape.all)
    func shutdownCancelsAndUnwindsLiveFibers(shape: Shape) throws {
        let rt = try shape.make()
        let counter = DeinitCounter()
        let started = DeinitCounter()  // used as a plain shared counter here
        let handles = (0..<10).map { _ in
            rt.spawnFiber { () throws -> Int in
                let t = counter.token()
                started.count.add(1, ordering: .relaxed)
                try Fiber.sleep(for: .seconds(3600))
                return withExtendedLifetime(t) { 0 }
            }
        }
        // Let them start and park.
        _ = try rt.run { () async -> Int in
            while started.value < 10 { await Task.yield() }
            return 0
        }
        #expect(rt.shutdown(timeout: .seconds(30)))
        #expect(counter.value == 10)
        for h in handles {
            #expect(h.isFinished)
            #expect(throws: CancellationError.self) { try h.join() }
        }
        // A fiber spawned after shutdown never runs.
        let late = rt.spawnFiber { 1 }
        #expect(throws: RuntimeError.shutDown) { try late.join() }
    }

    @Test(arguments: Shape.all)
    func fibersAndTasksShareTheWorkersFairly(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        // Fibers that only yield, forever, on every worker: a task must still get through.
        let stop = Flag()
        let spinners = (0..<(2 * rt.workerCount)).map { _ in
            rt.spawnFiber { () throws -> Int in
                var n = 0
                while !stop.isSet { try Fiber.yield(); n += 1 }
                return n
            }
        }
        let taskRounds = try rt.run { () async -> Int in
            var rounds = 0
            for _ in 0..<1_000 { await Task.yield(); rounds += 1 }
            return rounds
        }
        stop.set()
        let fiberRounds = try rt.run { () async throws -> Int in
            var n = 0
            for s in spinners { n += try await s.value }
            return n
        }
        #expect(taskRounds == 1_000)
        // And the fibers ran while the task did.
        #expect(fiberRounds > 0)
    }

    @Test(arguments: Shape.all)
    func manyFibersSpawnedAndJoined(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let n = 1_000_000 / testScale / (shape.workers == 4 ? 4 : 1)
        let seen = SeenSet(count: n)
        let total = try rt.run { () async throws -> Int in
            var handles: [FiberHandle<Int>] = []
            handles.reserveCapacity(n)
            for i in 0..<n {
                handles.append(rt.spawnFiber {
                    try Fiber.yield()
                    seen.mark(i)
                    return 1
                })
            }
            var sum = 0
            for h in handles { sum += try await h.value }
            return sum
        }
        #expect(total == n)
        #expect(seen.missing == 0 && seen.duplicates == 0)
        let giveUp = Sys.nowNanos() + 5_000_000_000 // see cancellationUnwindsBlockedFibers
        while rt.liveFiberCount.load(ordering: .relaxed) != 0 && Sys.nowNanos() < giveUp { sched_yield() }
        #expect(rt.liveFiberCount.load(ordering: .relaxed) == 0)
    }

    @Test func joinAndSleepFromAPlainThread() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let f = rt.spawnFiber { () throws -> Int in
            try Fiber.sleep(for: .milliseconds(5))
            return 9
        }
        // On a plain thread (the test's own runs a task, where these refuse).
        #expect(try onPlainThread { try f.join() } == 9)
        // Outside a fiber, on a plain thread, sleep and yield block the thread. (Fiber.wait
        // from a plain thread is tested in a subprocess: it starts a task on Swift's
        // default executor, whose two threads here may both be blocked by tests.)
        let (inFiber, slept) = try onPlainThread { () throws -> (Bool, Int64) in
            let inFiber = Fiber.isInFiber
            let t0 = Sys.nowNanos()
            try Fiber.sleep(for: .milliseconds(2))
            let slept = Sys.nowNanos() - t0
            try Fiber.yield()
            return (inFiber, slept)
        }
        #expect(!inFiber)
        #expect(slept >= 2_000_000)
    }

    @Test func blockingJoinFromATaskIsRefused() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let f = rt.spawnFiber { () throws -> Int in
            try Fiber.sleep(for: .milliseconds(50))
            return 1
        }
        // The blocking forms are `noasync`: async code reaches them only through a
        // synchronous function, and then the runtime refuses.
        func joinBlocking() throws -> Int { try f.join() }
        func waitBlocking() throws -> Int { try Fiber.wait { 1 } }
        let refused = try rt.run { () async -> [FiberError?] in
            var out: [FiberError?] = []
            do { _ = try joinBlocking(); out.append(nil) } catch { out.append(error as? FiberError) }
            do { _ = try waitBlocking(); out.append(nil) } catch { out.append(error as? FiberError) }
            return out
        }
        #expect(refused == [.blockingOnWorker("FiberHandle.join()"), .blockingOnWorker("Fiber.wait")])
        #expect(try rt.run { try await f.value } == 1)
    }

    @Test func fiberCodeSeesNoTaskState() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let seen = try rt.run { () async throws -> [String] in
            try await Trace.$label.withValue("task") {
                let f = rt.spawnFiber { () -> [String] in
                    var s: [String] = [Trace.label]
                    withUnsafeCurrentTask { t in s.append(t == nil ? "no task" : "task") }
                    return s
                }
                return try await f.value
            }
        }
        #expect(seen == ["none", "no task"])
    }

    @Test func aBiggerStackHoldsDeeperRecursion() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        @Sendable @inline(never) func deep(_ n: Int) -> Int {
            var pad = (n, n, n, n, n, n, n, n)
            return withUnsafeMutableBytes(of: &pad) { b in n == 0 ? Int(b[0]) : deep(n - 1) + 1 }
        }
        // ~2,000 levels of a frame with a 64-byte local need more than the default 64 KiB
        // (debug frames are several hundred bytes); 16 MiB holds them.
        let f = rt.spawnFiber(name: "deep", stackSize: 16 << 20) { deep(2_000) }
        #expect(try onPlainThread { try f.join() } == 2_000)
        #expect(f.name == "deep")
    }

    /// The test process never installs Spindle as Swift's global executor (that case runs
    /// in a spindle-probe subprocess: GlobalInstallTests' "fiber-on-global-runtime"), so
    /// with no current runtime there is nothing to spawn on. Required rather than
    /// branched on, so the test cannot pass without checking the refusal.
    @Test func spawnWithoutARuntimeIsRefused() throws {
        try #require(Runtime.global == nil)
        #expect(throws: FiberError.noRuntime) { try Fiber.spawn { 1 } }
    }
}

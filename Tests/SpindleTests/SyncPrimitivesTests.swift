// Semaphore, AsyncMutex, Notify, WaitGroup, Barrier, Oneshot, Watch: from tasks, from
// fibers, mixed, with cancellation.
@testable import Spindle
import Synchronization
import Testing

@Suite(.serialized) struct SyncPrimitivesTests {
    @Test(arguments: Shape.all)
    func semaphoreBoundsConcurrencyAcrossTasksAndFibers(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let sem = Semaphore(permits: 2)
        let counter = PeakCounter()
        let fibers = (0..<6).map { _ in
            rt.spawnFiber { () throws -> Void in
                try sem.acquire()
                counter.enter()
                try Fiber.yield()
                try Fiber.sleep(for: .microseconds(200))
                counter.leave()
                sem.release()
            }
        }
        try rt.run { () async throws -> Void in
            try await withThrowingTaskGroup(of: Void.self) { g in
                for _ in 0..<6 {
                    g.addTask {
                        try await sem.acquire()
                        counter.enter()
                        await Task.yield()
                        try await Task.sleep(for: .microseconds(200))
                        counter.leave()
                        sem.release()
                    }
                }
                try await g.waitForAll()
            }
            for f in fibers { try await f.value }
        }
        #expect(counter.peak <= 2)
        #expect(counter.total == 12)
        #expect(sem.availablePermits == 2)
    }

    @Test func semaphoreCancelledWaiterIsWithdrawn() async throws {
        let sem = Semaphore(permits: 0)
        let waiter = Task { try await sem.acquire() }
        await waitUntil { sem.state.withLock { $0.waiters.count } == 1 } // it waits
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        // The permit released now is not swallowed by the cancelled waiter.
        sem.release()
        #expect(sem.tryAcquire())
    }

    @Test(arguments: Shape.all)
    func mutexIsExclusiveAndFIFO(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let m = AsyncMutex()
        let log = EventLog()
        let counter = PeakCounter()
        // Fibers and tasks take turns; nobody overlaps.
        let fibers = (0..<4).map { i in
            rt.spawnFiber { () throws -> Void in
                for _ in 0..<20 {
                    try m.withLock {
                        counter.enter()
                        try Fiber.yield()     // holding the lock across a switch
                        counter.leave()
                    }
                }
                log.add("f\(i)")
            }
        }
        try rt.run { () async throws -> Void in
            try await withThrowingTaskGroup(of: Void.self) { g in
                for i in 0..<4 {
                    g.addTask {
                        for _ in 0..<20 {
                            try await m.withLock {
                                counter.enter()
                                await Task.yield()
                                counter.leave()
                            }
                        }
                        log.add("t\(i)")
                    }
                }
                try await g.waitForAll()
            }
            for f in fibers { try await f.value }
        }
        #expect(counter.peak == 1)
        #expect(counter.total == 160)
        #expect(!m.isLocked)
        #expect(log.all.count == 8)
    }

    @Test func mutexHandsOverInArrivalOrder() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let m = AsyncMutex()
        let arrivals = EventLog(), acquisitions = EventLog()
        let order = rt.spawnFiber { () throws -> Bool in
            try m.lock()
            // Five fibers queue up while we hold the lock (in whatever order they start).
            let hs = try ["a", "b", "c", "d", "e"].map { name in
                try Fiber.spawn {
                    arrivals.add(name)
                    try m.withLock { acquisitions.add(name) }
                }
            }
            for _ in 0..<10 { try Fiber.yield() }
            #expect(arrivals.all.count == 5)
            m.unlock()
            for h in hs { try h.join() }
            return acquisitions.all == arrivals.all
        }
        #expect(try onPlainThread { try order.join() })
    }

    @Test(arguments: Shape.all)
    func notifyStoresOnePermitAndWakesAll(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let n = Notify()
        n.notifyOne()          // nobody waits: stored
        n.notifyOne()          // still one permit
        let first = rt.spawnFiber { () throws -> Bool in try n.notified(); return true }
        #expect(try rt.run { try await first.value })
        // Now three waiters (two fibers, one task), woken together.
        let woken = PeakCounter()
        let fs = (0..<2).map { _ in rt.spawnFiber { () throws -> Void in try n.notified(); woken.enter() } }
        try rt.run { () async throws -> Void in
            let t = Task(executorPreference: rt) { try await n.notified(); woken.enter() }
            await waitUntil { n.state.withLock { $0.waiters.count } == 3 } // all three wait
            n.notifyAll()
            try await t.value
            for f in fs { try await f.value }
        }
        #expect(woken.total == 3)
    }

    @Test(arguments: Shape.all)
    func waitGroupWaitsForEveryone(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let wg = WaitGroup()
        let finished = PeakCounter()
        wg.add(10)
        for i in 0..<10 {
            rt.spawnFiber {
                try Fiber.sleep(for: .microseconds(100 * i))
                finished.enter()
                wg.done()
            }
        }
        let waiterFiber = rt.spawnFiber { () throws -> Int in try wg.wait(); return finished.total }
        let seenByTask = try rt.run { () async throws -> Int in
            try await wg.wait()
            return finished.total
        }
        #expect(seenByTask == 10)
        #expect(try rt.run { try await waiterFiber.value } == 10)
        #expect(wg.count == 0)
    }

    @Test(arguments: Shape.all)
    func barrierReleasesARoundTogetherWithOneLeader(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let b = Barrier(parties: 4)
        let arrived = PeakCounter()
        let fibers = (0..<2).map { _ in
            rt.spawnFiber { () throws -> [Bool] in
                var leaders: [Bool] = []
                for _ in 0..<3 { arrived.enter(); leaders.append(try b.wait()) }
                return leaders
            }
        }
        let leaders = try rt.run { () async throws -> Int in
            let tasks = (0..<2).map { _ in
                Task(executorPreference: rt) { () async throws -> [Bool] in
                    var leaders: [Bool] = []
                    for _ in 0..<3 { arrived.enter(); leaders.append(try await b.wait()) }
                    return leaders
                }
            }
            var all: [Bool] = []
            for t in tasks { all += try await t.value }
            for f in fibers { all += try await f.value }
            return all.filter { $0 }.count
        }
        #expect(leaders == 3)          // one per round
        #expect(arrived.total == 12)
    }

    @Test func oneshotDeliversToEveryReceiverOrCloses() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let o = Oneshot<String>()
        let f = rt.spawnFiber { () throws -> String in try o.receive() }
        let v = try rt.run { () async throws -> String in
            let t = Task(executorPreference: rt) { try await o.receive() }
            await waitUntil { o.state.withLock { $0.waiters.count } == 2 } // the fiber and the task wait
            try o.send("hello")
            return try await t.value
        }
        #expect(v == "hello")
        // The blocking forms from plain threads (inside this test's task they refuse).
        #expect(try onPlainThread { try f.join() } == "hello")
        #expect(try onPlainThread { try o.receive() } == "hello")   // later receivers too
        #expect(throws: OneshotError.alreadyCompleted) { try o.send("again") }
        let empty = Oneshot<Int>()
        let g = rt.spawnFiber { () throws -> Int in try empty.receive() }
        waitUntil { empty.state.withLock { $0.waiters.count } == 1 } // it waits
        empty.close()
        #expect(throws: OneshotError.closed) { try onPlainThread { try g.join() } }
    }

    @Test func watchSeesTheLatestValue() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let w = Watch(0)
        let seen = rt.spawnFiber { () throws -> [Int] in
            var rx = w.subscribe()
            var got: [Int] = []
            while true {
                do { got.append(try rx.changed()) } catch is WatchClosedError { return got }
            }
        }
        // The sender joins with the blocking form: on a plain thread. Before each send it
        // waits until the receiver waits again (a send takes every waiter out, so a waiter
        // queued after it has seen that send's value, or a later one).
        let receiverWaits: @Sendable () -> Void = { waitUntil { w.state.withLock { $0.waiters.count } == 1 } }
        let got = try onPlainThread { () throws -> [Int] in
            for i in 1...3 {
                receiverWaits()
                w.send(i)
            }
            receiverWaits()
            w.send(10); w.send(11)          // two quick sends: a receiver may see only the last
            receiverWaits()
            w.close()
            return try seen.join()
        }
        #expect(Array(got.prefix(3)) == [1, 2, 3])
        #expect(got.last == 11)
        #expect(w.value == 11)
    }

    @Test func cancelledFiberWaitersThrowAndUnwind() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let counter = DeinitCounter()
        let sem = Semaphore(permits: 0), m = AsyncMutex(), n = Notify(), wg = WaitGroup(count: 1)
        // The blocking forms from plain threads (inside this test's task they refuse).
        try onPlainThread { try m.lock() }
        let bodies: [@Sendable () throws -> Void] = [
            { try sem.acquire() }, { try m.lock() }, { try n.notified() }, { try wg.wait() },
        ]
        let hs = bodies.map { body in
            rt.spawnFiber { () throws -> Void in
                let t = counter.token()
                try body()
                withExtendedLifetime(t) {}
            }
        }
        // All four wait before they are cancelled.
        waitUntil {
            sem.state.withLock { $0.waiters.count } == 1 && m.state.withLock { $0.waiters.count } == 1
                && n.state.withLock { $0.waiters.count } == 1 && wg.state.withLock { $0.waiters.count } == 1
        }
        for h in hs { h.cancel() }
        for h in hs { #expect(throws: CancellationError.self) { try onPlainThread { try h.join() } } }
        #expect(counter.value == 4)
        // Nothing stale is left queued: the primitives still work.
        sem.release(); #expect(sem.tryAcquire())
        m.unlock(); #expect(m.tryLock()); m.unlock()
        wg.done()
    }
}

/// Counts how many are inside a section at once, and how many entered in all.
final class PeakCounter: Sendable {
    private let state = Lock<(inside: Int, peak: Int, total: Int)>((0, 0, 0))  // not Mutex: TSan cannot see it
    func enter() { state.withLock { $0.inside += 1; $0.total += 1; $0.peak = max($0.peak, $0.inside) } }
    func leave() { state.withLock { $0.inside -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
    var total: Int { state.withLock { $0.total } }
}

@Suite(.serialized) struct BroadcastTests {
    @Test func everyReceiverGetsEveryValueInOrder() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let b = Broadcast<Int>(capacity: 64)
        let rx1 = b.subscribe()
        let rx2 = b.subscribe()
        let fiberReader = rt.spawnFiber { () throws -> [Int] in
            var rx = rx2
            var got: [Int] = []
            while let v = try rx.receive() { got.append(v) }
            return got
        }
        let taskReader = Task(executorPreference: rt) { () async throws -> [Int] in
            var rx = rx1
            var got: [Int] = []
            while let v = try await rx.receive() { got.append(v) }
            return got
        }
        // The sender sleeps and joins with the blocking forms: on a plain thread.
        try onPlainThread {
            for i in 0..<50 {
                try b.send(i)
                if i % 10 == 0 { try Fiber.sleep(for: .milliseconds(1)) }
            }
        }
        b.close()
        #expect(try onPlainThread { try fiberReader.join() } == Array(0..<50))
        let fromTask = try rt.run { try await taskReader.value }
        #expect(fromTask == Array(0..<50))
        #expect(throws: ChannelClosedError<Int>.self) { try b.send(99) }
    }

    @Test func aLaggingReceiverIsToldHowManyItMissed() throws {
        let b = Broadcast<Int>(capacity: 4)
        let subscribed = b.subscribe()
        for i in 0..<10 { try b.send(i) }            // only 6...9 are kept
        // The blocking receives, on a plain thread (inside this test's task they refuse);
        // one receiver throughout, so its cursor moves on as before.
        let (first, rest) = try onPlainThread { () throws -> (Result<Int?, any Error>, [Int]) in
            var rx = subscribed
            let first = Result { try rx.receive() }
            var rest: [Int] = []
            b.close()
            while let v = try rx.receive() { rest.append(v) }
            return (first, rest)
        }
        #expect(throws: BroadcastLagged(missed: 6)) { _ = try first.get() }
        #expect(rest == [6, 7, 8, 9])
    }
}

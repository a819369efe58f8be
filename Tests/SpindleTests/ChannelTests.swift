// Channel semantics from tasks, fibers and threads, cancellation races, and a bounded
// stress test. Stamped out for every runtime shape where it matters.
@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Records which values a consumer received.
final class Received: Sendable {
    private let items = Lock<[Int]>([])  // Lock, not Mutex: TSan cannot see Mutex (README)
    func add(_ v: Int) { items.withLock { $0.append(v) } }
    var all: [Int] { items.withLock { $0 } }
}

@Suite(.serialized) struct ChannelTests {
    @Test func bufferedIsFIFOAndDrainsAfterClose() async throws {
        let ch = Channel<Int>(capacity: 4)
        for i in 1...4 { try await ch.send(i) }
        #expect(try ch.trySend(5) == false)
        #expect(ch.count == 4)
        ch.close()
        #expect(ch.isClosed)
        var got: [Int] = []
        while let v = try await ch.receive() { got.append(v) }
        #expect(got == [1, 2, 3, 4])
        #expect(try await ch.receive() == nil)
        do {
            try await ch.send(9)
            Issue.record("send after close did not throw")
        } catch let e as ChannelClosedError<Int> {
            #expect(e.value == 9)
        }
        if case .closed = ch.tryReceive() {} else { Issue.record("tryReceive after drain is not .closed") }
    }

    @Test func unboundedNeverWaits() throws {
        let ch = Channel<Int>.unbounded()
        for i in 0..<10_000 { #expect(try ch.trySend(i)) }
        #expect(ch.count == 10_000)
        var n = 0
        while case .value = ch.tryReceive() { n += 1 }
        #expect(n == 10_000)
    }

    @Test(arguments: Shape.all)
    func rendezvousHandsValuesFromTasksToFibersInOrder(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        #expect(try ch.trySend(1) == false)   // nobody receiving: a rendezvous cannot buffer
        let consumer = rt.spawnFiber { () throws -> [Int] in
            var got: [Int] = []
            while let v = try ch.receive() { got.append(v) }
            return got
        }
        let got = try rt.run { () async throws -> [Int] in
            for i in 0..<500 { try await ch.send(i) }
            ch.close()
            return try await consumer.value
        }
        #expect(got == Array(0..<500))
    }

    @Test(arguments: Shape.all)
    func fibersSendTasksReceiveAndBack(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let toTasks = Channel<Int>(capacity: 3), toFibers = Channel<Int>(capacity: 1)
        let n = 2_000
        // A fiber echoes whatever tasks send it, plus one.
        let echo = rt.spawnFiber { () throws -> Int in
            var count = 0
            for v in toFibers { try toTasks.send(v + 1); count += 1 }
            toTasks.close()
            return count
        }
        let sum = try rt.run { () async throws -> Int in
            let producer = Task(executorPreference: rt) {
                for i in 0..<n { try await toFibers.send(i) }
                toFibers.close()
            }
            var sum = 0
            for try await v in toTasks { sum += v }
            try await producer.value
            return sum
        }
        #expect(sum == (1...n).reduce(0, +))
        // The echo fiber may still be finishing after closing toTasks: join blocks, so
        // from a plain thread.
        #expect(try onPlainThread { try echo.join() } == n)
    }

    @Test func aPlainThreadBlocksOnAChannel() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        let sender = rt.spawnFiber { () throws -> Bool in
            // Send only once the plain thread is blocked in receive.
            let deadline = Sys.nowNanos() + 10_000_000_000
            while ch.state.withLock({ $0.receivers.count }) == 0 && Sys.nowNanos() < deadline {
                try Fiber.sleep(for: .milliseconds(1))
            }
            let receiverWaited = ch.state.withLock { $0.receivers.count } == 1
            try ch.send(42)
            return receiverWaited
        }
        // A plain thread (no task, not a worker): receive blocks it.
        #expect(try onPlainThread { try ch.receive() } == 42)
        #expect(try onPlainThread { try sender.join() })
    }

    @Test func blockingCallsFromATaskAreRefused() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        // The synchronous overloads, picked by type (in async code `ch.receive()` is the
        // async one).
        let receiveBlocking: () throws -> Int? = ch.receive
        let sendBlocking: (Int) throws -> Void = ch.send
        let refused = try rt.run { () async -> [FiberError?] in
            var out: [FiberError?] = []
            do { _ = try receiveBlocking(); out.append(nil) } catch { out.append(error as? FiberError) }
            do { try sendBlocking(1); out.append(nil) } catch { out.append(error as? FiberError) }
            return out
        }
        #expect(refused == [.blockingOnWorker("Channel.receive"), .blockingOnWorker("Channel.send")])
    }

    @Test(arguments: Shape.all)
    func cancelledWaitersAreRemovedAndNothingIsLost(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        // A task and a fiber wait to receive; both are cancelled.
        let fiberReceiver = rt.spawnFiber { () throws -> Int? in try ch.receive() }
        let outcome = try rt.run { () async throws -> [String] in
            let taskReceiver = Task(executorPreference: rt) { try await ch.receive() }
            // A sender blocked on a full rendezvous is cancelled too.
            // It sends only once both receivers are gone, so it finds nobody and blocks.
            let receiversGone = Flag()
            let blockedSender = Task(executorPreference: rt) { () async throws -> Void in
                await waitUntil { receiversGone.isSet }
                try await ch.send(99)
            }
            // Both receivers are queued before they are cancelled.
            await waitUntil { ch.state.withLock { $0.receivers.count } == 2 }
            taskReceiver.cancel()
            fiberReceiver.cancel()
            var out: [String] = []
            do { _ = try await taskReceiver.value; out.append("value") } catch is CancellationError { out.append("cancelled") }
            do { _ = try await fiberReceiver.value; out.append("value") } catch is CancellationError { out.append("cancelled") }
            receiversGone.set()
            await waitUntil { ch.state.withLock { $0.senders.count } == 1 }
            blockedSender.cancel()
            do { try await blockedSender.value; out.append("sent") } catch is CancellationError { out.append("cancelled") }
            // The channel still works, and nobody stale is queued: a new pair meets.
            let late = Task(executorPreference: rt) { try await ch.receive() }
            try await ch.send(7)
            out.append("\(try await late.value ?? -1)")
            return out
        }
        #expect(outcome == ["cancelled", "cancelled", "cancelled", "7"])
        let queued = ch.state.withLock { ($0.receivers.count, $0.senders.count) }
        #expect(queued == (0, 0))
    }

    @Test func closingWakesBlockedSendersWithTheirValues() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let ch = Channel<String>(capacity: 1)
        // The blocking forms, from plain threads (inside the test's task they refuse).
        try onPlainThread { try ch.send("kept") }
        let blocked = rt.spawnFiber { () throws -> String in
            do { try ch.send("returned"); return "sent" } catch let e as ChannelClosedError<String> { return e.value }
        }
        waitUntil { ch.state.withLock { $0.senders.count } == 1 } // it is blocked
        ch.close()
        #expect(try onPlainThread { try blocked.join() } == "returned")
        #expect(try onPlainThread { try ch.receive() } == "kept")
        #expect(try onPlainThread { try ch.receive() } == nil)
    }

    @Test func bufferedValuesAreReleasedWithTheChannel() throws {
        let counter = DeinitCounter()
        do {
            let ch = Channel<DeinitCounter.Token>(capacity: 8)
            for _ in 0..<5 { try ch.send(counter.token()) }
            ch.close()
        }
        #expect(counter.value == 5)
    }

    @Test(arguments: [Shape(flavor: .multiThread, workers: 2), Shape(flavor: .multiThread, workers: 4)])
    func stressManyProducersConsumersAndRandomCancellation(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 8)
        let producers = 6, perProducer = 4_000 / testScale + 100
        let total = producers * perProducer
        let received = Received()
        let seen = SeenSet(count: total)
        try rt.run { () async throws -> Void in
            // Half the producers are fibers, half tasks.
            var fiberProducers: [FiberHandle<Void>] = []
            var taskProducers: [Task<Void, any Error>] = []
            for p in 0..<producers {
                let base = p * perProducer
                if p % 2 == 0 {
                    fiberProducers.append(rt.spawnFiber { for i in 0..<perProducer { try ch.send(base + i) } })
                } else {
                    taskProducers.append(Task(executorPreference: rt) { for i in 0..<perProducer { try await ch.send(base + i) } })
                }
            }
            // Consumers: fibers that run to the end, and tasks that get cancelled at random
            // moments and are replaced; every value must be received exactly once.
            var fiberConsumers: [FiberHandle<Void>] = []
            for _ in 0..<3 {
                fiberConsumers.append(rt.spawnFiber {
                    while let v = try ch.receive() { received.add(v); seen.mark(v) }
                })
            }
            var rng = SystemRandomNumberGenerator()
            let deadline = ContinuousClock.now + .seconds(20)
            var producersDone = false
            while !producersDone && ContinuousClock.now < deadline {
                let consumer = Task(executorPreference: rt) { () async -> Void in
                    while true {
                        do {
                            guard let v = try await ch.receive() else { return }
                            received.add(v)
                            seen.mark(v)
                        } catch { return }   // cancelled
                    }
                }
                try await Task.sleep(for: .microseconds(Int.random(in: 100...2_000, using: &rng)))
                consumer.cancel()
                await consumer.value
                producersDone = fiberProducers.allSatisfy(\.isFinished)
            }
            for f in fiberProducers { try await f.value }
            for t in taskProducers { try await t.value }
            ch.close()
            for f in fiberConsumers { try await f.value }
        }
        #expect(received.all.count == total)
        #expect(seen.missing == 0 && seen.duplicates == 0)
    }

    /// A fiber's blocking calls use the fiber's own waiter instead of allocating one:
    /// after round trips between two fibers each fiber still has the waiter it had after
    /// its first call, empty of values; the channel keeps no fiber waiters; every value
    /// arrives in order; and a fiber's waiter goes away when the fiber ends (the waiter
    /// refers to its fiber, so keeping it would leak both).
    @Test func fiberWaitersAreTheFibersOwnAcrossBlockingCalls() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let ab = Channel<Int>(capacity: 0), ba = Channel<Int>(capacity: 0)
        final class Seen: @unchecked Sendable {
            // SAFETY: written by the client fiber before it ends; read after its join.
            weak var waiter: WaiterCore?
            var sameAfterwards = false
            var emptyAfterwards = false
        }
        let seen = Seen()
        let echo = rt.spawnFiber { while let v = try ab.receive() { try ba.send(v + 1) } }
        let client = rt.spawnFiber { () throws -> [Int] in
            var got: [Int] = []
            try ab.send(0); got.append(try ba.receive()!)
            let first = Fiber.currentCore!.ownWaiter!.toOpaque()
            for i in 1..<1_000 { try ab.send(i); got.append(try ba.receive()!) }
            let own = Fiber.currentCore!.ownWaiter!
            seen.sameAfterwards = own.toOpaque() == first
            seen.emptyAfterwards = (own.takeUnretainedValue() as! Waiter<Int>).payload == nil
            seen.waiter = own.takeUnretainedValue()
            ab.close()
            return got
        }
        #expect(try onPlainThread { try client.join() } == (0..<1_000).map { $0 + 1 })
        try onPlainThread { try echo.join() }
        #expect(seen.sameAfterwards)
        #expect(seen.emptyAfterwards)
        #expect(ab.state.withLock { $0.spares.count } == 0)
        #expect(ba.state.withLock { $0.spares.count } == 0)
        // The fiber is over: its waiter is gone (a late wake-up may hold it a moment).
        #expect(waitUntil { seen.waiter == nil })
    }

    /// The queues hold their waiters as unmanaged words, one reference each: every way off
    /// a queue (taken by a sender or receiver, withdrawn, closed, or left behind in a
    /// channel that goes away) gives that reference up exactly once. A leak keeps a weak
    /// reference alive; an extra release frees a waiter someone still holds.
    @Test func queuedWaitersAreReleasedExactlyOnce() throws {
        weak var taken: Waiter<Int>?, withdrawn: Waiter<Int>?, withdrawnBehind: Waiter<Int>?, closed: Waiter<Int>?,
                 abandoned: Waiter<Int>?
        var kept = Waiter<Int>(forTask: true)
        let ch = Channel<Int>(capacity: 0)
        do {
            let a = Waiter<Int>(forTask: true), b = Waiter<Int>(forTask: true), c = Waiter<Int>(forTask: true)
            let m = Waiter<Int>(forTask: true)
            taken = a; withdrawn = b; closed = c; withdrawnBehind = m
            ch.state.withLock { s in
                #expect(s.receive(queueing: a).wasQueued)
                #expect(s.receive(queueing: b).wasQueued)
                #expect(s.receive(queueing: c).wasQueued)
                #expect(s.receive(queueing: m).wasQueued)
                #expect(s.receive(queueing: kept).wasQueued)
            }
            // A sender takes the first; the Wake it hands back holds it until resumed.
            let wake = ch.state.withLock { s in s.send(7, queueing: nil) }
            guard case .sent(let w?) = wake else { Issue.record("no receiver woken"); return }
            #expect(a.payload == 7 && a.outcome == .completed)
            w.resume()
            #expect(ch.state.withLock { s in s.withdraw(b) })
            #expect(!ch.state.withLock { s in s.withdraw(b) })   // only once
            // One behind the first (the first sits inline, the rest in a deque).
            #expect(ch.state.withLock { s in s.withdraw(m) })
        }
        #expect(taken == nil)
        #expect(withdrawn == nil)
        #expect(withdrawnBehind == nil)
        #expect(ch.state.withLock { $0.receivers.count } == 2)
        ch.close()
        #expect(closed == nil)
        #expect(kept.outcome == .closed)
        // Still alive with only our reference: the queue did not release it a second time.
        #expect(isKnownUniquelyReferenced(&kept))
        do {
            let ch2 = Channel<Int>(capacity: 0)
            let d = Waiter<Int>(payload: 1, forTask: true)
            abandoned = d
            ch2.state.withLock { s in #expect(s.send(1, queueing: d).wasQueued) }
        }
        // The channel went away with a waiter still queued: its reference went with it.
        #expect(abandoned == nil)
    }

    /// The same for tasks: an awaited send or receive that has to wait takes a spare.
    @Test func taskWaitersAreReusedAcrossAwaits() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let ab = Channel<Int>(capacity: 0), ba = Channel<Int>(capacity: 0)
        let got = try rt.run { () async throws -> [Int] in
            let echo = Task(executorPreference: rt) { while let v = try await ab.receive() { try await ba.send(v * 2) } }
            var got: [Int] = []
            for i in 0..<1_000 { try await ab.send(i); got.append(try await ba.receive()!) }
            ab.close()
            try await echo.value
            return got
        }
        #expect(got == (0..<1_000).map { $0 * 2 })
        #expect(ab.state.withLock { $0.spares.count } >= 1)
        #expect(ba.state.withLock { $0.spares.count } >= 1)
    }

    /// Reused waiters under fire: fiber producers on several workers block on a rendezvous
    /// channel while consumer fibers are spawned and cancelled at random moments, one after
    /// another (a cancelled waiter is withdrawn, or keeps the value it was handed), so
    /// waiters go back to the spares from every path while wakes from their previous use may
    /// still be in flight; then one consumer drains the rest. Every value arrives exactly
    /// once (TSan runs this too).
    @Test(arguments: [Shape(flavor: .multiThread, workers: 2), Shape(flavor: .multiThread, workers: 4)])
    func reusedFiberWaitersSurviveCancellationAcrossWorkers(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        let producers = 4, perProducer = 3_000 / testScale + 100
        let total = producers * perProducer
        let churn = 300 / testScale + 20
        let seen = SeenSet(count: total)
        let received = Received()
        // From a plain thread: joining blocks (inside the test's task it would refuse).
        let cancelledConsumers = try onPlainThread { () throws -> Int in
            var senders: [FiberHandle<Void>] = []
            for p in 0..<producers {
                let base = p * perProducer
                senders.append(rt.spawnFiber { for i in 0..<perProducer { try ch.send(base + i) } })
            }
            var rng = SystemRandomNumberGenerator()
            var cancelled = 0
            for _ in 0..<churn {
                let c = rt.spawnFiber { () throws -> Void in
                    while let v = try ch.receive() { received.add(v); seen.mark(v) }
                }
                // A random number of scheduler turns before the cancel (no sleep: the point
                // is to land the cancel at arbitrary moments of the consumer's loop).
                for _ in 0..<Int.random(in: 0...300, using: &rng) { sched_yield() }
                c.cancel()
                do { try c.join() } catch is CancellationError { cancelled += 1 }
            }
            let steady = rt.spawnFiber { while let v = try ch.receive() { received.add(v); seen.mark(v) } }
            for s in senders { try s.join() }
            ch.close()
            try steady.join()
            return cancelled
        }
        // The channel stays open through the churn, so every churned consumer ends in a
        // cancelled receive.
        #expect(cancelledConsumers == churn)
        #expect(received.all.count == total)
        #expect(seen.missing == 0 && seen.duplicates == 0)
        #expect(ch.state.withLock { ($0.receivers.count, $0.senders.count) } == (0, 0))
    }
}

extension ChannelState.Receive {
    var wasQueued: Bool { if case .queued = self { return true } else { return false } }
}

extension ChannelState.Send {
    var wasQueued: Bool { if case .queued = self { return true } else { return false } }
}

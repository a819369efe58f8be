import CSpindle
// Select over channel operations: exactly one completes, the rest are withdrawn without
// losing or duplicating a value; timeouts; cancellation; fibers, tasks and threads.
@testable import Spindle
import Synchronization
import Testing

@Suite(.serialized) struct SelectTests {
    @Test func takesTheReadyBranchAndLeavesTheOthersUntouched() async throws {
        let a = Channel<Int>(capacity: 1), b = Channel<Int>(capacity: 1), out = Channel<Int>(capacity: 0)
        try await b.send(7)
        var s = Select<String>()
        s.onReceive(a) { "a \($0 ?? -1)" }
        s.onReceive(b) { "b \($0 ?? -1)" }
        s.onSend(1, to: out) { "sent" }        // nobody receives: cannot happen
        #expect(try await s.run() == "b 7")
        #expect(a.count == 0 && b.count == 0)
        #expect(out.state.withLock { $0.senders.isEmpty })   // the send branch left nothing behind
    }

    @Test(arguments: Shape.all)
    func waitsUntilOneBranchCanProceed(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let a = Channel<Int>(capacity: 0), b = Channel<Int>(capacity: 0)
        // A fiber selects; a task then sends on b. The fiber must get exactly that value,
        // and its waiter on `a` must be gone afterwards.
        let selector = rt.spawnFiber { () throws -> String in
            var s = Select<String>()
            s.onReceive(a) { "a \($0 ?? -1)" }
            s.onReceive(b) { "b \($0 ?? -1)" }
            return try s.run()
        }
        let got = try rt.run { () async throws -> String in
            // Send once the fiber is waiting on both branches.
            await waitUntil { a.state.withLock { $0.receivers.count } == 1 && b.state.withLock { $0.receivers.count } == 1 }
            try await b.send(42)
            return try await selector.value
        }
        #expect(got == "b 42")
        #expect(a.state.withLock { $0.receivers.isEmpty })
        // `a` still works for a plain pair afterwards: the dead select waiter is not in the way.
        let late = rt.spawnFiber { () throws -> Int? in try a.receive() }
        let v = try rt.run { () async throws -> Int? in
            try await a.send(5)
            return try await late.value
        }
        #expect(v == 5)
    }

    @Test func timeoutFiresFromATaskAFiberAndAThread() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let never = Channel<Int>(capacity: 0)
        @Sendable func make() -> Select<String> {
            var s = Select<String>()
            s.onReceive(never) { _ in "value" }
            s.onTimeout(.milliseconds(20)) { "timeout" }
            return s
        }
        let t0 = ContinuousClock.now
        #expect(try await make().run() == "timeout")
        #expect(ContinuousClock.now - t0 >= .milliseconds(20))
        let fiber = rt.spawnFiber { () throws -> String in try make().run() }
        #expect(try await fiber.value == "timeout")
        // The blocking overload, from a plain thread (inside this test's task it refuses).
        #expect(try onPlainThread { try make().run() } == "timeout")
        #expect(never.state.withLock { $0.receivers.isEmpty })
    }

    @Test func closedChannelCompletesAReceiveBranchWithNil() async throws {
        let a = Channel<Int>(capacity: 0)
        a.close()
        var s = Select<Int?>()
        s.onReceive(a) { $0 }
        #expect(try await s.run() == nil)
    }

    @Test func cancelledSelectThrowsAndWithdrawsItsWaiters() async throws {
        let a = Channel<Int>(capacity: 0), b = Channel<Int>(capacity: 0)
        let t = Task { () async throws -> String in
            var s = Select<String>()
            s.onReceive(a) { _ in "a" }
            s.onSend(9, to: b) { "b" }
            return try await s.run()
        }
        // Cancel once its waiters are queued on both channels.
        await waitUntil { a.state.withLock { $0.receivers.count } == 1 && b.state.withLock { $0.senders.count } == 1 }
        t.cancel()
        await #expect(throws: CancellationError.self) { try await t.value }
        #expect(a.state.withLock { $0.receivers.isEmpty })
        #expect(b.state.withLock { $0.senders.isEmpty })
    }

    @Test func whenBothAreReadyEitherMayWin() async throws {
        let a = Channel<Int>.unbounded(), b = Channel<Int>.unbounded()
        var wins = (a: 0, b: 0)
        for _ in 0..<200 {
            try await a.send(1); try await b.send(2)
            var s = Select<Int>()
            s.onReceive(a) { $0 ?? 0 }
            s.onReceive(b) { $0 ?? 0 }
            if try await s.run() == 1 { wins.a += 1 } else { wins.b += 1 }
        }
        #expect(wins.a > 0 && wins.b > 0)
        #expect(a.count + b.count == 200)        // the losers' values are all still there
    }

    @Test(arguments: [Shape(flavor: .multiThread, workers: 2), Shape(flavor: .multiThread, workers: 4)])
    func stressSelectorsNeverLoseOrDuplicateValues(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let a = Channel<Int>(capacity: 0), b = Channel<Int>(capacity: 2)
        let perChannel = 3_000 / testScale + 50
        let seen = SeenSet(count: 2 * perChannel)
        // Four selecting fibers and two selecting tasks drain both channels; plain senders
        // (a fiber and a task) feed them; a third channel tells the selectors to stop.
        let stop = Channel<Int>(capacity: 0)
        let selectorBody: @Sendable () throws -> Int = {
            var n = 0
            while true {
                var s = Select<Int?>()
                s.onReceive(a) { $0 }
                s.onReceive(b) { $0 }
                s.onReceive(stop) { _ in nil }
                guard let value = try s.run() else { return n }
                seen.mark(value)
                n += 1
            }
        }
        let fibers = (0..<4).map { _ in rt.spawnFiber(selectorBody) }
        try rt.run { () async throws -> Void in
            let tasks = (0..<2).map { _ in
                Task(executorPreference: rt) { () async throws -> Int in
                    var n = 0
                    while true {
                        var s = Select<Int?>()
                        s.onReceive(a) { $0 }
                        s.onReceive(b) { $0 }
                        s.onReceive(stop) { _ in nil }
                        guard let value = try await s.run() else { return n }
                        seen.mark(value)
                        n += 1
                    }
                }
            }
            let feeder = rt.spawnFiber { for i in 0..<perChannel { try a.send(i) } }
            for i in 0..<perChannel { try await b.send(perChannel + i) }
            try await feeder.value
            stop.close()
            var total = 0
            for t in tasks { total += try await t.value }
            for f in fibers { total += try await f.value }
            #expect(total == 2 * perChannel)
        }
        #expect(seen.missing == 0 && seen.duplicates == 0)
    }

    /// A select sending and a select receiving on the same rendezvous channel meet (the
    /// second to arrive pairs with the first one's waiter), from tasks and from fibers.
    @Test(arguments: [Shape(flavor: .multiThread, workers: 1), Shape(flavor: .multiThread, workers: 2)])
    func selectsOnOppositeEndsOfARendezvousMeet(shape: Shape) throws {
        let rt = try shape.make()
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        // Second branches that can never complete (nobody sends on these).
        let idleA = Channel<Int>(capacity: 0), idleB = Channel<Int>(capacity: 0)
        let rounds = 2_000 / testScale + 10
        // Both sides start each round together, so both often pass their fast path before
        // either has queued a waiter: the case where only a pairing of two selects helps.
        let start = Barrier(parties: 2)
        let receiver = rt.spawnFiber { () throws -> [Int] in
            var got: [Int] = []
            for _ in 0..<rounds {
                _ = try start.wait()
                var s = Select<Int?>()
                s.onReceive(ch) { $0 }
                s.onReceive(idleA) { _ in -1 }
                s.onTimeout(.seconds(5)) { nil } // not meeting fails instead of hanging
                guard let v = try s.run() else { break }
                got.append(v)
            }
            return got
        }
        try rt.run { () async throws -> Void in
            for i in 0..<rounds {
                _ = try await start.wait()
                var s = Select<Bool>()
                s.onSend(i, to: ch) { true }
                s.onReceive(idleB) { _ in false }
                s.onTimeout(.seconds(5)) { false }
                guard try await s.run() else {
                    Issue.record("the selects did not meet")
                    break
                }
            }
        }
        #expect(try onPlainThread { try receiver.join() } == Array(0..<rounds))
    }

    /// A select with a send and a receive branch on one channel never pairs with itself,
    /// and its send waiter stays available to others.
    @Test func aSelectDoesNotMatchItself() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        let got = try rt.run { () async throws -> String in
            let selecting = Task(executorPreference: rt) { () async throws -> String in
                var s = Select<String>()
                s.onSend(7, to: ch) { "sent" }
                s.onReceive(ch) { "received \($0 ?? -1)" }
                return try await s.run()
            }
            // The select waits (it does not match its own branches); a plain receive
            // takes its offered value.
            var taken: Int?
            let giveUp = ContinuousClock.now + .seconds(10)
            while taken == nil && ContinuousClock.now < giveUp {
                if case .value(let v) = ch.tryReceive() { taken = v } else { try await Spindle.sleep(for: .milliseconds(1)) }
            }
            #expect(taken == 7)
            return try await selecting.value
        }
        #expect(got == "sent")
    }

    /// Selects on both ends, several channels, random cancellation: every value sent by a
    /// completed send branch is received exactly once, and nothing else.
    @Test func stressSelectsAgainstSelectsWithCancellation() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let chans = [Channel<Int>(capacity: 0), Channel<Int>(capacity: 0), Channel<Int>(capacity: 1)]
        let perSender = 400 / testScale + 20
        let senders = 3
        let sent = SeenSet(count: senders * perSender)
        let received = SeenSet(count: senders * perSender)
        let stop = Flag()
        try rt.run { () async throws -> Void in
            var receivers: [Task<Void, any Error>] = []
            for r in 0..<3 {
                receivers.append(Task(executorPreference: rt) {
                    while !stop.isSet {
                        var s = Select<Int?>()
                        for c in chans { s.onReceive(c) { $0 } }
                        s.onTimeout(.milliseconds(r == 0 ? 1 : 50)) { nil } // one with a short timeout
                        if let v = try await s.run() { received.mark(v) }
                    }
                })
            }
            let senderTasks = (0..<senders).map { k in
                Task(executorPreference: rt) { () async throws -> Void in
                    var i = 0
                    while i < perSender {
                        let value = k * perSender + i
                        let attempt = Task(executorPreference: rt) { () async throws -> Bool in
                            var s = Select<Bool>()
                            for c in chans { s.onSend(value, to: c) { true } }
                            return try await s.run()
                        }
                        if i % 7 == 3 { attempt.cancel() } // some attempts are cancelled
                        let ok = (try? await attempt.value) == true
                        if ok { sent.mark(value) } else if i % 7 != 3 {
                            Issue.record("a send select failed without being cancelled")
                        }
                        i += 1
                    }
                }
            }
            for t in senderTasks { try await t.value }
            // Let the receivers drain what is in flight (until every sent value has been
            // received, or a generous bound), then stop them.
            let giveUp = ContinuousClock.now + .seconds(10)
            while !(0..<(senders * perSender)).allSatisfy({ received.count(of: $0) >= sent.count(of: $0) })
                && ContinuousClock.now < giveUp {
                try await Spindle.sleep(for: .milliseconds(1))
            }
            stop.set()
            for t in receivers { try await t.value }
        }
        for v in 0..<(senders * perSender) {
            #expect(received.count(of: v) == sent.count(of: v), "value \(v): sent \(sent.count(of: v))×, received \(received.count(of: v))×")
        }
    }

    /// Two plain threads start each round within nanoseconds of each other (spinning on a
    /// shared counter), both selecting over many channels, so both often get past their
    /// fast path before either has queued a waiter. Without pairing two selects, such a
    /// round never completes (the timeout branch then fails the test).
    @Test func selectsStartingTogetherStillMeet() throws {
        let rt = try Runtime(flavor: .multiThread, workers: 1) // only for the timers
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        let idleA = (0..<16).map { _ in Channel<Int>(capacity: 0) }
        let idleB = (0..<16).map { _ in Channel<Int>(capacity: 0) }
        let rounds = 3_000 / testScale + 10
        let go = Lock(0), ready = Lock(0)
        let failures = Lock(0)
        @Sendable func spinUntil(_ counter: Lock<Int>, _ n: Int) { while counter.withLock({ $0 }) < n { spindle_cpu_relax() } }
        let receiver = try startThread {
            for r in 0..<rounds {
                ready.withLock { $0 += 1 }
                spinUntil(go, r + 1)
                var s = Select<Int?>()
                for c in idleA { s.onReceive(c) { _ in -1 } }
                s.onReceive(ch) { $0 }
                s.onTimeout(.seconds(5)) { nil }
                if (try? s.run()) != Optional(Optional(r)) { failures.withLock { $0 += 1 }; return }
            }
        }
        // The sender is the other plain thread (inside this test's task select refuses).
        try onPlainThread {
            for r in 0..<rounds {
                spinUntil(ready, r + 1)
                go.withLock { $0 += 1 }
                var s = Select<Bool>()
                s.onSend(r, to: ch) { true }
                for c in idleB { s.onReceive(c) { _ in false } }
                s.onTimeout(.seconds(5)) { false }
                if (try? s.run()) != true { failures.withLock { $0 += 1 }; break }
            }
        }
        receiver.join()
        #expect(failures.withLock { $0 } == 0)
    }
}

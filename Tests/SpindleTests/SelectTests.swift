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
            try await Task.sleep(for: .milliseconds(10))
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
        let thread: () throws -> String = { try make().run() }   // the blocking overload
        #expect(try thread() == "timeout")
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
        try await Task.sleep(for: .milliseconds(10))
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
}

// Misuse: every call a user can get wrong gets a typed error where the API can throw, and
// otherwise ends the process with a message that starts `Spindle fatal:`, names the misuse
// and says what to do instead. The crashes are observed from outside (spindle-probe).
@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif


/// A blocking sleep reached through synchronous code.
private func sleepThroughSyncCode(_ d: Duration) throws { try Fiber.sleep(for: d) }

@Suite struct MisuseTests {
    /// `try await mutex.withLock { 5 }` in a task: the closure is synchronous, and the
    /// blocking overload used to be chosen (it threw blockingOnWorker under contention).
    /// With the blocking forms `noasync`, the async one is chosen and waits its turn.
    @Test func withLockInATaskIsTheAsyncOneAndWaitsUnderContention() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "m"))
        defer { rt.shutdown() }
        let m = AsyncMutex()
        let v = try rt.run { () async throws -> Int in
            try await m.lock()
            let contender = Task(executorPreference: rt) { try await m.withLock { 5 } }
            await Task.yield()
            m.unlock()
            return try await contender.value
        }
        #expect(v == 5)
    }

    /// Inside a task on Swift's own executor (this test's), a blocking form reached through
    /// synchronous code refuses instead of blocking a cooperative-pool thread (it used to
    /// sleep the thread: only Spindle's workers were checked).
    @Test func blockingFormsRefuseInsideATaskOnSwiftsOwnExecutor() async {
        #expect(Runtime.current == nil)
        #expect(throws: FiberError.blockingOnWorker("Fiber.sleep")) { try sleepThroughSyncCode(.milliseconds(200)) }
    }

    static let fatalScenarios: [(scenario: String, message: String)] = [
        ("misuse-mutex-unlock", "Spindle fatal: AsyncMutex.unlock() was called on a mutex that is not locked: call unlock() once per successful lock() or tryLock(), or use withLock"),
        ("misuse-waitgroup-done", "Spindle fatal: WaitGroup.done() was called more times than add() counted"),
        ("misuse-channel-capacity", "Spindle fatal: Channel(capacity: -1): the capacity must be 0 (rendezvous) or more"),
        ("misuse-channel-sequence-in-task", "Spindle fatal: `for value in channel` ran inside a Swift task, where it cannot block: write `for await value in channel`"),
        ("misuse-install-twice", "Spindle fatal: Spindle was installed as Swift's global executor twice"),
        ("misuse-install-current-thread", "Spindle fatal: installGlobalExecutors needs a .multiThread configuration"),
    ]

    @Test(arguments: MisuseTests.fatalScenarios.map { $0.scenario })
    func misuseEndsWithAMessageThatNamesTheFix(scenario: String) throws {
        let message = Self.fatalScenarios.first { $0.scenario == scenario }!.message
        let r = try runProbe(scenario)
        #expect(r.signalled, "status \(r.status), stdout: \(r.stdout)")
        #expect(!r.stdout.contains("survived"), "\(r.stdout)")
        #expect(r.stderr.contains(message), "stderr: \(r.stderr)")
    }

    /// A `for v in channel` over an empty open channel inside a task used to end at once
    /// with no values: it now stops the process (above) instead of pretending the channel
    /// is empty. From a fiber the same loop gets every value and ends at close.
    @Test func aForInLoopOverAChannelInAFiberGetsEveryValue() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "m"))
        defer { rt.shutdown() }
        let ch = Channel<Int>(capacity: 0)
        let sum = rt.spawnFiber { () -> Int in
            var s = 0
            for v in ch { s += v }
            return s
        }
        try onPlainThread {
            for v in 1...5 { try ch.send(v) }
            ch.close()
        }
        #expect(try onPlainThread { try sum.join() } == 15)
    }

    /// Installing after Swift concurrency started: Swift 6.3.1 still takes the factory,
    /// and install checks that it did.
    @Test func aLateInstallIsCheckedAndTakesNewTasks() throws {
        let r = try runProbe("install-late")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.check("late-install-takes-new-tasks") == true, "\(r.stdout)")
    }

    /// A fiber joining itself gets a typed error (it used to stop the process).
    @Test func aFiberJoiningItselfGetsATypedError() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "m"))
        defer { rt.shutdown() }
        let ready = Channel<Int>(capacity: 1)
        let box = HandleBox()
        let f = rt.spawnFiber { () -> FiberError? in
            _ = try? ready.receive()
            guard let me = box.handle else { return nil }
            do { _ = try me.join(); return nil } catch let e as FiberError { return e } catch { return nil }
        }
        box.handle = f
        try onPlainThread { try ready.send(1) }
        #expect(try onPlainThread { try f.join() } == .joiningItself)
        #expect(FiberError.joiningItself.description.contains("join it from another fiber"))
    }

    /// A current-thread runtime's live fibers are pinned to the thread that started them:
    /// `run` from another thread is refused with a typed error (it used to stop the process
    /// inside the worker loop), and works again once they are gone.
    @Test func currentThreadFibersDrivenFromAnotherThreadIsRefused() throws {
        let rt = try Runtime(flavor: .currentThread)
        defer { rt.shutdown() }
        let gate = Channel<Int>(capacity: 1)
        let started = Flag(), refusedChecked = Flag()
        let owner = Completion<Int>()
        // Thread A starts the fiber, drives until it waits, then drives it to its end once
        // the refusal below has been checked.
        try OSThread.spawn(name: "owner") {
            do {
                let f = rt.spawnFiber { () throws -> Int in
                    started.set()
                    return try gate.receive() ?? -1
                }
                try rt.run { while !started.isSet { await Task.yield() } }
                while !refusedChecked.isSet { sched_yield() }
                try gate.send(7)
                try rt.run { while !f.isFinished { await Task.yield() } }
                owner.finish(.success(try f.join()))
            } catch { owner.finish(.failure(error)) }
        }
        while !started.isSet { sched_yield() }
        let refusal = try onPlainThread { () -> RuntimeError? in
            do { _ = try rt.run { 1 }; return nil } catch let e as RuntimeError { return e }
        }
        refusedChecked.set()
        #expect(refusal == .fibersOnAnotherThread)
        #expect(RuntimeError.fibersOnAnotherThread.description.contains("call run (and shutdown) from that thread"))
        owner.done.wait()
        #expect(try owner.take() == 7)
        // Once its fibers are gone, any thread may drive the runtime.
        #expect(try onPlainThread { try rt.run { 2 } } == 2)
    }
}

private final class HandleBox: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): written once by the test before the fiber reads it,
    // ordered by the channel send/receive between them.
    var handle: FiberHandle<FiberError?>?
}

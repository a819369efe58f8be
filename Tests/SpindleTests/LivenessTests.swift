// Liveness: work that is ready (an I/O event, a due timer, a woken task) must not wait
// behind a worker that stays inside one job, while another worker is idle (Driver.swift,
// Monitor.swift). Each test is an ordering test: a spinner occupies one worker until a
// flag is set or a generous bound passes; what it waits for must happen first. Nothing
// here measures time; the bound only fires on a real stall.
@testable import Spindle
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// How long a spinner spins at most before giving up (a stall, not slowness).
private let spinBoundNanos: Int64 = 10_000_000_000

private func twoWorkers() throws -> Runtime {
    try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "live"))
}

/// Spins (never suspending) until `flag` is set; returns false if the bound passed first.
private func spin(until flag: Flag) -> Bool {
    let giveUp = Sys.nowNanos() + spinBoundNanos
    while !flag.isSet {
        if Sys.nowNanos() > giveUp { return false }
        spindle_cpu_relax_for_tests()
    }
    return true
}

@inline(never) private func spindle_cpu_relax_for_tests() {}

/// Waits on the calling (plain) thread until `condition` holds, for at most 30 s.
private func waitFor(_ what: String, _ condition: () -> Bool) {
    let giveUp = Sys.nowNanos() + 30_000_000_000
    while !condition() {
        if Sys.nowNanos() > giveUp { Issue.record("timed out waiting for \(what)"); return }
        sched_yield()
    }
}

/// Voluntary and involuntary context switches of this process's threads named
/// "<prefix>-<digits>" (a runtime's workers; its monitor is "<prefix>-mon").
private func workerContextSwitches(named prefix: String) -> Int {
    var total = 0
    guard let dir = opendir("/proc/self/task") else { return 0 }
    defer { closedir(dir) }
    while let e = readdir(dir) {
        let tid = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard Int(tid) != nil, let comm = Sys.readSmallFile("/proc/self/task/\(tid)/comm") else { continue }
        let name = comm.trimmingCharacters(in: .whitespacesAndNewlines)
        guard name.hasPrefix(prefix + "-"), Int(name.dropFirst(prefix.count + 1)) != nil,
              let status = Sys.readSmallFile("/proc/self/task/\(tid)/status") else { continue }
        for line in status.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches") || line.hasPrefix("nonvoluntary_ctxt_switches") {
            total += Int(line.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") ?? 0
        }
    }
    return total
}

/// Both workers parked (the runtime is idle).
private func waitUntilIdle(_ rt: Runtime) {
    waitFor("both workers to park") { rt.idle.unparkedCount == 0 }
}

/// From a job on one of `rt`'s two workers: spins until the other worker has parked.
private func waitForOtherWorkerToPark(_ rt: Runtime) {
    let giveUp = Sys.nowNanos() + spinBoundNanos
    while rt.idle.unparkedCount != 1 && Sys.nowNanos() < giveUp { spindle_cpu_relax_for_tests() }
}

/// Starts a task on `rt` that spins until `flag`; `spinning` is set once it runs.
private func startSpinner(_ rt: Runtime, until flag: Flag, spinning: Flag, result: Completion<Bool>) {
    Task(executorPreference: rt) {
        spinning.set()
        result.finish(.success(spin(until: flag)))
    }
}

/// A task suspended on a continuation that another task resumes.
private final class ParkedTask: Sendable {
    private let slot = Lock<CheckedContinuation<Void, Never>?>(nil)
    private let suspended = Flag()
    var isSuspended: Bool { suspended.isSet }
    func suspend() async {
        await withCheckedContinuation { c in
            slot.withLock { $0 = c }
            suspended.set()
        }
    }
    func resume() { slot.withLock { $0.take() }?.resume() }
}

@Suite(.serialized) struct LivenessTests {
    /// Bug: the idle worker parked on its futex because the busy one was "awake", and the
    /// busy one never polled the reactor inside its job: the read completed only when the
    /// spinner gave up.
    @Test func taskReadCompletesWhileAnotherWorkerSpins() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let waiting = Flag(), done = Flag(), spinning = Flag()
        let got = Completion<[UInt8]>()
        Task(executorPreference: rt) {
            do {
                let conn = try await listener.accept()
                waiting.set()
                let b = try await conn.read(exactly: 1)
                done.set()
                got.finish(.success(b))
            } catch { got.finish(.failure(error)) }
        }
        // The client's blocking calls run on plain threads (inside this test's task they
        // refuse).
        let client = try onPlainThread { try TCPStream.connect(to: listener.localAddress, timeout: .seconds(10), on: rt) }
        waitFor("the reader to wait") { waiting.isSet }
        waitUntilIdle(rt)
        let spun = Completion<Bool>()
        startSpinner(rt, until: done, spinning: spinning, result: spun)
        waitFor("the spinner to start") { spinning.isSet }
        try onPlainThread { try client.write([42]) }
        spun.done.wait()
        #expect(try spun.take(), "the read completed only after the spinner gave up")
        got.done.wait()
        #expect(try got.take() == [42])
        client.close()
        listener.close()
    }

    /// The worker blocked in the reactor wakes for one connection's event and that task
    /// spins; the next event (another connection) must still be delivered by the idle
    /// worker.
    @Test func readCompletesWhileTheWorkerThatPolledSpins() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let waitingA = Flag(), waitingB = Flag(), doneB = Flag(), spinning = Flag()
        let spun = Completion<Bool>()
        let gotB = Completion<[UInt8]>()
        // The clients' blocking calls run on plain threads (inside this test's task they
        // refuse).
        let clientA = try onPlainThread { try TCPStream.connect(to: listener.localAddress, timeout: .seconds(10), on: rt) }
        let connA = try rt.run { try await listener.accept() }
        let clientB = try onPlainThread { try TCPStream.connect(to: listener.localAddress, timeout: .seconds(10), on: rt) }
        let connB = try rt.run { try await listener.accept() }
        Task(executorPreference: rt) {
            waitingA.set()
            _ = try? await connA.read(exactly: 1)
            spinning.set()
            spun.finish(.success(spin(until: doneB)))
        }
        Task(executorPreference: rt) {
            do {
                waitingB.set()
                let b = try await connB.read(exactly: 1)
                doneB.set()
                gotB.finish(.success(b))
            } catch { gotB.finish(.failure(error)) }
        }
        waitFor("both readers to wait") { waitingA.isSet && waitingB.isSet }
        waitUntilIdle(rt)
        try onPlainThread { try clientA.write([1]) }
        waitFor("the first reader to spin") { spinning.isSet }
        try onPlainThread { try clientB.write([2]) }
        spun.done.wait()
        #expect(try spun.take(), "the second read completed only after the first reader gave up")
        gotB.done.wait()
        #expect(try gotB.take() == [2])
        for s in [clientA, clientB, connA, connB] { s.close() }
        listener.close()
    }

    /// After a rescue (the worker that polled an event spun; the Monitor woke the other,
    /// which took the reactor), the spinner parks last and finds the reactor held by a
    /// parked worker: it must sleep, not retry every 50 ms for as long as the runtime is
    /// idle (found in review; before the fix the idle workers woke ~20 times a second).
    @Test func anIdleRuntimeStaysAsleepAfterARescue() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let client = try onPlainThread { try TCPStream.connect(to: listener.localAddress, timeout: .seconds(10), on: rt) }
        let conn = try rt.run { try await listener.accept() }
        let waiting = Flag(), spinning = Flag(), stop = Flag(), done = Flag()
        Task(executorPreference: rt) {
            waiting.set()
            _ = try? await conn.read(exactly: 1)
            spinning.set()
            // Spin until the Monitor has rescued the other worker, which then holds the
            // reactor (it parked while this worker was stuck).
            _ = spin(until: stop)
            done.set()
        }
        waitFor("the reader to wait") { waiting.isSet }
        waitUntilIdle(rt)
        try onPlainThread { try client.write([1]) }
        waitFor("the reader to spin") { spinning.isSet }
        waitFor("a rescue") { rt.statistics.stallRescues >= 1 && rt.driver.reactorHolder != nil }
        stop.set()
        waitFor("the spinner to end") { done.isSet }
        waitUntilIdle(rt)
        let before = workerContextSwitches(named: "live")
        // Nothing at all happens for a while: no event, no timer, no task.
        let quiet = Sys.nowNanos() + 500_000_000
        while Sys.nowNanos() < quiet { usleep(10_000) } // the idle period under test, not a synchronization
        let wakeUps = workerContextSwitches(named: "live") - before
        #expect(wakeUps <= 2, "the idle workers woke \(wakeUps) times in 500 ms")
        client.close()
        conn.close()
        listener.close()
    }

    /// The same with a fiber reading (its socket sits in its own worker's epoll, which that
    /// worker blocks in: this one passed before the driver too, and guards that it stays so).
    @Test func fiberReadCompletesWhileAnotherWorkerSpins() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let waiting = Flag(), done = Flag(), spinning = Flag()
        let home = Atomic<Int>(-1)
        let reader = rt.spawnFiber { () throws -> [UInt8] in
            let conn = try listener.accept()
            home.store(Runtime.currentWorkerIndex ?? -1, ordering: .relaxed)
            waiting.set()
            let b = try conn.read(exactly: 1)
            done.set()
            return b
        }
        // The client's blocking calls and the join run on plain threads (inside this test's
        // task they refuse).
        let client = try onPlainThread { try TCPStream.connect(to: listener.localAddress, timeout: .seconds(10), on: rt) }
        waitFor("the reader to wait") { waiting.isSet }
        waitUntilIdle(rt)
        // The spinner must run on the other worker (a fiber never moves, so a spinner on
        // its own worker would hold it up by design).
        let spun = Completion<Bool>()
        let fiberHome = home.load(ordering: .relaxed)
        Task(executorPreference: rt) {
            while Runtime.currentWorkerIndex == fiberHome {
                // Leave this worker: a job queued from outside goes to whichever worker
                // takes it; re-enqueue until the other one does.
                await Task.detached { }.value
                await Task.yield()
            }
            spinning.set()
            spun.finish(.success(spin(until: done)))
        }
        waitFor("the spinner to start") { spinning.isSet }
        try onPlainThread { try client.write([7]) }
        spun.done.wait()
        #expect(try spun.take(), "the fiber's read completed only after the spinner gave up")
        #expect(try onPlainThread { try reader.join() } == [7])
        client.close()
        listener.close()
    }

    /// Timers: the keeper (the parked worker sleeping until the earliest deadline) woke
    /// for the first deadline and its task spun; the other worker slept without a
    /// timeout, so the second deadline waited for the spinner.
    @Test func spindleSleepEndsWhileAnotherWorkerSpins() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let done = Flag()
        let spun = Completion<Bool>()
        // The first sleeper wakes on the worker that sleeps with the earliest deadline
        // and spins there; the second's deadline must still be kept by the other worker.
        Task(executorPreference: rt) {
            try? await Spindle.sleep(for: .milliseconds(30))
            spun.finish(.success(spin(until: done)))
        }
        Task(executorPreference: rt) {
            try? await Spindle.sleep(for: .milliseconds(60))
            done.set()
        }
        spun.done.wait()
        #expect(try spun.take(), "the sleep ended only after the spinner gave up")
    }

    @Test func taskSleepEndsWhileAnotherWorkerSpins() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let done = Flag()
        let spun = Completion<Bool>()
        // The first sleeper wakes on the worker that sleeps with the earliest deadline
        // and spins there; the second's deadline must still be kept by the other worker.
        Task(executorPreference: rt) {
            try? await Task.sleep(for: .milliseconds(30))
            spun.finish(.success(spin(until: done)))
        }
        Task(executorPreference: rt) {
            try? await Task.sleep(for: .milliseconds(60))
            done.set()
        }
        spun.done.wait()
        #expect(try spun.take(), "the sleep ended only after the spinner gave up")
    }

    /// Run-next: a task resumes another (which goes to this worker's run-next slot) and
    /// then spins without suspending; the resumed one must run on the idle worker.
    @Test func resumedTaskRunsWhileItsWakerSpins() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let done = Flag()
        let parked = ParkedTask()
        let spun = Completion<Bool>()
        Task(executorPreference: rt) {
            await parked.suspend()
            done.set()
        }
        waitFor("the task to suspend") { parked.isSuspended }
        waitUntilIdle(rt)
        Task(executorPreference: rt) {
            // Resume it (into this worker's run-next slot) once the other worker has
            // parked: no searcher is left that could happen to steal it.
            waitForOtherWorkerToPark(rt)
            parked.resume()
            spun.finish(.success(spin(until: done)))
        }
        spun.done.wait()
        #expect(try spun.take(), "the resumed task ran only after its waker gave up")
    }

    /// The same when the waker blocks its thread in a plain wait instead of spinning.
    @Test func resumedTaskRunsWhileItsWakerBlocksItsThread() throws {
        let rt = try twoWorkers()
        defer { rt.shutdown() }
        let done = Completion<Void>()
        let parked = ParkedTask()
        let blocked = Completion<Bool>()
        Task(executorPreference: rt) {
            await parked.suspend()
            done.finish(.success(()))
        }
        waitFor("the task to suspend") { parked.isSuspended }
        waitUntilIdle(rt)
        Task(executorPreference: rt) {
            waitForOtherWorkerToPark(rt)
            parked.resume()
            // A plain wait on this worker's thread (what a RunLoop or a semaphore does).
            blocked.finish(.success(done.done.wait(deadline: Sys.nowNanos() + spinBoundNanos)))
        }
        blocked.done.wait()
        #expect(try blocked.take(), "the resumed task ran only after its waker stopped blocking")
    }
}

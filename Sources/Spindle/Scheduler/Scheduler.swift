// Scheduler: how the runtime's workers share work. The design note for the whole
// scheduler lives here; the per-thread loop is in Worker.swift, the queues in
// LocalQueue.swift and InjectQueue.swift, the wake-up protocol in Idle.swift; what an idle
// worker waits in (reactor, timers, futex) is the Driver's (Driver/Driver.swift).
//
// ## Shape
// N workers, each a thread (multi-thread flavour) or the thread that calls `run`
// (current-thread flavour: one worker, no threads of its own). Work is a `Runnable`: a
// Swift job, a fiber, or a timer's wake-up (Runnable.swift). Started fibers have their own
// per-worker ready lists (Worker+Fibers.swift). Where a job goes when it is enqueued:
//   - from this runtime's own worker thread: that worker's run-next slot (Worker.scheduleLocal);
//   - from anywhere else: the global inject queue, then one parked worker is woken if no
//     worker is already searching (Idle, rule 1).
// Idle workers steal half of a victim's queue at a time, spin briefly, then park on a
// (the Driver decides where: the reactor, their own backend, or a futex). Timers are kept
// in a store behind `TimerStore`; one parked worker sleeps with a timeout for the earliest
// deadline. A Monitor thread hands work stuck behind a long job to an idle worker
// (Driver/Monitor.swift).
//
// ## Lifecycle
// running → draining (shutdown called) → stopped.
//   - draining: everything keeps running, new jobs are still accepted (a task finishing
//     its work needs to enqueue itself). Each worker cancels the fibers it hosts (a fiber
//     cannot be handed to another executor); they unwind. The last worker to park with
//     empty queues and no live fibers ends the drain. Armed timers do not hold the drain open: a sleeping task is suspended,
//     like one awaiting a continuation, and Swift leaves the wake-up entry of a *cancelled*
//     `Task.sleep` armed until its deadline (the executor is never told), so waiting for
//     timers would make shutdown wait out sleeps nobody is waiting for.
//   - stopped: the inject queue and the timer store are closed under their locks, workers
//     hand whatever is still in their local queues to the fallback and exit. Jobs that
//     arrive later (a continuation resumed by a thread outside the runtime) are forwarded
//     to the fallback too: Swift's global concurrent executor, with timer jobs keeping
//     their deadlines. Spindle never drops or destroys a job: an `ExecutorJob` that is not
//     run leaks its task and everything the task holds.
//   - `shutdown(timeout:)` stops even if work is still in flight at the deadline; a job
//     that is running then finishes on its thread (threads cannot be pre-empted), and
//     everything still queued or armed is forwarded.
//
// ## Rejected alternatives
//   - One shared queue for all workers (Dispatch's global queue model): every enqueue and
//     dequeue takes the same lock and bounces its cache line between cores, and a task
//     woken by the running task loses the hand-off to the same worker that makes
//     task.pingpong cheap. (Not prototyped here; the per-worker design is Go's and Tokio's.)
//   - Waking a worker for every enqueue: a ping-pong between two tasks would bounce across
//     cores, paying a futex wake (~2 µs) and a cross-core hand-off (~16 µs here) per message.
//   - A dedicated timer thread: each timer firing would be a thread hop; here the worker
//     that sleeps anyway sleeps with the timeout.
//   - Dropping jobs at shutdown like Tokio drops tasks: Swift offers no way to destroy a
//     job without running it, so forwarding is the only leak-free choice.
import CSpindle
import Synchronization
@_spi(ExperimentalScheduling) import _Concurrency

extension Runtime {
    enum Lifecycle: Int {
        case running = 0, draining = 1, stopped = 2
    }

    var isStopped: Bool { lifecycle.load(ordering: .acquiring) == Lifecycle.stopped.rawValue }
    var isDraining: Bool { lifecycle.load(ordering: .acquiring) == Lifecycle.draining.rawValue }

    /// The one entry point for new work.
    @inline(__always)
    func schedule(_ r: Runnable) {
        let local = Worker.withCurrent { w -> Bool in
            // SAFETY: an identity comparison of addresses; nothing is retained or released.
            guard w.runtimeUnmanaged.toOpaque() == Unmanaged.passUnretained(self).toOpaque(), !isStopped else { return false }
            w.scheduleLocal(r)
            return true
        }
        if local == true { return }
        // From outside the workers, Swift calls us without a reference of its own. Once the
        // job is pushed, a worker may run it, finish its task, and let the last reference to
        // this runtime go while this thread is still in here (seen under TSan: a blocking-
        // pool thread resuming a continuation, then touching a freed runtime).
        // SAFETY: retaining at entry is sound: the job being enqueued keeps the runtime alive
        // until it runs (its task's executor preference, or the enqueuer's own reference).
        let keep = Unmanaged.passRetained(self)
        defer { keep.release() }
        if _slowPath(Trace.isOn) { Trace.enqueued(r, .inject) }
        if inject.push(r) {
            driver.notifyOne()
        } else {
            forwardOrphan(r)
        }
    }

    /// Arms a timer for `r` at `deadline` (monotonic ns). Returns the handle to cancel it
    /// with (`timers.cancel`), or nil if it ran at once or was forwarded.
    @discardableResult
    func schedule(_ r: Runnable, at deadline: Int64) -> TimerEntry? {
        if deadline <= Sys.nowNanos() { schedule(r); return nil }
        // SAFETY: as in schedule(_:): hold the runtime while a worker may already fire it.
        let keep = Unmanaged.passRetained(self)
        defer { keep.release() }
        let (action, entry) = timers.insert(deadline: deadline, item: r)
        switch action {
        case .none:
            break
        case .wakeKeeper(let k):
            driver.unpark(k)
        case .noKeeper:
            // A worker of ours will look at the timers before it parks (and if it stays
            // busy instead, the Monitor hands them to a parked worker); otherwise make sure
            // a parked worker wakes up to become the keeper.
            if let w = Worker.current, w.runtime === self { break }
            driver.wakeAnyParked()
        case .closed:
            forwardOrphan(r, deadline: deadline)
        }
        return entry
    }

    func hasVisibleWork() -> Bool {
        if !inject.isEmpty { return true }
        for w in workers where !w.queue.isEmpty || w.runNextSlot.load(ordering: .relaxed) != 0 { return true }
        return timers.anyDue(now: Sys.nowNanos())
    }

    /// Runs a Swift job (fibers and wake-ups are run by Worker.execute).
    @inline(__always)
    func execute(_ r: Runnable) {
        r.swiftJob.runSynchronously(on: asUnownedTaskExecutor())
    }

    /// Called by the last worker to park while draining: stop if nothing is left. Live
    /// fibers hold the drain open: they were cancelled when it began and are unwinding.
    func tryFinishDrain() {
        guard isDraining, idle.unparkedCount == 0 else { return }
        guard liveFiberCount.load(ordering: .acquiring) == 0 else { return }
        guard inject.closeIfEmpty() else { return }
        stop()
    }

    /// Stops the runtime: closes the queues, forwards what they held, wakes every worker
    /// so its thread exits (forwarding its local queue). Idempotent.
    func stop() {
        DumpOnSignal.unregister(self)
        let old = lifecycle.exchange(Lifecycle.stopped.rawValue, ordering: .acquiringAndReleasing)
        if old == Lifecycle.stopped.rawValue { return }
        for r in inject.close() { forwardOrphan(r) }
        for t in timers.close() { forwardOrphan(t.item, deadline: t.deadline) }
        reactor.shutdown()
        monitor?.stop()
        for w in workers { driver.unpark(w.index) }
        stoppedLatch.open()
    }

    /// After stop, a job has nowhere to run here: hand it to Swift's global concurrent
    /// executor (never to ourselves: the global runtime refuses to shut down).
    func forwardOrphan(_ r: Runnable, deadline: Int64? = nil) {
        switch r.kind {
        case .swiftJob: break
        case .fiber:
            // A fiber that never started: it ends with `shutDown` and never runs. (A
            // started fiber is never in these queues; see Worker+Fibers.)
            finishUnstartedFiber(r.fiber, error: RuntimeError.shutDown)
            return
        case .wakeup:
            // A task's sleep fires at its deadline on Swift's executor; a fiber's cannot
            // run any more (Wakeup.forwardAfterStop).
            let w = r.takeWakeup()
            if w.resumesATask {
                // Its task may resume onto this runtime (its executor preference) later:
                // the runtime must outlive it, as for a forwarded job (below).
                orphanCount.add(1, ordering: .relaxed)
                keepAliveForForwardedJobs()
            }
            w.forwardAfterStop(deadline: deadline)
            return
        }
        let forwarded = orphanCount.add(1, ordering: .relaxed).newValue
        keepAliveForForwardedJobs()
        RuntimeWarning.emit(.jobForwardedAfterShutdown, runtime: configuration.name,
                            "runtime '\(configuration.name)' has shut down, and a job that reached it ran on Swift's global executor instead (\(forwarded) so far); await a runtime's tasks before shutting it down, or let them end first")
        let fallback = globalConcurrentExecutor
        if (fallback as AnyObject) === self {
            spindleFatal("a job was enqueued on the global Spindle runtime after it stopped")
        }
        let job = ExecutorJob(r.swiftJob)
        if let d = deadline, let scheduling = fallback as? any SchedulingExecutor {
            let remaining = max(0, d - Sys.nowNanos())
            scheduling.enqueue(job, after: Duration.nanoseconds(remaining), tolerance: nil, clock: ContinuousClock())
        } else {
            fallback.enqueue(job)
        }
    }
}

extension Runtime {
    /// A forwarded job's task still names this runtime as its executor (preference), and
    /// Swift does not always retain it for that (`withTaskExecutorPreference` does not; a
    /// cancelled sleep's wake-up can fire a minute later). If the runtime were freed, that
    /// task's next switch would call `enqueue` on freed memory (seen in CI: a use-after-free
    /// 60 s after a test ended). So the first forwarded job makes the runtime immortal; it is
    /// stopped and small. Runtimes that never forward anything are freed as usual.
    func keepAliveForForwardedJobs() {
        if immortal.exchange(true, ordering: .acquiringAndReleasing) { return }
        // SAFETY: a deliberate, balanced-never retain: the runtime must outlive every task
        // that may still enqueue on it, and there is no way to know when the last one is gone.
        _ = Unmanaged.passRetained(self)
    }
}

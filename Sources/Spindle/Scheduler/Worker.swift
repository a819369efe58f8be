// Worker: one scheduler thread's loop. UNSAFE FILE: unowned(unsafe) and Unmanaged
// back-references to the runtime, and the thread-local worker pointer.
//
// Each tick the worker picks one runnable, in this order:
//   1. every `Tuning.globalQueueInterval`th tick: due timers, then the global inject queue
//      (so neither can starve behind a busy local queue);
//   2. the run-next slot: the job most recently woken by the job that just ran, so a
//      ping-pong pair hands off without touching the queue, at most
//      `Tuning.maxRunNextStreak` times in a row (then it goes to the back of the queue so
//      a ping-pong pair cannot starve the rest). The slot is an atomic word that searchers
//      may steal in their last spin round (Go's runnext rule): a job parked there behind a
//      worker that blocks for long must not wait for that worker;
//   3. the local queue;
//   4. a batch from the inject queue;
//   (In a spawn burst, i.e. after this worker's local queue overflowed and until it next
//   runs dry, step 4 comes first and the run-next slot is not used: the inject queue then
//   holds this worker's oldest work, and Swift unlinks finished child tasks fastest
//   oldest-first; see LocalQueue.)
//   5. due timers;
//   6. searching: steal half of another worker's queue (random start), or the inject queue,
//      for a few brief rounds (the spin);
//   7. park: Idle lists it, the Driver decides where it waits (Driver.swift).
//
// Ownership: every `var` here is touched only by the thread currently running this
// worker's loop (for the current-thread flavour, whichever thread holds the driver lock;
// the lock hand-off orders those accesses). Other threads only touch `queue` (steal),
// `runNextSlot` (steal, by atomic compare-exchange) and `activity` (read).
import CSpindle
import DequeModule
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class Worker: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): see "Ownership" above; mutable fields are owner-only.

    let index: Int
    /// SAFETY: unowned(unsafe) because the runtime owns its workers and outlives every
    /// thread running a worker loop (the thread's closure holds the runtime strongly).
    unowned(unsafe) let runtime: Runtime
    /// `runtime` again, for hot paths that reach it without a retain/release pair.
    /// SAFETY: unretained, for the reason above.
    let runtimeUnmanaged: Unmanaged<Runtime>
    let queue: LocalQueue
    /// The run-next job's bits, 0 when empty. Owner exchanges; searchers may CAS it to 0.
    let runNextSlot = Atomic<UInt>(0)
    /// `tick << 2 | kind << 1 | 1` while a job (kind 0) or fiber turn (kind 1) runs,
    /// `tick << 2` between them (wrapping). Owner stores (relaxed); searchers and the
    /// Monitor read it to tell a worker stuck in one long job (odd, unchanged) from one
    /// that is about to take its run-next, and the stall report which kind it is.
    let activity = Atomic<UInt32>(0)
    /// The pthread running this worker's loop (0 before it starts): where the Monitor
    /// sends the signal that takes a stalled worker's backtrace.
    let thread = Atomic<UInt>(0)
    /// Jobs this worker took from other workers (stolen batches and run-next slots):
    /// each one is a thread hop. Written by the owner only, read by `Runtime.statistics`.
    let stolenJobs = Atomic<Int>(0)
    /// Started fibers of this worker resumed from another thread (pushRemoteFiber).
    let remoteFiberResumes = Atomic<Int>(0)
    /// A dump wants this worker's fibers (Dump.swift): set by the dumper, cleared by the
    /// owner when it answers into `dumpCollector` (or by the dumper when it gives up).
    let dumpWanted = Atomic<Bool>(false)
    let dumpCollector = Lock<DumpCollector?>(nil)
    /// Descriptors registered with this worker's own backend (IOHandle.adopt adds, their
    /// close removes). While non-zero the worker polls that backend too, and parks in it.
    let ownRegistrations = Atomic<Int>(0)

    @inline(__always)
    var hasOwnRegistrations: Bool { ownRegistrations.load(ordering: .relaxed) > 0 }

    // owner only. @exclusivity(unchecked) on the hot owner-only fields: only this worker's
    // thread touches them (see Ownership), and the dynamic checks cost ~15% of a fiber
    // switch (measured with perf).
    @exclusivity(unchecked) var runNextStreak = 0
    /// Set when our local queue overflowed; cleared when it runs dry (spawn burst mode).
    @exclusivity(unchecked) var inSpawnBurst = false
    /// Other workers' `activity` as seen when our current search began (owner only;
    /// allocated once, sized on first use).
    private var activityAtSearchStart: [UInt32] = []
    @exclusivity(unchecked) var tick: UInt32 = 0
    /// What this worker has done (Runtime.metrics): owner-only plain counts, copied into
    /// `published` when it parks and every `Tuning.globalQueueInterval` ticks (Tokio's
    /// metrics batch), so the hot path pays a plain add and readers see at most one
    /// interval's lag while it runs, exact counts while it is parked.
    @exclusivity(unchecked) var counts = WorkerCounts()
    let published = PublishedCounts()
    @exclusivity(unchecked) var fibersFirst = false
    /// The time of this worker's last look at the timers (every loop pass that finds no
    /// ready work, every `Tuning.globalQueueInterval` ticks, around parks): what a fiber's
    /// park records as its start (for dumps) without reading the clock itself.
    @exclusivity(unchecked) var recentNanos: Int64 = 0
    @exclusivity(unchecked) var isSearching = false
    private var rng: UInt64

    // Fibers (Worker+Fibers.swift). Owner only, except the remote list and its count.
    /// Started fibers of this worker that are ready to resume, queued from this thread.
    @exclusivity(unchecked) var readyFibers = Deque<Runnable>()
    /// Started fibers of this worker made ready by other threads. guarded by its lock.
    let remoteFibers = Lock(Deque<Runnable>())
    /// The remote list's length, written under its lock; a hint for the owner.
    let remoteFiberCount = Atomic<Int>(0)
    /// Default-size stacks ready for reuse (they keep their pages).
    @exclusivity(unchecked) var stackPool: [FiberStack] = []
    /// Where default-size stacks come from when the pool is empty (nil: the default size
    /// is above Tuning.fiberStackArenaMaxSize, each stack its own mapping).
    let defaultStackClass: StackClass?
    /// Fibers started here and not finished (a doubly linked list through the fibers).
    /// SAFETY: unowned(unsafe): listed fibers are alive (unlisted before they end).
    @exclusivity(unchecked) var liveFibers: Unmanaged<FiberCore>?
    @exclusivity(unchecked) var fibersCancelledForDrain = false
    /// Current-thread flavour (fibers must then be checked to stay on one thread).
    let isCurrentThreadFlavor: Bool
    /// Current-thread flavour: the thread that started the first fiber (fibers must stay on it).
    var fiberThread: pthread_t?

    init(index: Int, runtime: Runtime, queueCapacity: Int) {
        self.index = index
        self.runtime = runtime
        self.runtimeUnmanaged = Unmanaged.passUnretained(runtime)
        self.queue = LocalQueue(capacity: queueCapacity)
        self.rng = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)
        self.isCurrentThreadFlavor = runtime.configuration.flavor == .currentThread
        self.defaultStackClass = StackClass.forUsableSize(runtime.fiberStackSize)
    }

    deinit { releaseStackPool() }

    /// The worker whose loop runs on this thread, if any (any runtime).
    @inline(__always)
    static var current: Worker? {
        guard let raw = spindle_current_worker() else { return nil }
        // SAFETY: the slot holds an unretained Worker pointer only while `run` is on the
        // stack of this thread (set on entry, restored on exit), and `run`'s caller keeps
        // the Worker alive for that whole time.
        return Unmanaged<Worker>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Runs `body` with this thread's worker at +0 (no retain and release around it, which
    /// `current` costs on every schedule): the hot paths that only look at it.
    @inline(__always)
    static func withCurrent<R>(_ body: (Worker) -> R) -> R? {
        guard let raw = spindle_current_worker() else { return nil }
        // SAFETY: as in `current`: the worker outlives this call on its own thread.
        return Unmanaged<Worker>.fromOpaque(raw)._withUnsafeGuaranteedRef(body)
    }

    // MARK: scheduling from this worker's own thread

    /// Owner thread only: a job woken by the running job goes to run-next; whatever was
    /// there moves to the stealable queue and may wake an idle worker.
    @inline(__always)
    func scheduleLocal(_ r: Runnable) {
        if inSpawnBurst {
            scheduleBack(r)
            return
        }
        if _slowPath(Trace.isOn) { Trace.enqueued(r, .runNext) }
        let previous = runNextSlot.exchange(r.bits, ordering: .acquiringAndReleasing)
        if previous != 0 {
            // SAFETY: the runtime outlives its workers' threads (see `runtime`).
            runtimeUnmanaged._withUnsafeGuaranteedRef { rt in
                if queue.push(Runnable(bits: previous), overflow: rt.inject, orphaned: { [unowned(unsafe) self] in self.forwardOrphan($0) }) { inSpawnBurst = true }
                rt.driver.notifyOne()
            }
        }
    }

    /// Owner: takes the run-next job, if a searcher has not stolen it.
    @inline(__always)
    private func takeRunNext() -> Runnable? {
        if runNextSlot.load(ordering: .relaxed) == 0 { return nil }
        let bits = runNextSlot.exchange(0, ordering: .acquiringAndReleasing)
        return bits == 0 ? nil : Runnable(bits: bits)
    }

    /// Counts one look at the reactor and the events it delivered; returns them.
    @inline(__always) @discardableResult
    private func countPoll(_ events: Int) -> Int {
        counts.polls &+= 1
        counts.pollEvents &+= events
        if _slowPath(Trace.isOn) && events > 0 { Trace.emit(.poll, UInt64(events)) }
        return events
    }

    /// Copies the owner's counts where Runtime.metrics reads them.
    func publishCounts() {
        let c = counts
        let p = published
        p.jobs.store(c.jobs, ordering: .relaxed)
        p.fiberResumes.store(c.fiberResumes, ordering: .relaxed)
        p.wakeups.store(c.wakeups, ordering: .relaxed)
        p.parks.store(c.parks, ordering: .relaxed)
        p.polls.store(c.polls, ordering: .relaxed)
        p.pollEvents.store(c.pollEvents, ordering: .relaxed)
        p.parkedNanos.store(c.parkedNanos, ordering: .relaxed)
        p.readyFibers.store(readyFibers.count, ordering: .relaxed)
    }

    @inline(__always)
    private func countStolen(_ n: Int) {
        stolenJobs.store(stolenJobs.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    /// Searchers: steals the run-next job of a worker that sits on it.
    private func stealRunNext(from victim: Worker) -> Runnable? {
        let bits = victim.runNextSlot.load(ordering: .acquiring)
        if bits == 0 { return nil }
        let (done, _) = victim.runNextSlot.compareExchange(expected: bits, desired: 0, ordering: .acquiringAndReleasing)
        return done ? Runnable(bits: bits) : nil
    }

    /// Owner thread only: to the back of the local queue, waking an idle worker if needed.
    func scheduleBack(_ r: Runnable) {
        if _slowPath(Trace.isOn) { Trace.enqueued(r, .local) }
        if queue.push(r, overflow: runtime.inject, orphaned: { [unowned(unsafe) self] in self.forwardOrphan($0) }) { inSpawnBurst = true }
        runtime.driver.notifyOne()
    }

    // MARK: the loop

    /// Runs the loop on the calling thread until the runtime stops, `done()` turns true
    /// (checked after every job and every wake-up), or `deadline` (monotonic ns) passes.
    func run(until done: () -> Bool, deadline: Int64? = nil) {
        let previous = spindle_current_worker()
        // SAFETY: see `current`; restored below before `self` can go away.
        spindle_set_current_worker(Unmanaged.passUnretained(self).toOpaque())
        spindle_trace_set_thread_lane(Int32(index + 1))
        thread.store(UInt(pthread_self()), ordering: .relaxed)
        defer {
            // Nobody may signal this thread for a backtrace once it left (it may be gone).
            thread.store(0, ordering: .relaxed)
            spindle_trace_set_thread_lane(0)
            spindle_set_current_worker(previous)
        }

        while !done() {
            if runtime.isStopped { break }
            if let d = deadline, Sys.nowNanos() >= d { break }
            if let r = nextTask() { execute(r); continue }
            if fireTimers(now: Sys.nowNanos()) > 0 { continue }
            // Out of work: look at the reactor ourselves (no waiting) before stealing. A
            // socket this worker just wrote to is usually ready by now, and its waiter then
            // resumes here, with no other thread woken (Driver: only the last worker awake
            // blocks in the reactor while nobody is stuck).
            if countPoll(runtime.driver.poll(worker: index, own: hasOwnRegistrations)) > 0 { continue }
            if let r = search() { execute(r); continue }
            if done() { break }
            park(deadline: deadline, done: done)
        }
        if isSearching {
            isSearching = false
            if runtime.idle.transitionFromSearching() { runtime.driver.notifyOne() }
        }
        if runtime.isStopped { forwardLocalWork() }
    }

    @inline(__always)
    private func execute(_ r: Runnable) {
        if isSearching {
            isSearching = false
            // Rule 3 of Idle: the last searcher to find work wakes the next one.
            if runtime.idle.transitionFromSearching() { runtime.driver.notifyOne() }
        }
        activity.store(tick << 2 | (r.kind == .fiber ? 2 : 0) | 1, ordering: .relaxed)
        switch r.kind {
        case .swiftJob:
            counts.jobs &+= 1
            if _slowPath(Trace.isOn) {
                traceJob(r)
            } else {
                runtime.execute(r)
            }
        case .fiber:
            // SAFETY: a queued fiber word names a live fiber (Runnable's kind table); used
            // at +0, without the retain/release pair `r.fiber` costs per resume. The fiber
            // may end inside runFiber (finishFiber drops its self-retain, and it may be
            // freed there): nothing touches it after runFiber returns.
            Unmanaged<FiberCore>.fromOpaque(r.fiberPointer)._withUnsafeGuaranteedRef { runFiber($0) }
        case .wakeup:
            counts.wakeups &+= 1
            r.takeWakeup().fire()
        }
        activity.store(tick << 2, ordering: .relaxed)
    }

    /// A job, recorded: its start and end, and it is the waker of what it wakes.
    @inline(never)
    private func traceJob(_ r: Runnable) {
        let id = UInt64(r.bits)
        Trace.emit(.jobStart, id)
        spindle_trace_set_current(id)
        runtime.execute(r)
        spindle_trace_set_current(0)
        Trace.emit(.jobEnd, id)
    }

    /// One pick per tick. Ready fibers and jobs alternate (`fibersFirst` flips on every
    /// pick; not the tick's parity, which fiber-to-fiber hand-offs also advance), so when
    /// both kinds are ready each gets at least every other pick.
    private func nextTask() -> Runnable? {
        tick &+= 1
        if tick % Tuning.globalQueueInterval == 0 {
            if runtime.isDraining && !fibersCancelledForDrain { cancelLiveFibersForShutdown() }
            // A busy worker still delivers I/O events (no wait) when nobody polls.
            countPoll(runtime.driver.poll(worker: index, own: hasOwnRegistrations))
            _ = fireTimers(now: Sys.nowNanos())
            publishCounts()
            answerDumpIfWanted()
            if let r = runtime.inject.pop() { return r }
        }
        fibersFirst.toggle()
        if fibersFirst, let f = popReadyFiber() { return f }
        if let r = nextJob() { return r }
        return popReadyFiber()
    }

    private func nextJob() -> Runnable? {
        if inSpawnBurst, let r = runtime.inject.pop() { return r }
        if let r = takeRunNext() {
            if runNextStreak < Tuning.maxRunNextStreak {
                runNextStreak += 1
                return r
            }
            // Streak over: to the back of the queue. No wake-up: we pop from this queue
            // right now, and anything already there was announced when it was pushed.
            if queue.push(r, overflow: runtime.inject, orphaned: { [unowned(unsafe) self] in self.forwardOrphan($0) }) { inSpawnBurst = true }
        }
        runNextStreak = 0
        if let r = queue.pop() { return r }
        inSpawnBurst = false
        return takeFromInject()
    }

    /// Pops one item from the inject queue and, if the local queue is empty, moves a fair
    /// share more into it (Go's globrunqget: len/workers + 1, at most half a local queue).
    /// Never refills a non-empty local queue: the refill would land behind newer work.
    private func takeFromInject() -> Runnable? {
        let inject = runtime.inject
        if inject.isEmpty { return nil }
        if !queue.isEmpty { return inject.pop() }
        let share = min(inject.count / runtime.workers.count + 1, Int(queue.capacity / 2))
        var first: Runnable?
        _ = inject.pop(upTo: share) { r in
            if first == nil { first = r } else { queue.push(r, overflow: inject, orphaned: { [unowned(unsafe) self] in self.forwardOrphan($0) }) }
        }
        return first
    }

    /// Fires due wake-ups at once (they only queue a resume) and moves due jobs into the
    /// local queue. Returns how many fired.
    private func fireTimers(now: Int64) -> Int {
        recentNanos = now
        let fired = runtime.timers.fireDue(now: now) { r in
            if r.kind == .wakeup { r.takeWakeup().fire() } else { scheduleBack(r) }
        }
        if _slowPath(Trace.isOn) && fired > 0 { Trace.emit(.timersFired, UInt64(fired)) }
        return fired
    }

    /// Steals from other workers and the inject queue for a few brief rounds.
    private func search() -> Runnable? {
        let workers = runtime.workers
        if !isSearching {
            if !runtime.idle.transitionToSearching() { return nil }
            isSearching = true
        }
        // Even a lone worker passes through `searching`: the last searcher re-checks the
        // queues after declaring itself parked (Idle rule 4), which is what makes a push
        // that raced with its parking impossible to lose.
        if workers.count == 1 { return takeFromInject() }
        if activityAtSearchStart.count != workers.count {
            activityAtSearchStart = [UInt32](repeating: 0, count: workers.count)
        }
        for (i, w) in workers.enumerated() {
            activityAtSearchStart[i] = w.activity.load(ordering: .relaxed)
        }
        for round in 0..<Tuning.spinRounds {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            let start = Int(rng % UInt64(workers.count))
            for i in 0..<workers.count {
                let victim = (start + i) % workers.count
                if victim == index { continue }
                if let r = workers[victim].queue.steal(into: queue) {
                    countStolen(1 + queue.count)
                    if _slowPath(Trace.isOn) { Trace.emit(.steal, UInt64(victim), UInt64(1 + queue.count)) }
                    return r
                }
            }
            if let r = takeFromInject() { return r }
            if fireTimers(now: Sys.nowNanos()) > 0 {
                // A fired timer may have made a job or one of our own fibers ready.
                if let r = queue.pop() { return r }
                if let f = popReadyFiber() { return f }
            }
            if round + 1 == Tuning.spinRounds {
                // Last round: take a run-next job only from a worker that has not started
                // a job during our whole search, i.e. is stuck in a long one (Go's rule).
                // A busy worker is about to run its run-next itself; taking it would
                // bounce a ping-pong or yield loop across cores.
                for i in 0..<workers.count {
                    let victim = (start + i) % workers.count
                    if victim == index { continue }
                    let w = workers[victim]
                    if w.activity.load(ordering: .relaxed) != activityAtSearchStart[victim] { continue }
                    if let r = stealRunNext(from: w) {
                        countStolen(1)
                        if _slowPath(Trace.isOn) { Trace.emit(.steal, UInt64(victim), 1) }
                        return r
                    }
                }
            } else {
                for _ in 0..<Tuning.spinPauses { spindle_cpu_relax() }
            }
        }
        return nil
    }

    private func park(deadline: Int64?, done: () -> Bool) {
        // Our own ready fibers are pushed by this thread only (a timer fired during the
        // search, a fiber woken by a job): nobody would unpark us for them. Found by a
        // hang under TSan: a worker parked with a sleeping fiber's wake-up in its list.
        if hasReadyFibers { return }
        if runtime.isDraining && !fibersCancelledForDrain {
            // Shutdown began: fibers are cancelled so they unwind (Runtime.shutdown).
            cancelLiveFibersForShutdown()
            if hasReadyFibers { return }
        }
        let idle = runtime.idle
        let driver = runtime.driver
        let (wasLastSearcher, unparkedAfter) = idle.transitionToParked(index, isSearching: isSearching)
        isSearching = false
        // Rule 4 of Idle: work pushed while we were the last searcher woke nobody.
        if wasLastSearcher && runtime.hasVisibleWork() { driver.notifyOne() }
        if unparkedAfter == 0 && runtime.isDraining { runtime.tryFinishDrain() }
        defer { runtime.monitor?.workerWoke() }
        counts.parks &+= 1
        if _slowPath(Trace.isOn) { Trace.emit(.workerPark, UInt64(index)) }
        defer { if _slowPath(Trace.isOn) { Trace.emit(.workerUnpark, UInt64(index)) } }
        let parkedAt = Sys.nowNanos()
        publishCounts()
        published.parkedSince.store(parkedAt, ordering: .relaxed)
        defer {
            counts.parkedNanos &+= Sys.nowNanos() - parkedAt
            published.parkedSince.store(0, ordering: .relaxed)
            publishCounts()
        }

        while true {
            answerDumpIfWanted()
            // Where to wait (the shared reactor, our own, or the futex) is the Driver's call.
            let polled = driver.park(worker: index, ownEvents: hasOwnRegistrations, deadline: deadline)
            if polled { counts.polls &+= 1 }
            if runtime.isStopped { return }
            answerDumpIfWanted()
            // Woken (maybe nudged): events of our own backend may be waiting for us only.
            if hasOwnRegistrations { driver.pollOwn(worker: index) }
            let fired = fireTimers(now: Sys.nowNanos())
            if !idle.isParked(index) {
                // A notifier popped us and counted us as searching.
                isSearching = true
                return
            }
            let timedOut = deadline.map { Sys.nowNanos() >= $0 } ?? false
            if fired > 0 || !queue.isEmpty || runNextSlot.load(ordering: .relaxed) != 0 || !runtime.inject.isEmpty
                || hasReadyFibers || (runtime.isDraining && !fibersCancelledForDrain) || done() || timedOut {
                // Woke for our own reasons: leave the parked list ourselves, unless a
                // notifier did it meanwhile (then we count as searching).
                if !idle.unparkSelf(index) { isSearching = true }
                // Events we delivered may have queued more than we run next: let a parked
                // worker help (it takes the reactor over when it parks again). Tokio's rule.
                if polled && !queue.isEmpty { driver.notifyOne() }
                return
            }
        }
    }

    /// A job the closed inject queue refused (the runtime stopped while it overflowed):
    /// forwarded like everything else left after stop.
    /// Passed to LocalQueue.push as a
    /// closure literal capturing `self` unowned(unsafe): a method reference
    /// (`orphaned: forwardOrphan`) retained and released the worker on every push.
    /// SAFETY (the literals): they run only inside that push, on this worker's own thread,
    /// while the worker is alive.
    private func forwardOrphan(_ r: Runnable) { runtime.forwardOrphan(r) }

    /// After stop: nothing may stay stranded in this worker's queues.
    private func forwardLocalWork() {
        if let r = takeRunNext() { runtime.forwardOrphan(r) }
        while let r = queue.pop() { runtime.forwardOrphan(r) }
    }
}

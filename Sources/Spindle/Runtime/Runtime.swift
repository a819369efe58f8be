// Runtime: Spindle's public face: a pool of workers that runs Swift tasks and fibers,
// with timers and a blocking pool. The scheduler's design note is in
// Scheduler.swift; this file holds the public API and lifecycle.
import CSpindle
import Synchronization
import DequeModule

/// A Spindle runtime: worker threads that run Swift tasks, plus timers and a pool for
/// blocking work.
///
/// Two flavours:
/// - `.multiThread`: N worker threads with work stealing (default N: the CPUs this process
///   may use, honouring its affinity mask and cgroup CPU quota).
/// - `.currentThread`: no threads of its own; everything runs on the thread that calls
///   ``run(_:)`` (or ``shutdown()``), one driver at a time.
///
/// ```swift
/// let runtime = try Runtime()
/// let sum = try runtime.run {
///     await withTaskGroup(of: Int.self) { group in
///         for i in 1...100 { group.addTask { i } }
///         return await group.reduce(0, +)
///     }
/// }
/// runtime.shutdown()
/// ```
///
/// Tasks started by ``run(_:)`` prefer this runtime as their executor, and so do their
/// child tasks, `async let`s and the default actors they call; an unstructured `Task {}`
/// created inside does not inherit the preference (Swift's rule). To put *every* task on
/// Spindle, install it as Swift's global executor with ``Runtime/main(configuration:_:)``.
///
/// A runtime lives until it is shut down: its threads keep it alive.
public final class Runtime: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): every stored property is immutable after init or is
    // itself thread-safe (atomics, Mutex, the queues). Worker-owned state lives in Worker.

    public enum Flavor: Sendable, Equatable {
        case multiThread
        case currentThread
    }

    public struct Configuration: Sendable {
        public var flavor: Flavor
        /// Worker threads for `.multiThread`; nil means the CPUs this process may use.
        public var workerCount: Int?
        /// Thread names are "<name>-<index>" (at most 15 bytes are kept by Linux).
        public var name: String
        /// Upper bound on blocking-pool threads. Tokio's default is 512: enough for
        /// blocking I/O fan-out, far below the kernel's thread limits.
        public var blockingThreadLimit: Int
        /// A blocking-pool thread idle this long exits (Tokio's default: 10 s).
        public var blockingKeepAlive: Duration
        /// Local run-queue capacity per worker (a power of two). Tests shrink it to reach
        /// overflow and wrap-around paths quickly.
        public var localQueueCapacity: Int
        /// Usable stack bytes of a fiber that does not ask for a size (rounded up to pages,
        /// at least 16 KiB). 64 KiB by default: several hundred ordinary Swift frames, and
        /// untouched pages cost no memory (a parked fiber with a shallow body uses one
        /// page); 1,000,000 such stacks take 68 GB of address space, well inside the 128 TB
        /// a process has. A fiber that needs more asks for it in `spawnFiber(stackSize:)`.
        public var fiberStackSize: Int
        /// A worker inside one job or fiber turn for longer than this is reported (once
        /// per stall, with its backtrace: a `RuntimeWarning` of kind `.stall`); nil turns
        /// the detector off. 100 ms by default. Needs the `.multiThread` flavour (the
        /// Monitor thread watches; a current-thread runtime has none).
        public var stallThreshold: Duration?

        public init(
            flavor: Flavor = .multiThread,
            workerCount: Int? = nil,
            name: String = "spindle",
            blockingThreadLimit: Int = 512,
            blockingKeepAlive: Duration = .seconds(10),
            localQueueCapacity: Int = 256,
            fiberStackSize: Int = 64 * 1024,
            stallThreshold: Duration? = .milliseconds(100)
        ) {
            self.flavor = flavor
            self.workerCount = workerCount
            self.name = name
            self.blockingThreadLimit = blockingThreadLimit
            self.blockingKeepAlive = blockingKeepAlive
            self.localQueueCapacity = localQueueCapacity
            self.fiberStackSize = fiberStackSize
            self.stallThreshold = stallThreshold
        }
    }

    public let configuration: Configuration
    /// immutable after init
    private(set) var workers: [Worker] = []
    let inject = InjectQueue()
    let idle: Idle
    let timers = TimerKeeper()
    /// When the runtime was made (monotonic ns): Runtime.metrics's uptime.
    let startedAtNanos = Sys.nowNanos()
    /// Readiness events for sockets and signals, polled by parked workers (Reactor.swift).
    let reactor: Reactor
    /// Where idle workers wait, and how they are woken (Driver.swift).
    let driver: Driver
    /// Hands work stuck behind a long job to an idle worker; nil with fewer than two
    /// workers (nobody to hand it to).
    let monitor: Monitor?
    let blocking: BlockingPool
    /// One dump at a time (Dump.swift).
    let dumpGate = Lock(())
    /// Lifecycle raw value (Scheduler.swift).
    let lifecycle = Atomic<Int>(Lifecycle.running.rawValue)
    /// Fired when the runtime reaches `stopped`.
    let stoppedLatch = Latch()
    /// Fired when the last worker thread has left its loop (multi-thread flavour).
    let threadsExited = Latch()
    private let liveThreads = Atomic<Int>(0)
    /// Jobs handed to the fallback executor after stop (observable for tests and tracing).
    let orphanCount = Atomic<Int>(0)
    /// Set once this runtime keeps itself alive for its forwarded jobs (Scheduler.swift).
    let immortal = Atomic<Bool>(false)
    /// Current-thread flavour: one thread at a time drives the worker loop.
    private let turn = TurnLock()
    /// Fibers spawned and not yet ended (Worker+Fibers.swift).
    let liveFiberCount = Atomic<Int>(0)
    /// The default fiber stack's usable size, rounded (Configuration.fiberStackSize).
    let fiberStackSize: Int

    /// Creates and starts a runtime.
    public init(_ configuration: Configuration = Configuration()) throws(RuntimeError) {
        _ = TraceRecorder.fromEnvironment  // SPINDLE_TRACE=path: record from here on
        var config = configuration
        let n: Int
        switch config.flavor {
        case .currentThread: n = 1
        case .multiThread: n = config.workerCount ?? Sys.availableCPUs()
        }
        guard n >= 1, n <= 4096 else {
            throw .invalidConfiguration("workerCount must be between 1 and 4096, got \(n)")
        }
        let cap = config.localQueueCapacity
        guard cap >= 2, cap & (cap - 1) == 0, cap <= 1 << 20 else {
            throw .invalidConfiguration("localQueueCapacity must be a power of two between 2 and 2^20, got \(cap)")
        }
        guard config.blockingThreadLimit >= 1 else {
            throw .invalidConfiguration("blockingThreadLimit must be at least 1")
        }
        guard config.fiberStackSize > 0, config.fiberStackSize <= 1 << 30 else {
            throw .invalidConfiguration("fiberStackSize must be between 1 byte and 1 GiB, got \(config.fiberStackSize)")
        }
        config.workerCount = n
        self.configuration = config
        self.fiberStackSize = FiberStack.usableSize(for: config.fiberStackSize)
        self.idle = Idle(workerCount: n)
        // Multi-thread: one backend per worker too, for descriptors its fibers wait on. If
        // any of them fails, the ones made so far are closed (they are descriptors).
        var made: [EpollBackend] = []
        do {
            let count = config.flavor == .multiThread ? n + 1 : 1
            for _ in 0..<count { made.append(try EpollBackend()) }
            let shared = made.removeLast()
            self.reactor = try Reactor(backend: shared, workerBackends: made)
        } catch {
            for b in made { b.close() }
            throw .reactorUnavailable(error)
        }
        self.driver = Driver(reactor: reactor, timers: timers, idle: idle, workerCount: n)
        // The Monitor rescues work stuck behind a busy worker (two or more workers) and
        // reports stalls (any number, when the detector is on).
        self.monitor = config.flavor == .multiThread && (n >= 2 || config.stallThreshold != nil) ? Monitor() : nil
        self.blocking = BlockingPool(name: config.name, limit: config.blockingThreadLimit, keepAlive: config.blockingKeepAlive)
        workers = (0..<n).map { Worker(index: $0, runtime: self, queueCapacity: cap) }
        if config.flavor == .multiThread {
            try startThreads()
        }
    }

    /// Convenience: a runtime of the given flavour and worker count.
    public convenience init(flavor: Flavor, workers: Int? = nil) throws(RuntimeError) {
        try self.init(Configuration(flavor: flavor, workerCount: workers))
    }

    private func startThreads() throws(RuntimeError) {
        // Workers are born with the stall signal let through (Stall.c), whatever the mask
        // of the thread making the runtime; that thread's own mask is put back after.
        var savedMask = spindle_sigmask()
        let unblocked = configuration.stallThreshold != nil && spindle_stall_unblock_saving(&savedMask) == 0
        defer { if unblocked { spindle_sigmask_restore(&savedMask) } }
        // init returns once every thread runs its body: a thread still inside pthread's
        // start-up has every signal blocked for a moment, and a program looking at the
        // threads' masks right after init would see that instead of their own.
        let started = StartCount()
        var spawned = 0
        defer { while started.count.load(ordering: .acquiring) < spawned { sched_yield() } }
        DumpOnSignal.register(self)
        if let monitor {
            // Not counted in liveThreads: it exits on stop, holding the runtime until then.
            do {
                try OSThread.spawn(name: "\(configuration.name)-mon") { [self] in
                    started.count.add(1, ordering: .releasing)
                    monitor.run(self)
                }
                spawned += 1
            } catch {
                stop()
                throw .threadSpawnFailed(error)
            }
        }
        liveThreads.store(workers.count, ordering: .relaxed)
        for w in workers {
            do {
                try OSThread.spawn(name: "\(configuration.name)-\(w.index)") { [self] in
                    started.count.add(1, ordering: .releasing)
                    // Timers are due when due: the keeper's timed wait may end at most
                    // `Tuning.timerSlackNanos` late instead of Linux's default 50 µs.
                    _ = spindle_set_timer_slack(Tuning.timerSlackNanos)
                    w.run(until: { false })
                    if liveThreads.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                        releaseResourcesAfterStop()
                        threadsExited.open()
                    }
                }
                spawned += 1
            } catch {
                // Stop what did start; those threads exit at once.
                let missing = workers.count - w.index
                if liveThreads.subtract(missing, ordering: .acquiringAndReleasing).newValue == 0 {
                    threadsExited.open()
                }
                stop()
                throw .threadSpawnFailed(error)
            }
        }
    }

    /// Number of workers.
    public var workerCount: Int { workers.count }

    /// The runtime whose worker is running the current thread, if any.
    public static var current: Runtime? { Worker.current?.runtime }

    /// The index of the worker running the current thread, if it belongs to a Spindle
    /// runtime.
    public static var currentWorkerIndex: Int? { Worker.current?.index }

    /// True once the runtime has stopped.
    public var isShutDown: Bool { isStopped }

    /// Jobs that reached this runtime after it stopped and were handed to Swift's global
    /// concurrent executor instead.
    public var forwardedJobCount: Int { orphanCount.load(ordering: .relaxed) }

    /// Counters since the runtime started, for diagnostics and benchmarks.
    public struct Statistics: Sendable, Equatable {
        /// Readiness events the reactor delivered to sockets (about one per message received
        /// by a busy server).
        public var ioEvents: Int
        /// Jobs a worker took from another worker's queue or run-next slot: each is a
        /// thread hop (the job was queued on one worker and runs on another).
        public var stolenJobs: Int
        /// Fibers resumed from a thread other than their own worker (a fiber never moves,
        /// so its wake-up crosses threads): also thread hops.
        public var remoteFiberResumes: Int
        /// Times the monitor woke an idle worker because work (an event, a due timer, a
        /// woken job) waited behind a worker that stayed inside one job (Driver.swift).
        public var stallRescues: Int
        /// Workers parked right now (not a counter): `workerCount` when the runtime is idle.
        public var parkedWorkers: Int
    }

    /// The counters so far (each read on its own; not a consistent snapshot).
    public var statistics: Statistics {
        Statistics(
            ioEvents: reactor.eventsDelivered.load(ordering: .relaxed),
            stolenJobs: workers.reduce(0) { $0 + $1.stolenJobs.load(ordering: .relaxed) },
            remoteFiberResumes: workers.reduce(0) { $0 + $1.remoteFiberResumes.load(ordering: .relaxed) },
            stallRescues: monitor?.rescues.load(ordering: .relaxed) ?? 0,
            parkedWorkers: workers.count - idle.unparkedCount)
    }

    // MARK: run

    /// Runs `body` as a task on this runtime and blocks the calling thread until it
    /// finishes, returning its value or rethrowing its error (Tokio's `block_on`).
    ///
    /// With `.currentThread` the calling thread becomes the runtime's worker for the
    /// duration (other tasks spawned on the runtime run too); if another thread is
    /// driving, this call waits its turn.
    ///
    /// - Throws: ``RuntimeError/runInsideWorker`` when called from a Spindle worker
    ///   thread (blocking it could deadlock), ``RuntimeError/shutDown`` after shutdown, or
    ///   whatever `body` throws.
    public func run<T: Sendable>(_ body: sending @escaping () async throws -> T) throws -> T {
        if Worker.current != nil { throw RuntimeError.runInsideWorker }
        if isStopped { throw RuntimeError.shutDown }
        if configuration.flavor == .currentThread {
            turn.acquire()
            let pinned = workers[0].fibersPinnedToAnotherThread
            turn.release()
            if pinned { throw RuntimeError.fibersOnAnotherThread }
        }
        let completion = Completion<T>()
        Task(executorPreference: self) {
            do { completion.finish(.success(try await body())) } catch { completion.finish(.failure(error)) }
        }
        switch configuration.flavor {
        case .multiThread:
            completion.done.wait()
        case .currentThread:
            while !completion.isDone {
                turn.acquire()
                workers[0].run(until: { completion.isDone })
                turn.release()
                if !completion.isDone && isStopped {
                    // The runtime stopped under us; its jobs went to the fallback, where
                    // the body finishes.
                    completion.done.wait()
                }
            }
        }
        return try completion.take()
    }

    // MARK: shutdown

    /// Stops the runtime after the work in flight has run: every queued job and every job
    /// running, including the jobs they enqueue meanwhile. Blocks until then.
    ///
    /// Fibers are different: a fiber cannot move to another executor, so every live fiber
    /// is cancelled (its blocking calls throw `CancellationError`) and the runtime waits
    /// for it to unwind and end.
    ///
    /// Suspended tasks are not waited for: a task awaiting a continuation, or sleeping
    /// (its wake-up is handed to Swift's global concurrent executor with its deadline
    /// intact). If such a task resumes later, it continues on Swift's global concurrent
    /// executor (see ``forwardedJobCount``): nothing hangs and no job is dropped. Called
    /// from one of this runtime's own workers, it starts the shutdown and returns at once
    /// (waiting there could never finish).
    public func shutdown() {
        _ = shutdown(deadline: nil)
    }

    /// Like ``shutdown()`` but gives up waiting after `timeout`: what is still queued then
    /// is handed to Swift's global concurrent executor, and a job still running finishes
    /// on its thread. A fiber still alive then (one that ignored its cancellation) is
    /// abandoned: it never runs again, and its stack and what its frames hold are leaked.
    /// Returns true if all work in flight finished within the timeout.
    @discardableResult
    public func shutdown(timeout: Duration) -> Bool {
        shutdown(deadline: Sys.nowNanos() + timeout.nanosecondsClamped)
    }

    private func shutdown(deadline: Int64?) -> Bool {
        if GlobalExecutors.isGlobal(self) {
            spindleFatal("the runtime installed as Swift's global executor cannot be shut down")
        }
        _ = lifecycle.compareExchange(expected: Lifecycle.running.rawValue, desired: Lifecycle.draining.rawValue, ordering: .acquiringAndReleasing)
        // Every worker must see the drain start, to cancel its fibers (Worker.park).
        for w in workers { driver.unpark(w.index) }
        if let w = Worker.current, w.runtime === self { return false }
        switch configuration.flavor {
        case .multiThread:
            tryFinishDrain()
            if !stoppedLatch.wait(deadline: deadline) {
                stop()
                blocking.shutdown()
                return false
            }
            threadsExited.wait()
        case .currentThread:
            turn.acquire()
            if !isStopped {
                workers[0].run(until: { false }, deadline: deadline)
            }
            let clean = isStopped
            stop()
            releaseResourcesAfterStop()
            turn.release()
            if !clean { return false }
        }
        blocking.shutdown()
        return true
    }

    /// Once no worker loop can run any more (the last worker thread has exited, or the
    /// current-thread flavour's driver has stopped it): closes the reactor's descriptors
    /// and frees the stack pools now, not when the object goes away. A runtime that
    /// forwarded a job stays allocated for good (Scheduler.swift), and would otherwise keep
    /// 2(N+1) descriptors and its pooled stacks forever. Sockets still open fail with
    /// `SocketError.runtimeShutDown` (the reactor shut down in `stop`).
    func releaseResourcesAfterStop() {
        reactor.closeBackends()
        for w in workers { w.releaseStackPool() }
    }

    // MARK: blocking work

    /// Runs a blocking closure on the runtime's blocking pool, never on a worker, and
    /// returns its result. The pool grows on demand up to
    /// ``Configuration/blockingThreadLimit`` threads and shrinks after
    /// ``Configuration/blockingKeepAlive`` of idleness. Cancelling the awaiting task does
    /// not interrupt the closure (no thread can be interrupted safely).
    public func spawnBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withUnsafeThrowingContinuation { (cont: UnsafeContinuation<T, any Error>) in
            do {
                try blocking.submit {
                    do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
                }
            } catch {
                cont.resume(throwing: error)
            }
        }
    }
}

/// Threads of a runtime that have begun running their bodies (Runtime.startThreads).
private final class StartCount: Sendable {
    let count = Atomic<Int>(0)
}

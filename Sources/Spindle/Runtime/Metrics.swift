// Runtime.metrics(): what the workers, the reactor, the timers and the blocking pool have
// done and hold now, for dashboards (SpindleMetrics publishes it through swift-metrics)
// and diagnostics. Reading it takes a few locks briefly; nothing on the hot path: workers
// count in plain owner-only fields and publish them (Worker.publishCounts) when they park
// and every `Tuning.globalQueueInterval` ticks.
import Synchronization

/// A worker's owner-only counts (Worker.counts).
struct WorkerCounts {
    var jobs = 0
    var fiberResumes = 0
    var wakeups = 0
    var parks = 0
    var polls = 0
    var pollEvents = 0
    var parkedNanos: Int64 = 0
}

/// Where a worker publishes its counts for readers on other threads.
final class PublishedCounts: Sendable {
    let jobs = Atomic<Int>(0)
    let fiberResumes = Atomic<Int>(0)
    let wakeups = Atomic<Int>(0)
    let parks = Atomic<Int>(0)
    let polls = Atomic<Int>(0)
    let pollEvents = Atomic<Int>(0)
    let parkedNanos = Atomic<Int64>(0)
    /// The owner's ready-fiber list's length when last published.
    let readyFibers = Atomic<Int>(0)
    /// When the current park began (monotonic ns); 0 while the worker is not parked.
    let parkedSince = Atomic<Int64>(0)
}

/// A snapshot of a runtime's counters and gauges (``Runtime/metrics()``). Counters count
/// since the runtime started. Each value is read on its own, so the snapshot is not
/// atomic; a running worker's counts may lag by one scheduling interval (61 ticks), a
/// parked worker's are exact.
public struct RuntimeMetrics: Sendable {
    /// One worker thread.
    public struct Worker: Sendable {
        public var index: Int
        /// Time not parked since the runtime started: running jobs and fibers, looking for
        /// work, polling the reactor (Tokio's busy duration).
        public var busyTime: Duration
        /// Time parked (waiting for work in the reactor or on its futex).
        public var parkedTime: Duration
        /// Swift jobs run (task steps).
        public var jobs: Int
        /// Fiber turns: resumes from the loop and direct switches from fiber to fiber.
        public var fiberResumes: Int
        /// Timer and other wake-up items run.
        public var wakeups: Int
        /// Jobs taken from other workers (each a thread hop).
        public var steals: Int
        /// Times the worker parked.
        public var parks: Int
        /// Looks at the reactor (quick looks while busy or searching, and waits in it that
        /// returned events).
        public var polls: Int
        /// Events the quick looks delivered.
        public var pollEvents: Int
        /// Jobs in the worker's local queue and run-next slot now.
        public var queueDepth: Int
        /// Ready fibers of this worker waiting for their turn now.
        public var readyFibers: Int
        /// True while parked.
        public var isParked: Bool
    }

    public var workers: [Worker]
    /// Time since the runtime started.
    public var uptime: Duration
    /// Fibers spawned and not finished.
    public var liveFibers: Int
    /// Timers armed (sleeps, timeouts, intervals, I/O deadlines).
    public var armedTimers: Int
    /// Descriptors registered with the reactor (sockets, listeners, signal streams).
    public var registeredDescriptors: Int
    /// Readiness events the reactor delivered, ever.
    public var ioEvents: Int
    /// Threads of the blocking pool now.
    public var blockingPoolThreads: Int
    /// Jobs in the shared inject queue now.
    public var injectQueueDepth: Int
    /// Fibers resumed from another thread than their own worker, ever.
    public var remoteFiberResumes: Int
    /// Times the monitor woke a worker because work waited behind a busy one.
    public var stallRescues: Int
    /// Jobs that reached the runtime after it stopped (forwarded to Swift's executor).
    public var forwardedJobs: Int

    /// The sums over workers.
    public var jobs: Int { workers.reduce(0) { $0 + $1.jobs } }
    public var fiberResumes: Int { workers.reduce(0) { $0 + $1.fiberResumes } }
    public var busyTime: Duration { workers.reduce(.zero) { $0 + $1.busyTime } }
}

extension Runtime {
    /// The runtime's counters and gauges now (see ``RuntimeMetrics``).
    public func metrics() -> RuntimeMetrics {
        let now = Sys.nowNanos()
        let up = max(0, now - startedAtNanos)
        let ws = workers.map { w -> RuntimeMetrics.Worker in
            let p = w.published
            let since = p.parkedSince.load(ordering: .relaxed)
            let parked = min(up, p.parkedNanos.load(ordering: .relaxed) + (since > 0 ? max(0, now - since) : 0))
            return RuntimeMetrics.Worker(
                index: w.index,
                busyTime: .nanoseconds(up - parked), parkedTime: .nanoseconds(parked),
                jobs: p.jobs.load(ordering: .relaxed), fiberResumes: p.fiberResumes.load(ordering: .relaxed),
                wakeups: p.wakeups.load(ordering: .relaxed), steals: w.stolenJobs.load(ordering: .relaxed),
                parks: p.parks.load(ordering: .relaxed), polls: p.polls.load(ordering: .relaxed),
                pollEvents: p.pollEvents.load(ordering: .relaxed),
                queueDepth: w.queue.count + (w.runNextSlot.load(ordering: .relaxed) != 0 ? 1 : 0),
                readyFibers: w.remoteFiberCount.load(ordering: .relaxed) + p.readyFibers.load(ordering: .relaxed),
                isParked: since > 0)
        }
        return RuntimeMetrics(
            workers: ws, uptime: .nanoseconds(up),
            liveFibers: liveFiberCount.load(ordering: .relaxed),
            armedTimers: timers.count,
            registeredDescriptors: reactor.registrations,
            ioEvents: reactor.eventsDelivered.load(ordering: .relaxed),
            blockingPoolThreads: blocking.threadCount,
            injectQueueDepth: inject.count,
            remoteFiberResumes: workers.reduce(0) { $0 + $1.remoteFiberResumes.load(ordering: .relaxed) },
            stallRescues: monitor?.rescues.load(ordering: .relaxed) ?? 0,
            forwardedJobs: forwardedJobCount)
    }
}

// SpindleMetrics: a Spindle runtime's metrics (Runtime.metrics()) published through
// swift-metrics, by a periodic sampler: nothing is added to the runtime's hot paths, and
// whatever backend the program bootstrapped (Prometheus, StatsD, OpenTelemetry…) sees
// Spindle's workers beside the rest.
import Metrics
import Spindle

/// Samples a runtime's metrics and publishes them through swift-metrics.
///
/// ```swift
/// MetricsSystem.bootstrap(myBackend)
/// let sampler = RuntimeMetricsSampler(runtime: runtime)
/// Task { try await sampler.run() }        // every second until cancelled
/// ```
///
/// Published (label prefix `spindle_`, dimension `worker` on per-worker series, and
/// `runtime` when the runtime has a name):
/// - counters (increments between samples): `worker_jobs_total`,
///   `worker_fiber_resumes_total`, `worker_wakeups_total`, `worker_steals_total`,
///   `worker_parks_total`, `worker_polls_total`, `worker_busy_nanoseconds_total`,
///   `io_events_total`, `remote_fiber_resumes_total`, `stall_rescues_total`,
///   `forwarded_jobs_total`;
/// - gauges (the value now): `worker_queue_depth`, `worker_ready_fibers`, `live_fibers`,
///   `armed_timers`, `registered_descriptors`, `blocking_pool_threads`, `inject_queue_depth`.
public final class RuntimeMetricsSampler: Sendable {
    public let runtime: Runtime
    public let interval: Duration
    private let prefix: String
    private let factory: (any MetricsFactory)?
    private let runtimeName: String?
    private let state = Lock(State())

    private struct State {
        var last: RuntimeMetrics?
        var workerSeries: [Int: WorkerSeries] = [:]
        var series: RuntimeSeries?
    }

    /// `factory`: the swift-metrics backend (nil: `MetricsSystem.factory`, whatever the
    /// program bootstrapped). `runtimeName` adds a `runtime` dimension to every series.
    public init(runtime: Runtime, interval: Duration = .seconds(1), prefix: String = "spindle_",
                runtimeName: String? = nil, factory: (any MetricsFactory)? = nil) {
        self.runtime = runtime
        self.interval = interval
        self.prefix = prefix
        self.runtimeName = runtimeName
        self.factory = factory
    }

    /// Samples every `interval` until the calling task is cancelled.
    public func run() async throws {
        while true {
            sample()
            try await Task.sleep(for: interval)
        }
    }

    /// Takes one sample now and publishes it.
    public func sample() {
        let m = runtime.metrics()
        state.withLock { s in
            let previous = s.last
            let series = s.series ?? RuntimeSeries(make)
            s.series = series
            series.publish(m, previous)
            for w in m.workers {
                let ws = s.workerSeries[w.index] ?? WorkerSeries(w.index, make)
                s.workerSeries[w.index] = ws
                ws.publish(w, previous?.workers.first { $0.index == w.index })
            }
            s.last = m
        }
    }

    /// A maker of series with this sampler's prefix, dimensions and factory.
    private var make: SeriesMaker {
        SeriesMaker(prefix: prefix, base: runtimeName.map { [("runtime", $0)] } ?? [], factory: factory)
    }
}

struct SeriesMaker {
    let prefix: String
    let base: [(String, String)]
    let factory: (any MetricsFactory)?

    func counter(_ name: String, _ extra: [(String, String)] = []) -> Counter {
        if let factory { return Counter(label: prefix + name, dimensions: base + extra, factory: factory) }
        return Counter(label: prefix + name, dimensions: base + extra)
    }

    func gauge(_ name: String, _ extra: [(String, String)] = []) -> Gauge {
        if let factory { return Gauge(label: prefix + name, dimensions: base + extra, factory: factory) }
        return Gauge(label: prefix + name, dimensions: base + extra)
    }
}

/// Adds what a counter grew by since the last sample (never a negative step).
private func advance(_ c: Counter, _ now: Int, _ before: Int?) {
    let step = now - (before ?? 0)
    if step > 0 { c.increment(by: Int64(step)) }
}

final class WorkerSeries: Sendable {
    let jobs, fiberResumes, wakeups, steals, parks, polls, busy: Counter
    let queueDepth, readyFibers: Gauge

    init(_ index: Int, _ make: SeriesMaker) {
        let d = [("worker", String(index))]
        jobs = make.counter("worker_jobs_total", d)
        fiberResumes = make.counter("worker_fiber_resumes_total", d)
        wakeups = make.counter("worker_wakeups_total", d)
        steals = make.counter("worker_steals_total", d)
        parks = make.counter("worker_parks_total", d)
        polls = make.counter("worker_polls_total", d)
        busy = make.counter("worker_busy_nanoseconds_total", d)
        queueDepth = make.gauge("worker_queue_depth", d)
        readyFibers = make.gauge("worker_ready_fibers", d)
    }

    func publish(_ w: RuntimeMetrics.Worker, _ p: RuntimeMetrics.Worker?) {
        advance(jobs, w.jobs, p?.jobs)
        advance(fiberResumes, w.fiberResumes, p?.fiberResumes)
        advance(wakeups, w.wakeups, p?.wakeups)
        advance(steals, w.steals, p?.steals)
        advance(parks, w.parks, p?.parks)
        advance(polls, w.polls, p?.polls)
        advance(busy, nanoseconds(w.busyTime), p.map { nanoseconds($0.busyTime) })
        queueDepth.record(w.queueDepth)
        readyFibers.record(w.readyFibers)
    }
}

final class RuntimeSeries: Sendable {
    let ioEvents, remoteResumes, stallRescues, forwarded: Counter
    let liveFibers, timers, descriptors, blockingThreads, inject: Gauge

    init(_ make: SeriesMaker) {
        ioEvents = make.counter("io_events_total")
        remoteResumes = make.counter("remote_fiber_resumes_total")
        stallRescues = make.counter("stall_rescues_total")
        forwarded = make.counter("forwarded_jobs_total")
        liveFibers = make.gauge("live_fibers")
        timers = make.gauge("armed_timers")
        descriptors = make.gauge("registered_descriptors")
        blockingThreads = make.gauge("blocking_pool_threads")
        inject = make.gauge("inject_queue_depth")
    }

    func publish(_ m: RuntimeMetrics, _ p: RuntimeMetrics?) {
        advance(ioEvents, m.ioEvents, p?.ioEvents)
        advance(remoteResumes, m.remoteFiberResumes, p?.remoteFiberResumes)
        advance(stallRescues, m.stallRescues, p?.stallRescues)
        advance(forwarded, m.forwardedJobs, p?.forwardedJobs)
        liveFibers.record(m.liveFibers)
        timers.record(m.armedTimers)
        descriptors.record(m.registeredDescriptors)
        blockingThreads.record(m.blockingPoolThreads)
        inject.record(m.injectQueueDepth)
    }
}

private func nanoseconds(_ d: Duration) -> Int {
    let (s, a) = d.components
    return Int(s) * 1_000_000_000 + Int(a / 1_000_000_000)
}

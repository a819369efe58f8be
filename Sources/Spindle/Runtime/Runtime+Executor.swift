// Runtime's conformances to Swift's executor protocols. The jobs go straight into the
// scheduler (Scheduler.swift); timers into its timer store.
@_spi(ExperimentalScheduling) import _Concurrency

extension Runtime: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        schedule(Runnable(UnownedJob(job)))
    }
}

@_spi(ExperimentalScheduling)
extension Runtime: SchedulingExecutor {
    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        let delay = clock.now.duration(to: instant)
        schedule(Runnable(UnownedJob(job)), at: Runtime.deadline(after: delay))
    }

    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        schedule(Runnable(UnownedJob(job)), at: Runtime.deadline(after: delay))
    }

    /// Our monotonic deadline for a delay in some clock's units. Swift's own clocks
    /// (continuous, suspending) measure in `Duration`; a clock with another duration type
    /// cannot be converted, so its jobs run at once (documented in README).
    static func deadline<D: DurationProtocol>(after delay: D) -> Int64 {
        let now = Sys.nowNanos()
        guard let d = delay as? Duration else { return now }
        let ns = d.nanosecondsClamped
        return ns >= Int64.max - now ? .max : now + ns
    }
}

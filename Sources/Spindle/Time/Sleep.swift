// Time: sleeping, timeouts and intervals for tasks and fibers, on the runtime's one timer
// store (Timers / TimerStore).
//
// Every wait here exists twice under one name: `async` for tasks, synchronous for fibers
// (parks the fiber) and plain threads (blocks the thread). A task's sleep arms a timer on
// the runtime it runs on; cancelling the task takes the timer out at once (unlike
// `Task.sleep`, whose entry Swift never withdraws from the executor), so a million
// cancelled sleeps give their memory back.
//
// `TaskSleep` is the one shared object of a task's sleep: the timer holds it (as a
// retained Wakeup), the cancellation handler reaches it, and its small state machine
// decides under its lock who resumes the continuation: exactly one of the timer and the
// cancellation.
import Synchronization

/// A deadline passed before the operation finished (``withTimeout(_:operation:)``).
public struct TimeoutError: Error, Equatable, CustomStringConvertible {
    /// The time limit that was exceeded.
    public let limit: Duration
    public init(limit: Duration) { self.limit = limit }
    public var description: String { "operation timed out after \(limit)" }
}

// MARK: sleep

/// Suspends the task for `duration` on the Spindle runtime it runs on. Cancelling the
/// task ends the sleep at once (throwing `CancellationError`) and removes its timer.
/// Outside a Spindle runtime (no worker, no global runtime) it is `Task.sleep`.
public func sleep(for duration: Duration) async throws {
    try await TaskSleep.sleep(untilNanos: Sys.nowNanos() &+ duration.nanosecondsClamped)
}

/// Suspends the task until `deadline` (see ``sleep(for:)-(Duration)``).
public func sleep(until deadline: ContinuousClock.Instant) async throws {
    let now = ContinuousClock.now
    let left = deadline > now ? (deadline - now).nanosecondsClamped : 0
    try await TaskSleep.sleep(untilNanos: Sys.nowNanos() &+ left)
}

/// In a fiber: parks the fiber for `duration` (the worker runs other work meanwhile). On a
/// plain thread: blocks the thread.
/// - Throws: `CancellationError` when the fiber is cancelled (at once, not at the
///   deadline); ``FiberError/blockingOnWorker(_:)`` from a task on a Spindle worker
///   (use the `async` overload there).
@_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
@available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
public func sleep(for duration: Duration) throws {
    try checkMayBlock("sleep(for:)")
    try Fiber.sleep(for: duration)
}

/// In a fiber: parks it until `deadline`; on a plain thread: blocks (see ``sleep(for:)-(Duration)``).
@_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
@available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
public func sleep(until deadline: ContinuousClock.Instant) throws {
    try checkMayBlock("sleep(until:)")
    try Fiber.sleep(until: deadline)
}

// MARK: timeout

/// Runs `operation` as a child task and returns its result, or throws ``TimeoutError``
/// if it has not finished after `limit`; the operation is then cancelled.
///
/// As with every Swift task, cancellation is cooperative: the call returns once the
/// cancelled operation has ended (Spindle's waits, sockets and channels end at once).
public func withTimeout<T: Sendable>(
    _ limit: Duration, operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await sleep(for: limit)
            throw TimeoutError(limit: limit)
        }
        defer { group.cancelAll() }
        // The first child to finish decides; the other is cancelled (a cancelled sleep
        // removes its timer) and awaited by the group.
        return try await group.next()!
    }
}

// MARK: interval

/// What an ``Interval`` does with ticks it could not deliver on time (the consumer was
/// busy, or the machine was).
public enum MissedTickBehavior: Sendable, Equatable {
    /// Deliver every missed tick at once, back to back, then keep the original schedule
    /// (Tokio's default; right for counting ticks).
    case burst
    /// Deliver one tick now, then the next one full period after it: the schedule shifts.
    case delay
    /// Deliver one tick now, then go on with the original schedule's next tick in the
    /// future: missed ticks are dropped (right for periodic work such as flushing).
    case skip
}

/// Ticks every `period`: an `AsyncSequence` for tasks (ends when the task is cancelled)
/// and `next()` for fibers and threads. The first tick is immediate. Each element is the
/// instant the tick was scheduled for.
public struct Interval: AsyncSequence, Sendable {
    public typealias Element = ContinuousClock.Instant
    public typealias Failure = Never

    public let period: Duration
    public let missedTicks: MissedTickBehavior

    public init(every period: Duration, missedTicks: MissedTickBehavior = .skip) {
        if period <= .zero { spindleFatal("Interval(every: \(period)): the period must be positive") }
        self.period = period
        self.missedTicks = missedTicks
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var schedule: IntervalSchedule
        public mutating func next() async -> ContinuousClock.Instant? {
            let target = schedule.nextTarget
            do { try await TaskSleep.sleep(untilNanos: target) } catch { return nil }
            return schedule.fired(now: Sys.nowNanos())
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(schedule: IntervalSchedule(period: period.nanosecondsClamped, behavior: missedTicks))
    }

    /// A synchronous ticker for fibers and threads.
    public func makeTicker() -> Ticker {
        Ticker(schedule: IntervalSchedule(period: period.nanosecondsClamped, behavior: missedTicks))
    }

    /// The synchronous side of ``Interval``.
    public struct Ticker: Sendable {
        var schedule: IntervalSchedule
        /// Parks the fiber (blocks a thread) until the next tick, and returns its instant.
        /// - Throws: `CancellationError` when the fiber is cancelled;
        ///   ``FiberError/blockingOnWorker(_:)`` from a task (use the async sequence).
        @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
        @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
        public mutating func next() throws -> ContinuousClock.Instant {
            try checkMayBlock("Interval.Ticker.next()")
            try Fiber.sleep(untilNanos: schedule.nextTarget)
            return schedule.fired(now: Sys.nowNanos())
        }
    }
}

/// The pure schedule of an interval: when the next tick is due, and what a late tick does
/// to the ones after it.
struct IntervalSchedule: Sendable {
    let period: Int64
    let behavior: MissedTickBehavior
    /// Monotonic ns of the next tick; 0 until the first (immediate) tick.
    private(set) var next: Int64 = 0
    private let startNanos = Sys.nowNanos()
    private let startInstant = ContinuousClock.now

    init(period: Int64, behavior: MissedTickBehavior) {
        self.period = max(1, period)
        self.behavior = behavior
    }

    var nextTarget: Int64 { next == 0 ? startNanos : next }

    /// The tick due at `nextTarget` was delivered at `now`: returns its instant and plans
    /// the next.
    mutating func fired(now: Int64) -> ContinuousClock.Instant {
        let due = nextTarget
        switch behavior {
        case .burst:
            next = due + period
        case .delay:
            next = (now > due ? now : due) + period
        case .skip:
            next = due + period
            if next <= now { next = due + ((now - due) / period + 1) * period }
        }
        return startInstant.advanced(by: .nanoseconds(due - startNanos))
    }
}

// MARK: a task's sleep

final class TaskSleep: Wakeup, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): all state is in `state`, under its lock.
    struct State {
        var continuation: UnsafeContinuation<Void, Never>?
        var fired = false
        var cancelled = false
        /// The armed timer, for cancellation.
        var entry: TimerEntry?
    }

    let state = Lock(State())

    override func fire() {
        let c = state.withLock { s in
            s.fired = true
            return s.continuation.take()
        }
        c?.resume()
    }

    /// Its runtime stopped: the sleeping task still wakes, at its deadline, on Swift's
    /// global executor (where its continuation then resumes), as a `Task.sleep` would.
    override func forwardAfterStop(deadline: Int64?) {
        let left = deadline.map { max(0, $0 - Sys.nowNanos()) } ?? 0
        if left == 0 { fire(); return }
        Task.detached { [self] in
            try? await Task.sleep(for: .nanoseconds(left))
            fire()
        }
    }

    override var resumesATask: Bool { true }

    /// Sleeps the current task until `deadline` (monotonic ns).
    static func sleep(untilNanos deadline: Int64) async throws {
        guard let runtime = Runtime.current ?? Runtime.global else {
            let left = deadline - Sys.nowNanos()
            try await Task.sleep(for: .nanoseconds(max(0, left)))
            return
        }
        try Task.checkCancellation()
        let alarm = TaskSleep()
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                let resumeNow = alarm.state.withLock { s -> Bool in
                    if s.cancelled { return true }
                    s.continuation = c
                    return false
                }
                if resumeNow { c.resume(); return }
                let entry = runtime.schedule(Runnable(retaining: alarm), at: deadline)
                // Cancellation may have come in between: then it could not reach the timer.
                let cancelledMeanwhile = alarm.state.withLock { s -> Bool in
                    s.entry = entry
                    return s.cancelled
                }
                if cancelledMeanwhile, let entry, let item = runtime.timers.cancel(entry) {
                    _ = item.takeWakeup()
                }
            }
        } onCancel: {
            let (c, entry) = alarm.state.withLock { s in
                s.cancelled = true
                return (s.fired ? nil : s.continuation.take(), s.entry)
            }
            if let entry, let item = runtime.timers.cancel(entry) { _ = item.takeWakeup() }
            c?.resume()
        }
        let fired = alarm.state.withLock { $0.fired }
        if !fired { throw CancellationError() }
    }
}

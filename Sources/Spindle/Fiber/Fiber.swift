// Fiber: the public API of stackful coroutines on a runtime's workers: the blocking calls
// a fiber (or a plain thread) makes. Spawning is in Runtime+Fibers.swift, the handle in
// FiberHandle.swift, the state and parking protocol in FiberCore.swift, running them in
// Worker+Fibers.swift. UNSAFE FILE: the running fiber and its runtime are reached
// unretained (Unmanaged) on the hot paths.
//
// A fiber runs a plain synchronous closure on its own stack and can block (yield, sleep,
// join another fiber, wait for async work) anywhere in its call tree without blocking the
// worker thread: the blocking call parks the fiber and the worker runs something else.
// Each blocking call also works outside a fiber, on a plain thread, by blocking that
// thread, so the same code runs in both worlds.
import CSpindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the fiber API that a user can cause.
public enum FiberError: Error, Equatable, CustomStringConvertible {
    /// No stack could be mapped for the fiber (out of memory or of memory mappings).
    case stackUnavailable(SysError)
    /// A blocking call made inside a Swift task (on a Spindle worker or Swift's own
    /// thread pool) instead of a fiber or a plain thread: it would block a thread that
    /// tasks need, maybe the one the awaited work needs (BlockingPolicy).
    case blockingOnWorker(String)
    /// `Fiber.spawn` was called with no runtime at hand (not on a worker, no global runtime).
    case noRuntime
    /// A fiber called `join()` on its own handle: it would wait for itself forever.
    case joiningItself

    public var description: String {
        switch self {
        case .stackUnavailable(let e):
            return "Spindle could not map a fiber stack: \(e)"
        case .blockingOnWorker(let call):
            return "\(call) would block a thread that runs Swift tasks (it was called inside a task, not in a fiber or on a plain thread); use its async form with await"
        case .noRuntime:
            return "Fiber.spawn needs a runtime: call it on a Spindle worker, after Runtime.main, or use runtime.spawnFiber"
        case .joiningItself:
            return "a fiber called join() on its own handle, which would wait forever: join it from another fiber, a thread or a task"
        }
    }
}

/// What a fiber (or a thread, in the same code) can do: the blocking calls.
public enum Fiber {
    /// The fiber running on this thread, if the current code runs in one of a runtime's
    /// fibers (a generator's body is not one).
    /// `currentCore` unretained, for hot paths that use it within the call.
    /// SAFETY: the running fiber is alive while it runs, which outlasts any use inside it.
    @usableFromInline
    static var currentCoreRef: Unmanaged<FiberCore>? {
        guard let ctx = spindle_running_fiber(), let owner = ctx.pointee.owner else { return nil }
        return Unmanaged<FiberCore>.fromOpaque(owner)
    }

    @usableFromInline
    static var currentCore: FiberCore? {
        guard let ctx = spindle_running_fiber(), let owner = ctx.pointee.owner else { return nil }
        // SAFETY: `owner` is the FiberCore that runs on this context, alive while it runs.
        return Unmanaged<FiberCore>.fromOpaque(owner).takeUnretainedValue()
    }

    /// True when called from inside a fiber.
    public static var isInFiber: Bool { currentCore != nil }

    /// True when the current fiber has been cancelled (false outside fibers).
    public static var isCancelled: Bool { currentCore?.isCancelled ?? false }

    /// Throws `CancellationError` if the current fiber has been cancelled.
    public static func checkCancellation() throws {
        if isCancelled { throw CancellationError() }
    }

    /// Spawns a fiber on the current runtime: the one whose worker runs this code, else
    /// the global runtime (``Runtime/main(configuration:_:)``).
    @inlinable
    @discardableResult
    public static func spawn<T: Sendable>(
        name: String? = nil, stackSize: Int? = nil, _ body: @escaping @Sendable () throws -> T
    ) throws -> FiberHandle<T> {
        try currentRuntime().spawnFiber(name: name, stackSize: stackSize, body)
    }

    @usableFromInline
    static func currentRuntime() throws(FiberError) -> Runtime {
        // The worker's runtime, reached without retaining the worker too (`Runtime.current`
        // costs a retain/release pair more per spawn).
        // SAFETY: the runtime outlives its worker threads (Worker.runtime); the value taken
        // here is an ordinary strong reference.
        if let runtime = Worker.withCurrent({ $0.runtimeUnmanaged.takeUnretainedValue() }) { return runtime }
        guard let runtime = Runtime.global else { throw FiberError.noRuntime }
        return runtime
    }

    /// Lets the worker run other ready fibers and tasks, then continues. Outside a fiber it
    /// yields the thread (`sched_yield`).
    /// - Throws: `CancellationError` if the fiber is cancelled.
    @available(*, noasync, message: "Fiber.yield() is for fibers; in async code use `await Task.yield()`")
    public static func yield() throws {
        guard let ctx = spindle_running_fiber(), let owner = ctx.pointee.owner else {
            sched_yield()
            return
        }
        // SAFETY: the running fiber is alive; used at +0 (no retain on the hot path).
        let cancelled = Unmanaged<FiberCore>.fromOpaque(owner)._withUnsafeGuaranteedRef { me in
            if me.isCancelled { return true }
            me.yieldNow()
            return me.isCancelled
        }
        if cancelled { throw CancellationError() }
    }

    /// Parks the fiber for `duration` on the runtime's timers (outside a fiber: sleeps the
    /// thread).
    /// - Throws: `CancellationError` if the fiber is cancelled (at once, not at the deadline).
    @available(*, noasync, message: "Fiber.sleep blocks; in async code use `try await Spindle.sleep(for:)` or `Task.sleep`")
    public static func sleep(for duration: Duration) throws {
        try sleep(untilNanos: Sys.nowNanos() &+ duration.nanosecondsClamped)
    }

    /// Parks the fiber until `deadline` (outside a fiber: sleeps the thread).
    /// - Throws: `CancellationError` if the fiber is cancelled.
    @available(*, noasync, message: "Fiber.sleep blocks; in async code use `try await Spindle.sleep(for:)` or `Task.sleep`")
    public static func sleep(until deadline: ContinuousClock.Instant) throws {
        let now = ContinuousClock.now
        let left = deadline > now ? (deadline - now).nanosecondsClamped : 0
        try sleep(untilNanos: Sys.nowNanos() &+ left)
    }

    static func sleep(untilNanos deadline: Int64) throws {
        guard let me = currentCore, let runtime = me.home?.runtime else {
            try checkMayBlock("Fiber.sleep")
            Sys.sleepThread(untilNanos: deadline)
            return
        }
        if me.isCancelled { throw CancellationError() }
        let alarm = SleepWakeup(fiber: me)
        let entry = runtime.schedule(Runnable(retaining: alarm), at: deadline)
        while !alarm.hasFired {
            if me.isCancelled {
                // Take the timer out now (its memory goes back at once); if it already
                // fired, its wake-up only finds this fiber running and does nothing.
                if let entry, let item = runtime.timers.cancel(entry) { _ = item.takeWakeup() }
                throw CancellationError()
            }
            me.park(unless: { alarm.hasFired }, reason: .sleep)
        }
    }

    /// Runs `operation` as a task on the fiber's runtime and parks the fiber (not the
    /// worker) until it finishes, returning its value or rethrowing its error. Outside a
    /// fiber, on a plain thread, it blocks the thread instead.
    ///
    /// If the fiber is cancelled meanwhile, the task is cancelled and still awaited (so
    /// nothing it uses outlives the call); its outcome is returned as usual, which for
    /// cancellation-aware work is a `CancellationError`.
    /// - Throws: the operation's error; ``FiberError/blockingOnWorker(_:)`` from a task
    ///   on a Spindle worker. On a plain thread the task runs on the global Spindle runtime
    ///   if one is installed, else on Swift's default executor.
    @available(*, noasync, message: "Fiber.wait blocks until async work finishes; in async code just `await` that work")
    public static func wait<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T {
        if let me = currentCore, let runtime = me.home?.runtime {
            if me.isCancelled { throw CancellationError() }
            let box = AsyncOutcome<T>(fiber: me)
            let task = Task(executorPreference: runtime) {
                let outcome: Result<T, any Error>
                do { outcome = .success(try await operation()) } catch { outcome = .failure(error) }
                box.finish(outcome)
            }
            var cancelledTask = false
            while !box.isDone {
                if me.isCancelled && !cancelledTask {
                    task.cancel()
                    cancelledTask = true
                }
                // Once the task is cancelled, only its end matters: the park must not
                // return at once just because the fiber is cancelled.
                me.park(unless: { box.isDone }, cancellable: !cancelledTask)
            }
            return try box.take().get()
        }
        try checkMayBlock("Fiber.wait")
        let completion = Completion<T>()
        let runtime = Runtime.global
        Task(executorPreference: runtime) {
            do { completion.finish(.success(try await operation())) } catch { completion.finish(.failure(error)) }
        }
        completion.done.wait()
        return try completion.take()
    }
}

/// Fires a sleeping fiber's alarm.
final class SleepWakeup: Wakeup, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): an atomic flag and a reference to a thread-safe fiber.
    let fiber: FiberCore
    private let fired = Atomic<Bool>(false)
    init(fiber: FiberCore) { self.fiber = fiber }
    var hasFired: Bool { fired.load(ordering: .sequentiallyConsistent) }
    override func fire() {
        fired.store(true, ordering: .sequentiallyConsistent)
        fiber.wakeIfParked()
    }
}

/// The outcome of the task started by `Fiber.wait`, and the fiber to wake with it.
final class AsyncOutcome<T: Sendable>: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `value` is written once before `done` is set
    // (sequentially consistent) and read only after seeing `done`.
    private let fiber: FiberCore
    private var value: Result<T, any Error>?
    private let done = Atomic<Bool>(false)
    init(fiber: FiberCore) { self.fiber = fiber }
    var isDone: Bool { done.load(ordering: .sequentiallyConsistent) }
    func finish(_ r: Result<T, any Error>) {
        value = r
        done.store(true, ordering: .sequentiallyConsistent)
        fiber.wakeIfParked()
    }
    func take() -> Result<T, any Error> { value! }
}

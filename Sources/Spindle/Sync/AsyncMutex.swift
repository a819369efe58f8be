// AsyncMutex: a FIFO-fair lock whose waiters suspend (tasks) or park (fibers) instead of
// blocking a thread. UNSAFE FILE: none of its own.
//
// State machine under one lock: `locked` and a FIFO of waiters. unlock() hands the lock
// straight to the oldest waiter (it stays locked), so nobody can barge in ahead of a
// waiter: strict arrival order. A waiter cancelled while queued is withdrawn and throws;
// one that was handed the lock at the same moment owns it and returns normally.
import DequeModule

/// A fair mutual-exclusion lock for tasks, fibers and threads.
///
/// ```swift
/// let m = AsyncMutex()
/// try await m.withLock { await update() }       // a task
/// try m.withLock { updateSync() }               // a fiber or a plain thread
/// ```
public final class AsyncMutex: Sendable {
    @usableFromInline struct State {
        @usableFromInline var locked = false
        @usableFromInline var waiters = WaiterQueue<Void>()
        @inlinable init() {}
    }
    @usableFromInline let state = Lock(State())

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    public init() {}

    /// True while someone holds the lock.
    public var isLocked: Bool { state.withLock { $0.locked } }

    /// Takes the lock if it is free and nobody is waiting.
    public func tryLock() -> Bool {
        state.withLock { s in
            guard !s.locked && s.waiters.isEmpty else { return false }
            s.locked = true
            return true
        }
    }

    /// Waits for the lock (a task). - Throws: `CancellationError` (the lock is not held).
    public func lock() async throws {
        if tryLock() { return }
        let w = Waiter<Void>(forTask: true)
        await Blocking.wait(state, w, register: AsyncMutex.register, withdraw: AsyncMutex.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    /// Waits for the lock, parking the fiber or blocking the thread.
    /// - Throws: `CancellationError`; ``FiberError/blockingOnWorker(_:)`` from a task.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func lock() throws {
        if tryLock() { return }
        let w: Waiter<Void> = try Blocking.blockingWaiter("AsyncMutex.lock")
        Blocking.block(state, w, register: AsyncMutex.register, withdraw: AsyncMutex.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    /// Releases the lock; the oldest waiter (if any) gets it next.
    public func unlock() {
        let wake: Wake? = state.withLock { s in
            guard s.locked else {
                spindleFatal("AsyncMutex.unlock() was called on a mutex that is not locked: call unlock() once per successful lock() or tryLock(), or use withLock")
            }
            // Ownership passes to the oldest waiter (stays locked), or the lock is free.
            if let w = Blocking.completeFirst(&s.waiters, .completed) { return w }
            s.locked = false
            return nil
        }
        wake?.resume()
    }

    /// Runs `body` holding the lock (a task).
    public func withLock<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        try await lock()
        defer { unlock() }
        return try await body()
    }

    /// Runs `body` holding the lock (a fiber or a thread).
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lock()
        defer { unlock() }
        return try body()
    }

    static func register(_ s: inout State, _ w: Waiter<Void>) -> [Wake]? {
        if !s.locked && s.waiters.isEmpty {
            s.locked = true
            return [w.complete(.completed)]
        }
        return Blocking.enqueue(&s.waiters, w)
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Void>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

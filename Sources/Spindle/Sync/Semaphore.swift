// Semaphore: counting permits, FIFO-fair, for tasks, fibers and threads. UNSAFE FILE: none
// of its own (blocking goes through Blocking/Waiter).
//
// State machine under one lock: `permits` and a FIFO of waiters. A permit goes to the
// oldest waiter first: acquire takes a free permit only when nobody waits, and release
// hands permits straight to waiters. A cancelled waiter is withdrawn; one that was granted
// a permit at the same moment keeps it (and must release it).
import DequeModule

/// A counting semaphore.
///
/// ```swift
/// let slots = Semaphore(permits: 4)
/// try await slots.acquire()          // a task; `try slots.acquire()` in a fiber or thread
/// defer { slots.release() }
/// ```
public final class Semaphore: Sendable {
    @usableFromInline struct State {
        @usableFromInline var permits: Int
        @usableFromInline var waiters = WaiterQueue<Void>()
        @inlinable init(permits: Int) { self.permits = permits }
    }
    @usableFromInline let state: Lock<State>

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    public init(permits: Int) {
        if permits < 0 { spindleFatal("Semaphore(permits: \(permits)): the permits must be 0 or more") }
        state = Lock(State(permits: permits))
    }

    /// Permits free right now.
    public var availablePermits: Int { state.withLock { $0.permits } }

    /// Takes a permit if one is free and nobody is waiting.
    public func tryAcquire() -> Bool {
        state.withLock { s in
            guard s.permits > 0 && s.waiters.isEmpty else { return false }
            s.permits -= 1
            return true
        }
    }

    /// Waits for a permit (a task). - Throws: `CancellationError`.
    public func acquire() async throws {
        if tryAcquire() { return }
        let w = Waiter<Void>(forTask: true)
        await Blocking.wait(state, w, register: Semaphore.register, withdraw: Semaphore.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    /// Waits for a permit, parking the fiber or blocking the thread.
    /// - Throws: `CancellationError`; ``FiberError/blockingOnWorker(_:)`` from a task.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func acquire() throws {
        if tryAcquire() { return }
        let w: Waiter<Void> = try Blocking.blockingWaiter("Semaphore.acquire")
        Blocking.block(state, w, register: Semaphore.register, withdraw: Semaphore.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    /// Returns `count` permits, waking waiters in arrival order.
    public func release(count: Int = 1) {
        if count < 0 { spindleFatal("Semaphore.release(count: \(count)): the count must be 0 or more") }
        let wakes: [Wake] = state.withLock { s in
            s.permits += count
            var out: [Wake] = []
            while s.permits > 0, let w = s.waiters.popFirst() {
                guard w.claim() else { continue }
                s.permits -= 1
                out.append(w.complete(.completed))
            }
            return out
        }
        for w in wakes { w.resume() }
    }

    static func register(_ s: inout State, _ w: Waiter<Void>) -> [Wake]? {
        if s.permits > 0 && s.waiters.isEmpty {
            s.permits -= 1
            return [w.complete(.completed)]
        }
        return Blocking.enqueue(&s.waiters, w)
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Void>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

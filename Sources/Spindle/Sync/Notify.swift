// Notify: wake one or all waiters, with a stored permit when nobody waits (Tokio's
// Notify). UNSAFE FILE: none of its own.
//
// State under one lock: at most one stored permit, and a FIFO of waiters. notifyOne()
// wakes the oldest waiter, or stores the permit if there is none (so a notification that
// races ahead of the waiter is not lost); notifyAll() wakes every current waiter and
// stores nothing.
import DequeModule

public final class Notify: Sendable {
    @usableFromInline struct State {
        @usableFromInline var permit = false
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

    /// Wakes the oldest waiter, or lets the next `notified()` return at once.
    public func notifyOne() {
        let wake: Wake? = state.withLock { s in
            if let w = Blocking.completeFirst(&s.waiters, .completed) { return w }
            s.permit = true
            return nil
        }
        wake?.resume()
    }

    /// Wakes every current waiter (stores no permit).
    public func notifyAll() {
        let wakes: [Wake] = state.withLock { s in Blocking.completeAll(&s.waiters, .completed) }
        for w in wakes { w.resume() }
    }

    /// Waits for a notification (a task). - Throws: `CancellationError`.
    public func notified() async throws {
        let w = Waiter<Void>(forTask: true)
        await Blocking.wait(state, w, register: Notify.register, withdraw: Notify.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    /// Waits for a notification, parking the fiber or blocking the thread.
    /// - Throws: `CancellationError`; ``FiberError/blockingOnWorker(_:)`` from a task.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func notified() throws {
        let hadPermit = state.withLock { s -> Bool in
            guard s.permit else { return false }
            s.permit = false
            return true
        }
        if hadPermit { return }
        let w: Waiter<Void> = try Blocking.blockingWaiter("Notify.notified")
        Blocking.block(state, w, register: Notify.register, withdraw: Notify.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    static func register(_ s: inout State, _ w: Waiter<Void>) -> [Wake]? {
        if s.permit {
            s.permit = false
            return [w.complete(.completed)]
        }
        return Blocking.enqueue(&s.waiters, w)
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Void>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

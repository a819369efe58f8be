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
        @usableFromInline var waiters = Deque<Waiter<Void>>()
        @inlinable init() {}
    }
    @usableFromInline let state = Lock(State())

    public init() {}

    /// Wakes the oldest waiter, or lets the next `notified()` return at once.
    public func notifyOne() {
        let wake: Wake? = state.withLock { s in
            while let w = s.waiters.popFirst() {
                guard w.claim() else { continue }
                return w.complete(.completed)
            }
            s.permit = true
            return nil
        }
        wake?.resume()
    }

    /// Wakes every current waiter (stores no permit).
    public func notifyAll() {
        let wakes: [Wake] = state.withLock { s in
            var out: [Wake] = []
            while let w = s.waiters.popFirst() {
                if w.claim() { out.append(w.complete(.completed)) }
            }
            return out
        }
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
        w.isQueued = true
        s.waiters.append(w)
        return nil
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Void>) -> Bool {
        guard w.isQueued else { return false }
        w.isQueued = false
        return s.waiters.removeFirst(identicalTo: w)
    }
}

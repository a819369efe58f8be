// Barrier: `parties` callers wait until all have arrived, then all go on together; the
// barrier resets for the next round. UNSAFE FILE: none of its own.
//
// The last to arrive is the round's leader (wait returns true for it, false for the
// others), like Tokio's BarrierWaitResult. A waiter cancelled before the round completes
// is withdrawn and no longer counts as arrived.
import DequeModule

public final class Barrier: Sendable {
    @usableFromInline struct State {
        @usableFromInline let parties: Int
        @usableFromInline var waiters = WaiterQueue<Bool>()
        @inlinable init(parties: Int) { self.parties = parties }
    }
    @usableFromInline let state: Lock<State>

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    public init(parties: Int) {
        if parties < 1 { spindleFatal("Barrier(parties: \(parties)): a barrier needs at least one party") }
        state = Lock(State(parties: parties))
    }

    /// Waits for the round to fill (a task). Returns true for the round's leader.
    /// - Throws: `CancellationError` (this caller no longer counts as arrived).
    public func wait() async throws -> Bool {
        let w = Waiter<Bool>(forTask: true)
        await Blocking.wait(state, w, register: Barrier.register, withdraw: Barrier.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
        return state.withLock { _ in w.payload } ?? false
    }

    /// Waits for the round to fill, parking the fiber or blocking the thread.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func wait() throws -> Bool {
        let w: Waiter<Bool> = try Blocking.blockingWaiter("Barrier.wait")
        Blocking.block(state, w, register: Barrier.register, withdraw: Barrier.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
        return state.withLock { _ in w.payload } ?? false
    }

    static func register(_ s: inout State, _ w: Waiter<Bool>) -> [Wake]? {
        if s.waiters.count + 1 < s.parties {
            return Blocking.enqueue(&s.waiters, w)
        }
        var out: [Wake] = []
        while let other = s.waiters.popFirst() {
            other.payload = false
            out.append(other.complete(.completed))
        }
        w.payload = true
        out.append(w.complete(.completed))
        return out
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Bool>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

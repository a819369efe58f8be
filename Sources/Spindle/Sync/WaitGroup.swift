// WaitGroup: wait until a count of outstanding jobs drops to zero (Go's sync.WaitGroup).
// UNSAFE FILE: none of its own.
import DequeModule

public final class WaitGroup: Sendable {
    @usableFromInline struct State {
        @usableFromInline var count: Int
        @usableFromInline var waiters = WaiterQueue<Void>()
        @inlinable init(count: Int) { self.count = count }
    }
    @usableFromInline let state: Lock<State>

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    public init(count: Int = 0) {
        if count < 0 { spindleFatal("WaitGroup(count: \(count)): the count must be 0 or more") }
        state = Lock(State(count: count))
    }

    public var count: Int { state.withLock { $0.count } }

    /// Adds `n` outstanding jobs.
    public func add(_ n: Int = 1) {
        if n < 0 { spindleFatal("WaitGroup.add(\(n)): n must be 0 or more; call done() once per finished job instead") }
        state.withLock { $0.count += n }
    }

    /// One job finished; at zero, every waiter is woken. Calling it more often than `add`
    /// is a programming error (as in Go) and stops the process with a message.
    public func done() {
        let wakes: [Wake] = state.withLock { s in
            guard s.count > 0 else {
                spindleFatal("WaitGroup.done() was called more times than add() counted: call add(n) before starting n jobs, and done() once per job")
            }
            s.count -= 1
            guard s.count == 0 else { return [] }
            return Blocking.completeAll(&s.waiters, .completed)
        }
        for w in wakes { w.resume() }
    }

    /// Waits until the count is zero (a task). - Throws: `CancellationError`.
    public func wait() async throws {
        let w = Waiter<Void>(forTask: true)
        await Blocking.wait(state, w, register: WaitGroup.register, withdraw: WaitGroup.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    /// Waits until the count is zero, parking the fiber or blocking the thread.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func wait() throws {
        if count == 0 { return }
        let w: Waiter<Void> = try Blocking.blockingWaiter("WaitGroup.wait")
        Blocking.block(state, w, register: WaitGroup.register, withdraw: WaitGroup.withdraw)
        if state.withLock({ _ in w.outcome }) == .cancelled { throw CancellationError() }
    }

    static func register(_ s: inout State, _ w: Waiter<Void>) -> [Wake]? {
        if s.count == 0 { return [w.complete(.completed)] }
        return Blocking.enqueue(&s.waiters, w)
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Void>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

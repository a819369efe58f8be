// Oneshot: a value set once, received by whoever waits for it (a promise). UNSAFE FILE:
// none of its own.
//
// State under one lock: the value (once sent), `closed` (ended without a value), and the
// waiters. send() delivers to every waiter and to every later receive; close() without a
// value makes receivers throw `OneshotError.closed`.
import DequeModule

public enum OneshotError: Error, Equatable, CustomStringConvertible {
    /// send() was called a second time (or after close()).
    case alreadyCompleted
    /// The oneshot was closed without a value.
    case closed

    public var description: String {
        switch self {
        case .alreadyCompleted: return "the oneshot already has a value or was closed"
        case .closed: return "the oneshot was closed without a value"
        }
    }
}

public final class Oneshot<Value: Sendable>: Sendable {
    @usableFromInline struct State {
        @usableFromInline var value: Value?
        @usableFromInline var closed = false
        @usableFromInline var waiters = WaiterQueue<Value>()
        @inlinable init() {}
    }
    @usableFromInline let state = Lock(State())

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    public init() {}

    /// Sets the value and wakes every receiver.
    /// - Throws: `OneshotError.alreadyCompleted` if it was sent or closed before.
    @inlinable
    public func send(_ value: Value) throws(OneshotError) {
        let wakes: [Wake] = try state.withLock { (s: inout State) throws(OneshotError) -> [Wake] in
            if s.value != nil || s.closed { throw .alreadyCompleted }
            s.value = value
            return Blocking.completeAll(&s.waiters, .completed, payload: { value })
        }
        for w in wakes { w.resume() }
    }

    /// Ends the oneshot without a value (no effect if it has one).
    @inlinable
    public func close() {
        let wakes: [Wake] = state.withLock { s in
            if s.value != nil || s.closed { return [] }
            s.closed = true
            return Blocking.completeAll(&s.waiters, .closed)
        }
        for w in wakes { w.resume() }
    }

    /// Waits for the value (a task).
    /// - Throws: `OneshotError.closed`, `CancellationError`.
    @inlinable
    public func receive() async throws -> Value {
        let w = Waiter<Value>(forTask: true)
        await Blocking.wait(state, w, register: Oneshot.register, withdraw: Oneshot.withdraw)
        return try state.withLock { _ in Result { try Oneshot.finish(w) } }.get()
    }

    /// Waits for the value, parking the fiber or blocking the thread.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    @inlinable
    public func receive() throws -> Value {
        let w: Waiter<Value> = try Blocking.blockingWaiter("Oneshot.receive")
        Blocking.block(state, w, register: Oneshot.register, withdraw: Oneshot.withdraw)
        return try state.withLock { _ in Result { try Oneshot.finish(w) } }.get()
    }

    @inlinable
    static func finish(_ w: Waiter<Value>) throws -> Value {
        switch w.outcome {
        case .completed: return w.payload!
        case .closed: throw OneshotError.closed
        case .cancelled: throw CancellationError()
        case .pending: spindleFatal("a oneshot waiter resumed while pending")
        }
    }

    @inlinable
    static func register(_ s: inout State, _ w: Waiter<Value>) -> [Wake]? {
        if let v = s.value {
            w.payload = v
            return [w.complete(.completed)]
        }
        if s.closed { return [w.complete(.closed)] }
        return Blocking.enqueue(&s.waiters, w)
    }

    @inlinable
    static func withdraw(_ s: inout State, _ w: Waiter<Value>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

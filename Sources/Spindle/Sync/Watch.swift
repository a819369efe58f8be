// Watch: the latest value and a change notification (Tokio's watch channel). UNSAFE FILE:
// none of its own.
//
// State under one lock: the value, a version number bumped by every send, `closed`, and
// the waiters. A receiver remembers the version it last saw; `changed()` returns at once
// if the version moved, else waits for the next send (which wakes every waiter). Values
// sent in between are not queued: a receiver sees the latest one.
import DequeModule

public struct WatchClosedError: Error, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "the watch was closed" }
}

public final class Watch<Value: Sendable>: Sendable {
    @usableFromInline struct State {
        @usableFromInline var value: Value
        @usableFromInline var version: UInt64 = 0
        @usableFromInline var closed = false
        @usableFromInline var waiters = WaiterQueue<(Value, UInt64)>()
        @inlinable init(value: Value) { self.value = value }
    }
    @usableFromInline let state: Lock<State>

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    public init(_ initial: Value) { state = Lock(State(value: initial)) }

    /// The latest value.
    @inlinable public var value: Value { state.withLock { $0.value } }

    /// Replaces the value and wakes every receiver waiting in `changed()`.
    @inlinable
    public func send(_ value: Value) {
        let wakes: [Wake] = state.withLock { s in
            s.value = value
            s.version &+= 1
            let version = s.version
            return Blocking.completeAll(&s.waiters, .completed, payload: { (value, version) })
        }
        for w in wakes { w.resume() }
    }

    /// Ends the watch: waiting and later `changed()` calls throw `WatchClosedError`.
    @inlinable
    public func close() {
        let wakes: [Wake] = state.withLock { s in
            s.closed = true
            return Blocking.completeAll(&s.waiters, .closed)
        }
        for w in wakes { w.resume() }
    }

    /// A receiver that has seen the current value.
    @inlinable
    public func subscribe() -> Receiver { Receiver(watch: self, seen: state.withLock { $0.version }) }

    /// Follows a watch's changes. Not shared between callers (each has its own position).
    public struct Receiver: Sendable {
        @usableFromInline let watch: Watch<Value>
        @usableFromInline var seen: UInt64

        @inlinable init(watch: Watch<Value>, seen: UInt64) {
            self.watch = watch
            self.seen = seen
        }

        /// Waits until the value changes after the last one this receiver saw, and returns
        /// the latest (a task). - Throws: `WatchClosedError`, `CancellationError`.
        @inlinable
        public mutating func changed() async throws -> Value {
            let seen = self.seen
            let w = Waiter<(Value, UInt64)>(forTask: true)
            await Blocking.wait(watch.state, w,
                                register: { s, w in Watch.register(&s, w, seen: seen) },
                                withdraw: Watch.withdraw)
            return try finish(watch.state.withLock { _ in (w.outcome, w.payload) })
        }

        /// The same, parking the fiber or blocking the thread.
        @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
        @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
        @inlinable
        public mutating func changed() throws -> Value {
            let seen = self.seen
            let w: Waiter<(Value, UInt64)> = try Blocking.blockingWaiter("Watch.Receiver.changed")
            Blocking.block(watch.state, w,
                           register: { s, w in Watch.register(&s, w, seen: seen) },
                           withdraw: Watch.withdraw)
            return try finish(watch.state.withLock { _ in (w.outcome, w.payload) })
        }

        /// The waiter's outcome and payload, read under the watch's lock.
        @inlinable
        mutating func finish(_ w: (WaitOutcome, (Value, UInt64)?)) throws -> Value {
            switch w.0 {
            case .completed:
                let (value, version) = w.1!
                seen = version
                return value
            case .closed: throw WatchClosedError()
            case .cancelled: throw CancellationError()
            case .pending: spindleFatal("a watch waiter resumed while pending")
            }
        }
    }

    @inlinable
    static func register(_ s: inout State, _ w: Waiter<(Value, UInt64)>, seen: UInt64) -> [Wake]? {
        if s.version != seen {
            w.payload = (s.value, s.version)
            return [w.complete(.completed)]
        }
        if s.closed { return [w.complete(.closed)] }
        return Blocking.enqueue(&s.waiters, w)
    }

    @inlinable
    static func withdraw(_ s: inout State, _ w: Waiter<(Value, UInt64)>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

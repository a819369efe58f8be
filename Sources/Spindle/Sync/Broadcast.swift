// Broadcast: every receiver gets every value, from a bounded ring; a receiver that falls
// more than `capacity` values behind is told how many it missed (Tokio's broadcast).
// UNSAFE FILE: none of its own.
//
// State under one lock: the ring (the last `capacity` values), the sequence number of its
// first value and of the next send, `closed`, and the receivers waiting for the next
// value. A receiver is just a cursor (a sequence number): if its cursor fell off the ring,
// its next receive throws `BroadcastLagged(missed:)` and moves it to the oldest value
// still kept. send() never waits: slow receivers lose old values, not the sender's time.
import DequeModule

/// A receiver fell behind: `missed` values were dropped before it read them. Its next
/// receive returns the oldest value still kept.
public struct BroadcastLagged: Error, Equatable, CustomStringConvertible {
    public let missed: UInt64
    public var description: String { "broadcast receiver lagged: \(missed) values missed" }
}

public final class Broadcast<Value: Sendable>: Sendable {
    enum Item: Sendable {
        case value(Value, seq: UInt64)
        case lagged(missed: UInt64, resumeAt: UInt64)
    }

    struct State {
        var ring = Deque<Value>()
        var firstSeq: UInt64 = 0
        var nextSeq: UInt64 = 0
        let capacity: Int
        var closed = false
        var waiters = WaiterQueue<Item>()
        init(capacity: Int) { self.capacity = capacity }

        /// What a receiver at `cursor` gets now, if anything.
        func item(at cursor: UInt64) -> Item? {
            if cursor < firstSeq { return .lagged(missed: firstSeq - cursor, resumeAt: firstSeq) }
            if cursor < nextSeq { return .value(ring[Int(cursor - firstSeq)], seq: cursor) }
            return nil
        }
    }
    let state: Lock<State>

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this for its whole
        // wait): the queue's references to them go with it (WaiterQueue).
        state.withLock { $0.waiters.dropAll() }
    }

    /// A broadcast keeping the last `capacity` values for receivers that fall behind.
    public init(capacity: Int) {
        if capacity < 1 { spindleFatal("Broadcast(capacity: \(capacity)): the capacity must be at least 1 (the values a slow receiver may lag behind)") }
        state = Lock(State(capacity: capacity))
    }

    /// Sends `value` to every receiver. Never waits.
    /// - Throws: `ChannelClosedError` if the broadcast was closed.
    public func send(_ value: Value) throws(ChannelClosedError<Value>) {
        let wakes: [Wake]? = state.withLock { s in
            if s.closed { return nil }
            let seq = s.nextSeq
            s.ring.append(value)
            s.nextSeq += 1
            if s.ring.count > s.capacity {
                s.ring.removeFirst()
                s.firstSeq += 1
            }
            return Blocking.completeAll(&s.waiters, .completed, payload: { .value(value, seq: seq) })
        }
        guard let wakes else { throw ChannelClosedError(value: value) }
        for w in wakes { w.resume() }
    }

    /// Closes: receivers get what is still in the ring, then nil.
    public func close() {
        let wakes: [Wake] = state.withLock { s in
            s.closed = true
            return Blocking.completeAll(&s.waiters, .closed)
        }
        for w in wakes { w.resume() }
    }

    /// A receiver that gets the values sent from now on.
    public func subscribe() -> Receiver { Receiver(broadcast: self, cursor: state.withLock { $0.nextSeq }) }

    /// One receiver's position. Each subscriber has its own.
    public struct Receiver: Sendable {
        let broadcast: Broadcast<Value>
        var cursor: UInt64

        /// The next value (a task); nil once closed and caught up.
        /// - Throws: `BroadcastLagged` (once, then receiving resumes at the oldest kept
        ///   value), `CancellationError`.
        public mutating func receive() async throws -> Value? {
            let cursor = self.cursor
            let w = Waiter<Item>(forTask: true)
            await Blocking.wait(broadcast.state, w,
                                register: { s, w in Broadcast.register(&s, w, cursor: cursor) },
                                withdraw: Broadcast.withdraw)
            return try finish(w)
        }

        /// The next value, parking the fiber or blocking the thread.
        @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
        @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
        public mutating func receive() throws -> Value? {
            let cursor = self.cursor
            let w: Waiter<Item> = try Blocking.blockingWaiter("Broadcast.Receiver.receive")
            Blocking.block(broadcast.state, w,
                           register: { s, w in Broadcast.register(&s, w, cursor: cursor) },
                           withdraw: Broadcast.withdraw)
            return try finish(w)
        }

        mutating func finish(_ w: Waiter<Item>) throws -> Value? {
            let (outcome, item) = broadcast.state.withLock { _ in (w.outcome, w.payload) }
            switch outcome {
            case .completed:
                switch item! {
                case .value(let v, let seq):
                    cursor = seq + 1
                    return v
                case .lagged(let missed, let resumeAt):
                    cursor = resumeAt
                    throw BroadcastLagged(missed: missed)
                }
            case .closed: return nil
            case .cancelled: throw CancellationError()
            case .pending: spindleFatal("a broadcast waiter resumed while pending")
            }
        }
    }

    static func register(_ s: inout State, _ w: Waiter<Item>, cursor: UInt64) -> [Wake]? {
        if let item = s.item(at: cursor) {
            w.payload = item
            return [w.complete(.completed)]
        }
        if s.closed { return [w.complete(.closed)] }
        return Blocking.enqueue(&s.waiters, w)
    }

    static func withdraw(_ s: inout State, _ w: Waiter<Item>) -> Bool {
        Blocking.withdraw(&s.waiters, w)
    }
}

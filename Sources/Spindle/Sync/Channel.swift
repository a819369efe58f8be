// Channel: a multi-producer, multi-consumer queue that tasks, fibers and plain threads
// can all block on. UNSAFE FILE: the fiber paths reach the running fiber and its own waiter
// unretained (Unmanaged); the blocking goes through Waiter.
//
// Design (Go's hchan, Tokio's mpsc, and swift-async-algorithms' AsyncChannel, as a pure
// state machine): one lock guards `ChannelState`: the buffer, the queue of blocked
// receivers, the queue of blocked senders, and `closed`. Every operation decides under the
// lock (hand the value straight to a waiting receiver, buffer it, take it from a waiting
// sender, or queue the caller) and wakes at most one other party after unlocking.
//   - capacity 0 is a rendezvous: a value goes from a sender to a receiver directly;
//   - a value handed to a waiting receiver never passes through the buffer, so FIFO order
//     holds across buffered and direct deliveries (a receiver waits only while the buffer
//     is empty);
//   - close(): receivers drain the buffer, then see the end (nil); blocked and later
//     senders get `ChannelClosedError` carrying their value back (nothing is lost);
//   - cancellation: a queued waiter is removed at once and throws `CancellationError`; a
//     waiter that was already handed a value keeps it (it is never dropped or duplicated).
// Every blocking operation has an `async` form (for tasks) and a synchronous form with the
// same name (for fibers: parks the fiber; for plain threads: blocks the thread).
import DequeModule
import Synchronization

/// `send` on a closed channel. Carries the value that was not sent.
public struct ChannelClosedError<Element: Sendable>: Error, CustomStringConvertible {
    /// The value the failed send carried.
    public let value: Element
    @inlinable init(value: Element) { self.value = value }
    public var description: String { "send on a closed channel" }
}

/// The outcome of ``Channel/tryReceive()``.
public enum ChannelTryReceive<Element: Sendable>: Sendable {
    case value(Element)
    /// Nothing buffered and no sender waiting; the channel is open.
    case empty
    /// Closed and drained.
    case closed
}

@usableFromInline
struct ChannelState<Element> {
    @usableFromInline var buffer = Deque<Element>()
    /// Int.max for unbounded.
    @usableFromInline let capacity: Int
    @usableFromInline var closed = false
    @usableFromInline var receivers = WaiterQueue<Element>()
    @usableFromInline var senders = WaiterQueue<Element>()
    /// Finished task waiters kept for the next task that has to wait (see
    /// `WaiterCore.reuseForTask()`): it then allocates nothing. Fibers keep their own.
    @usableFromInline var spares: [Waiter<Element>] = []

    @inlinable init(capacity: Int) { self.capacity = capacity }

    @usableFromInline enum Send {
        /// Sent; wake this receiver (if any) after unlocking.
        case sent(Wake?)
        case full
        case closed
        /// The waiter was queued.
        case queued
    }

    /// Sends `value`, or queues `waiter` (if given) when there is no room. The caller
    /// keeps the waiter alive for the call (the queue takes its own reference).
    @inlinable @inline(__always)
    mutating func send(_ value: Element, queueing waiter: @autoclosure () -> Waiter<Element>?) -> Send {
        var wake: Wake?
        switch send(value, queueing: waiter().map { Unmanaged.passUnretained($0) }, wake: &wake) {
        case .done: return .sent(wake.take())
        case .full: return .full
        case .closed: return .closed
        case .queued: return .queued
        }
    }

    @usableFromInline enum Outcome { case done, full, closed, queued }

    /// `send` for the fiber path: the waiter comes unretained (the caller keeps it alive:
    /// a fiber's own waiter), and the receiver to wake comes back through `wake` (an
    /// optional the caller moves out), which costs no retain/release pair the way an
    /// enum payload does. The one reference count left is the queue's.
    @inlinable @inline(__always)
    mutating func send(_ value: Element, queueing waiter: @autoclosure () -> Unmanaged<Waiter<Element>>?, wake: inout Wake?) -> Outcome {
        if closed { return .closed }
        while let u = receivers.popFirstUnmanaged() {
            // SAFETY: the queue's reference, now ours, keeps it alive.
            let claimed = u._withUnsafeGuaranteedRef { r in
                r.isQueued = false
                guard r.claim() else { return false }   // a select that completed elsewhere
                r.payload = value
                return true
            }
            guard claimed else { u.release(); continue }
            wake = Wake(completing: u.takeRetainedValue(), .completed)
            return .done
        }
        if buffer.count < capacity {
            buffer.append(value)
            return .done
        }
        guard let u = waiter() else { return .full }
        // SAFETY: the caller keeps it alive for this call.
        u._withUnsafeGuaranteedRef { w in
            w.payload = value
            w.isQueued = true
        }
        senders.append(retaining: u)
        return .queued
    }

    @usableFromInline enum Receive {
        /// A value; wake this sender (if any) after unlocking.
        case value(Element, Wake?)
        case empty
        case closed
        case queued
    }

    /// Receives a value, or queues `waiter` (if given) when there is none. The caller
    /// keeps the waiter alive for the call.
    @inlinable @inline(__always)
    mutating func receive(queueing waiter: @autoclosure () -> Waiter<Element>?) -> Receive {
        var wake: Wake?, value: Element?
        switch receive(queueing: waiter().map { Unmanaged.passUnretained($0) }, value: &value, wake: &wake) {
        case .done: return .value(value.take()!, wake.take())
        case .full: return .empty
        case .closed: return .closed
        case .queued: return .queued
        }
    }

    /// `receive` for the fiber path, as `send(_:queueing:wake:)`; `.full` means empty.
    @inlinable @inline(__always)
    mutating func receive(queueing waiter: @autoclosure () -> Unmanaged<Waiter<Element>>?, value: inout Element?, wake: inout Wake?) -> Outcome {
        if let v = buffer.popFirst() {
            value = v
            // Room freed: the first waiting sender's value moves into the buffer.
            if let s = takeSender() {
                buffer.append(s.payload)
                wake = Wake(completing: s.waiter.takeRetainedValue(), .completed)
            }
            return .done
        }
        if let s = takeSender() {   // rendezvous: straight from a sender
            value = s.payload
            wake = Wake(completing: s.waiter.takeRetainedValue(), .completed)
            return .done
        }
        if closed { return .closed }
        guard let u = waiter() else { return .full }
        // SAFETY: the caller keeps it alive for this call.
        u._withUnsafeGuaranteedRef { $0.isQueued = true }
        receivers.append(retaining: u)
        return .queued
    }

    /// The first queued sender that may complete now, off the queue (with the queue's
    /// reference, which the caller hands to its Wake), and the value it offered.
    @inlinable @inline(__always)
    mutating func takeSender() -> (waiter: Unmanaged<Waiter<Element>>, payload: Element)? {
        while let u = senders.popFirstUnmanaged() {
            // SAFETY: the queue's reference, now ours, keeps it alive.
            let payload: Element? = u._withUnsafeGuaranteedRef { s in
                s.isQueued = false
                guard s.claim() else { return nil }
                return s.payload.take()!
            }
            guard let payload else { u.release(); continue }
            return (u, payload)
        }
        return nil
    }

    /// Closes; returns the waiters to wake (all of them get `.closed`).
    @inlinable
    mutating func close() -> [Wake] {
        if closed { return [] }
        closed = true
        var out: [Wake] = []
        while let w = receivers.popFirst() {
            w.isQueued = false
            if w.claim() { out.append(w.complete(.closed)) }
        }
        while let w = senders.popFirst() {
            w.isQueued = false
            if w.claim() { out.append(w.complete(.closed)) }
        }
        return out
    }

    /// Withdraws a queued waiter (cancellation, or a select that completed elsewhere).
    /// Returns true if it was still queued.
    @inlinable
    mutating func withdraw(_ w: Waiter<Element>) -> Bool {
        guard w.isQueued else { return false }
        if !receivers.removeFirst(identicalTo: w) { _ = senders.removeFirst(identicalTo: w) }
        w.isQueued = false
        return true
    }
}

/// A multi-producer, multi-consumer channel usable from tasks (`await`), fibers and plain
/// threads (the synchronous overloads).
///
/// ```swift
/// let ch = Channel<Int>(capacity: 16)      // 0: rendezvous; Channel.unbounded() for no limit
/// runtime.spawnFiber { for i in 0..<100 { try ch.send(i) }; ch.close() }   // a fiber
/// for try await v in ch { print(v) }                                      // a task
/// ```
public final class Channel<Element: Sendable>: Sendable {
    @usableFromInline let state: Lock<ChannelState<Element>>

    /// A channel that holds up to `capacity` values (0: every send waits for a receiver).
    @inlinable
    public init(capacity: Int) {
        if capacity < 0 { spindleFatal("Channel(capacity: \(capacity)): the capacity must be 0 (rendezvous) or more; use Channel.unbounded() for no limit") }
        state = Lock(ChannelState(capacity: capacity))
    }

    /// A channel whose sends never wait.
    @inlinable
    public static func unbounded() -> Channel<Element> {
        let c = Channel(capacity: 0)
        c.state.withLock { $0 = ChannelState(capacity: .max) }
        return c
    }

    deinit {
        // Waiters still queued here belong to nobody who can reach this channel any more
        // (select branches that lost, or callers gone after a fatal error): drop the
        // queues' references to them.
        state.withLock { s in
            s.receivers.dropAll()
            s.senders.dropAll()
        }
    }

    /// True once ``close()`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Values buffered right now.
    public var count: Int { state.withLock { $0.buffer.count } }

    /// Closes the channel: receivers drain what is buffered and then get nil; senders get
    /// `ChannelClosedError`. Idempotent.
    @inlinable
    public func close() {
        for w in state.withLock({ $0.close() }) { w.resume() }
    }

    // MARK: non-blocking

    /// Sends without waiting. Returns false if the channel is full.
    /// - Throws: `ChannelClosedError` if the channel is closed.
    @inlinable @discardableResult
    public func trySend(_ value: Element) throws(ChannelClosedError<Element>) -> Bool {
        switch state.withLock({ $0.send(value, queueing: nil) }) {
        case .sent(let r):
            r?.resume()
            return true
        case .full: return false
        case .closed: throw ChannelClosedError(value: value)
        case .queued: spindleFatal("trySend queued a waiter")
        }
    }

    /// Receives without waiting.
    @inlinable
    public func tryReceive() -> ChannelTryReceive<Element> {
        switch state.withLock({ $0.receive(queueing: nil) }) {
        case .value(let v, let s):
            s?.resume()
            return .value(v)
        case .empty: return .empty
        case .closed: return .closed
        case .queued: spindleFatal("tryReceive queued a waiter")
        }
    }

    // MARK: tasks

    /// Sends `value`, suspending while the channel is full.
    /// - Throws: `ChannelClosedError` (with the value) if the channel is or gets closed,
    ///   `CancellationError` if the task is cancelled while waiting (the value was not sent).
    @inlinable
    public func send(_ value: Element) async throws {
        if try trySend(value) { return }
        let waiter = spareForTask() ?? Waiter<Element>(forTask: true)
        await suspend(waiter) { s in
            switch s.send(value, queueing: waiter) {
            case .queued: return (true, nil)
            case .sent(let r): return (false, [waiter.complete(.completed)] + (r.map { [$0] } ?? []))
            case .closed: return (false, [waiter.complete(.closed)])
            case .full: spindleFatal("a queueing send reported full")
            }
        }
        try finishSend(waiter, value)
    }

    /// Receives the next value, suspending while the channel is empty; nil once it is
    /// closed and drained.
    /// - Throws: `CancellationError` if the task is cancelled while waiting.
    @inlinable
    public func receive() async throws -> Element? {
        switch tryReceive() {
        case .value(let v): return v
        case .closed: return nil
        case .empty: break
        }
        let waiter = spareForTask() ?? Waiter<Element>(forTask: true)
        await suspend(waiter) { s in
            switch s.receive(queueing: waiter) {
            case .queued: return (true, nil)
            case .value(let v, let w):
                waiter.payload = v
                return (false, [waiter.complete(.completed)] + (w.map { [$0] } ?? []))
            case .closed: return (false, [waiter.complete(.closed)])
            case .empty: spindleFatal("a queueing receive reported empty")
            }
        }
        return try finishReceive(waiter)
    }

    // MARK: fibers and threads

    /// Sends `value`, parking the calling fiber (or blocking the calling thread) while the
    /// channel is full.
    /// - Throws: `ChannelClosedError`; `CancellationError` if the fiber is cancelled while
    ///   waiting; ``FiberError/blockingOnWorker(_:)`` from a task (use `await`).
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    @inlinable
    public func send(_ value: Element) throws {
        if let core = Fiber.currentCoreRef {
            // SAFETY: the running fiber, alive while it runs this.
            return try core._withUnsafeGuaranteedRef { try sendInFiber(value, $0) }
        }
        // A plain thread (or a task, which is refused): one pass under the lock, send now
        // or queue a waiter made only if needed.
        var waiter: Waiter<Element>?
        var refusal: FiberError?
        let decision = state.withLock { s in
            s.send(value, queueing: {
                do throws(FiberError) { try checkMayBlock("Channel.send") } catch { refusal = error; return nil }
                waiter = Waiter<Element>(forTask: false)
                return waiter
            }())
        }
        switch decision {
        case .sent(let r):
            r?.resume()
            return
        case .closed: throw ChannelClosedError(value: value)
        case .full: throw refusal!
        case .queued: break
        }
        let w = waiter.take().unsafelyUnwrapped
        block(w)
        try Self.sendOutcome(w.outcome, value)
    }

    /// Receives the next value, parking the calling fiber (or blocking the calling thread)
    /// while the channel is empty; nil once it is closed and drained.
    /// - Throws: `CancellationError` if the fiber is cancelled while waiting;
    ///   ``FiberError/blockingOnWorker(_:)`` from a task (use `await`).
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    @inlinable
    public func receive() throws -> Element? {
        if let core = Fiber.currentCoreRef {
            // SAFETY: as in send.
            return try core._withUnsafeGuaranteedRef { try receiveInFiber($0) }
        }
        var waiter: Waiter<Element>?
        var refusal: FiberError?
        let decision = state.withLock { s in
            s.receive(queueing: {
                do throws(FiberError) { try checkMayBlock("Channel.receive") } catch { refusal = error; return nil }
                waiter = Waiter<Element>(forTask: false)
                return waiter
            }())
        }
        switch decision {
        case .value(let v, let s):
            s?.resume()
            return v
        case .closed: return nil
        case .empty: throw refusal!
        case .queued: break
        }
        let w = waiter.take().unsafelyUnwrapped
        block(w)
        // No lock: the completer wrote the outcome and the value before its `done` store,
        // which `block` saw (or this call withdrew the waiter itself, under the lock).
        return try Self.receiveOutcome(w.outcome, w.payload.take())
    }

    // MARK: the fiber paths

    /// `send` on a fiber: its own waiter (`Waiter.own(by:)`), so nothing is allocated and
    /// the waiter is not retained; the only reference counting left is the queue's and the
    /// wake-up's hold on a waiter that actually waits.
    @inlinable
    func sendInFiber(_ value: Element, _ core: FiberCore) throws {
        // SAFETY: the fiber holds its own waiter for the whole call (Waiter.own(by:)).
        let own = Waiter<Element>.own(by: core)
        return try own._withUnsafeGuaranteedRef { w in
            w.reset()
            var wake: Wake?
            let decision = state.withLock { s in s.send(value, queueing: own, wake: &wake) }
            switch decision {
            case .done:
                wake.take()?.resume()
                return
            case .closed: throw ChannelClosedError(value: value)
            case .full: spindleFatal("a queueing send reported full")
            case .queued: break
            }
            block(w)
            // No lock: as in `receive()`.
            let outcome = w.outcome
            w.payload = nil
            try Self.sendOutcome(outcome, value)
        }
    }

    /// `receive` on a fiber, as `sendInFiber`.
    @inlinable
    func receiveInFiber(_ core: FiberCore) throws -> Element? {
        // SAFETY: the fiber holds its own waiter for the whole call (Waiter.own(by:)).
        let own = Waiter<Element>.own(by: core)
        return try own._withUnsafeGuaranteedRef { w in
            w.reset()
            var wake: Wake?, value: Element?
            let decision = state.withLock { s in s.receive(queueing: own, value: &value, wake: &wake) }
            switch decision {
            case .done:
                wake.take()?.resume()
                return value.take()
            case .closed: return nil
            case .full: spindleFatal("a queueing receive reported empty")
            case .queued: break
            }
            block(w)
            return try Self.receiveOutcome(w.outcome, w.payload.take())
        }
    }

    @inlinable
    static func sendOutcome(_ outcome: WaitOutcome, _ value: Element) throws {
        switch outcome {
        case .completed: return
        case .closed: throw ChannelClosedError(value: value)
        case .cancelled: throw CancellationError()
        case .pending: spindleFatal("a send waiter resumed while pending")
        }
    }

    @inlinable
    static func receiveOutcome(_ outcome: WaitOutcome, _ value: Element?) throws -> Element? {
        switch outcome {
        case .completed: return value
        case .closed: return nil
        case .cancelled: throw CancellationError()
        case .pending: spindleFatal("a receive waiter resumed while pending")
        }
    }

    // MARK: machinery

    /// A spare waiter made new for a task's wait, or nil. Its own short lock on the waiting
    /// path only: folding it into the non-waiting attempt's lock (one closure capturing the
    /// spare) halved buffered throughput, where nothing waits (measured, same run).
    @inlinable
    func spareForTask() -> Waiter<Element>? {
        guard let w = state.withLock({ $0.spares.popLast() }) else { return nil }
        w.reuseForTask()
        return w
    }

    /// Suspends the task until `waiter` completes. `register` runs under the lock: it
    /// queues the waiter (returns true) or completes the operation at once (returns the
    /// waiters to wake, this one included).
    @inlinable
    func suspend(
        _ waiter: Waiter<Element>,
        register: (inout ChannelState<Element>) -> (queued: Bool, wakes: [Wake]?)
    ) async {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                let wakes: [Wake] = state.withLock { s in
                    // Cancelled before we got here: the handler marked it; resume now.
                    if waiter.outcome == .cancelled { return [Wake(waiter: waiter, continuation: c)] }
                    waiter.continuation = c
                    let (queued, wakes) = register(&s)
                    return queued ? [] : (wakes ?? [])
                }
                for w in wakes { w.resume() }
            }
        } onCancel: {
            let wake: Wake? = state.withLock { s in
                if s.withdraw(waiter) { return waiter.complete(.cancelled) }
                // Not registered yet: make the registration see it. Already completed:
                // keep the outcome (a delivered value is not dropped).
                if waiter.outcome == .pending && waiter.continuation == nil { waiter.outcome = .cancelled }
                return nil
            }
            wake?.resume()
        }
    }

    /// Fibers and threads: waits for `waiter`; on fiber cancellation, withdraws it (or, if
    /// it was completed meanwhile, waits for that completion and keeps its outcome).
    @inlinable
    func block(_ waiter: Waiter<Element>) {
        if waiter.blockUntilDone(reason: .channel) { return }
        let withdrawn = state.withLock { s -> Bool in
            if s.withdraw(waiter) { _ = waiter.complete(.cancelled); return true }
            return false
        }
        if withdrawn { return }
        waiter.blockIgnoringCancellation(reason: .channel)
    }

    /// After the waiter was resumed. Read under the lock: the completer wrote the outcome
    /// under it, and a continuation's resume orders memory only through the Swift
    /// runtime's own atomics, which the thread sanitizer does not see (it reported this
    /// read as a race when it was done without the lock).
    @inlinable
    func finishSend(_ waiter: Waiter<Element>, _ value: Element) throws {
        let outcome = state.withLock { s in
            let o = waiter.outcome
            waiter.recycle(into: &s.spares)
            return o
        }
        try Self.sendOutcome(outcome, value)
    }

    @inlinable
    func finishReceive(_ waiter: Waiter<Element>) throws -> Element? {
        let (outcome, value) = state.withLock { s in
            let r = (waiter.outcome, waiter.payload.take())
            waiter.recycle(into: &s.spares)
            return r
        }
        return try Self.receiveOutcome(outcome, value)
    }
}

extension Channel: AsyncSequence {
    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: Channel<Element>
        public mutating func next() async throws -> Element? { try await channel.receive() }
    }
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: self) }
}

extension Channel: Sequence {
    /// Iterating from a fiber or thread: blocks for each value; ends when the channel is
    /// closed and drained, or when the fiber is cancelled (its next blocking call then
    /// throws `CancellationError`). Inside a Swift task it cannot block, and an iterator
    /// cannot throw: it stops the process with a message instead of pretending the
    /// channel is empty (`for await` is the form for tasks; the compiler refuses this one
    /// in async code).
    public struct Iterator: IteratorProtocol {
        let channel: Channel<Element>
        public mutating func next() -> Element? {
            do {
                return try channel.receive()
            } catch is FiberError {
                spindleFatal("`for value in channel` ran inside a Swift task, where it cannot block: write `for await value in channel`, or iterate from a fiber or a plain thread")
            } catch {
                return nil // CancellationError: the fiber is being cancelled
            }
        }
    }
    @available(*, noasync, message: "a for-in loop over a channel blocks; in async code write `for await value in channel`")
    public func makeIterator() -> Iterator { Iterator(channel: self) }
}

// Select: wait on several channel operations (and a timeout) at once; exactly one
// completes. UNSAFE FILE: none of its own.
//
// How (crossbeam's and Go's shape, with one atomic claim instead of locking every
// channel at once):
//   1. fast pass: try each branch without waiting, starting at a random branch (so no
//      branch is favoured when several are ready);
//   2. otherwise queue one waiter per branch, all sharing a `Selection`. Whoever wants to
//      complete a select waiter (a sender, a receiver, close()) must first claim the
//      selection, under that channel's lock; only the first claim succeeds, so exactly one
//      branch completes and the others' waiters are dead entries, skipped by everyone;
//   3. the caller wakes (one continuation / one fiber / one parker shared by all
//      branches), withdraws the other waiters under their channels' locks, and runs the
//      winning branch's handler.
// A value offered by a losing send branch was never taken (only a successful claim takes
// it), and a losing receive branch was never given one: nothing is lost or duplicated.
// Cancellation and the timeout claim the selection too (a branch index of their own).
//
// A branch claims its select only when its operation is certain to complete under the
// channel's lock: a buffered value or free room, or a waiting counterpart that is a plain
// send/receive. Another select's waiter is not enough (claiming two selects at once would
// need both or neither, which one atomic claim cannot do without locking every channel),
// so two selects waiting on opposite ends of the same rendezvous channel do not meet each
// other; at least one side must be a plain operation, or the channel buffered.
import Synchronization

/// One operation of a select.
protocol SelectBranch<Result>: AnyObject, Sendable {
    associatedtype Result: Sendable
    /// Completes now if the operation can proceed without waiting (nothing registered yet,
    /// so no claim is involved). Returns nil if it would wait.
    func tryNow() throws -> Result?
    /// Queues a waiter sharing `selection` as branch `index`, waking through `signal`. If
    /// the operation can certainly proceed now, claims the selection and completes
    /// instead; if the claim is lost (another branch won), does nothing.
    func register(_ selection: Selection, index: Int, signal: SelectSignal) -> RegisterResult
    /// Removes this branch's waiter if still queued.
    func withdraw()
    /// The handler's result, for the branch that won.
    func finish() throws -> Result
}

enum RegisterResult { case queued, completedNow, lostClaim }

/// The one way a select is woken, whichever branch (or cancellation, or the timeout) won:
/// a task's continuation (resumed at most once), a fiber, or a parked thread.
final class SelectSignal: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the continuation sits in a Lock and is taken exactly
    // once; fiber and parker are thread-safe.
    private let continuation = Lock<UnsafeContinuation<Void, Never>?>(nil)
    let fiber: FiberCore?
    let parker: Parker?

    init(fiber: FiberCore?, parker: Parker?) {
        self.fiber = fiber
        self.parker = parker
    }

    func arm(_ c: UnsafeContinuation<Void, Never>) { continuation.withLock { $0 = c } }

    func fire() {
        if let fiber {
            fiber.wakeIfParked()
        } else if let parker {
            parker.unpark()
        } else if let c = continuation.withLock({ $0.take() }) {
            c.resume()
        }
    }
}

/// True if a queued waiter can be completed by a plain operation for sure: it is not a
/// select branch (a select's waiter may lose its claim).
private func isPlain(_ w: WaiterCore) -> Bool { w.selection == nil }

final class ReceiveBranch<Element: Sendable, Result: Sendable>: SelectBranch, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `waiter` is set once by register, on the selecting
    // thread, before anyone else can reach it through the channel's lock.
    let channel: Channel<Element>
    let handler: @Sendable (Element?) -> Result
    var waiter: Waiter<Element>?

    init(_ channel: Channel<Element>, _ handler: @escaping @Sendable (Element?) -> Result) {
        self.channel = channel
        self.handler = handler
    }

    func tryNow() throws -> Result? {
        switch channel.tryReceive() {
        case .value(let v): return handler(v)
        case .closed: return handler(nil)
        case .empty: return nil
        }
    }

    func register(_ selection: Selection, index: Int, signal: SelectSignal) -> RegisterResult {
        let w = Waiter<Element>(selection: selection, branch: index, onWake: { signal.fire() })
        waiter = w
        let (result, wake): (RegisterResult, Wake?) = channel.state.withLock { s in
            let certain = !s.buffer.isEmpty || s.senders.contains(where: isPlain)
                || (s.closed && s.senders.isEmpty)
            if certain {
                guard selection.claim(index) else { return (.lostClaim, nil) }
                switch s.receive(queueing: nil) {
                case .value(let v, let other):
                    w.payload = v
                    _ = w.complete(.completed)
                    return (.completedNow, other)
                case .closed:
                    _ = w.complete(.closed)
                    return (.completedNow, nil)
                case .empty, .queued:
                    spindleFatal("a certain select receive found nothing")
                }
            }
            w.isQueued = true
            s.receivers.append(w)
            return (.queued, nil)
        }
        wake?.resume()
        return result
    }

    func withdraw() {
        guard let w = waiter else { return }
        channel.state.withLock { s in _ = s.withdraw(w) }
    }

    func finish() throws -> Result {
        let w = waiter!
        switch w.outcome {
        case .completed: return handler(w.payload.take())
        case .closed: return handler(nil)
        case .cancelled, .pending: throw CancellationError()
        }
    }
}

final class SendBranch<Element: Sendable, Result: Sendable>: SelectBranch, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): as ReceiveBranch.
    let channel: Channel<Element>
    let value: Element
    let handler: @Sendable () -> Result
    var waiter: Waiter<Element>?

    init(_ channel: Channel<Element>, _ value: Element, _ handler: @escaping @Sendable () -> Result) {
        self.channel = channel
        self.value = value
        self.handler = handler
    }

    func tryNow() throws -> Result? {
        try channel.trySend(value) ? handler() : nil
    }

    func register(_ selection: Selection, index: Int, signal: SelectSignal) -> RegisterResult {
        let w = Waiter<Element>(selection: selection, branch: index, onWake: { signal.fire() })
        waiter = w
        let value = self.value
        let (result, wake): (RegisterResult, Wake?) = channel.state.withLock { s in
            let certain = s.closed || s.buffer.count < s.capacity || s.receivers.contains(where: isPlain)
            if certain {
                guard selection.claim(index) else { return (.lostClaim, nil) }
                switch s.send(value, queueing: nil) {
                case .sent(let r):
                    _ = w.complete(.completed)
                    return (.completedNow, r)
                case .closed:
                    _ = w.complete(.closed)
                    return (.completedNow, nil)
                case .full, .queued:
                    spindleFatal("a certain select send found no room")
                }
            }
            w.payload = value
            w.isQueued = true
            s.senders.append(w)
            return (.queued, nil)
        }
        wake?.resume()
        return result
    }

    func withdraw() {
        guard let w = waiter else { return }
        channel.state.withLock { s in _ = s.withdraw(w) }
    }

    func finish() throws -> Result {
        switch waiter!.outcome {
        case .completed: return handler()
        case .closed: throw ChannelClosedError(value: value)
        case .cancelled, .pending: throw CancellationError()
        }
    }
}

/// Waits on several channel operations, and optionally a timeout, at once: exactly one of
/// them happens, and its handler's result is returned.
///
/// ```swift
/// var s = Select<String>()
/// s.onReceive(jobs) { job in "job \(job ?? -1)" }      // nil: `jobs` is closed
/// s.onSend(42, to: results) { "sent" }
/// s.onTimeout(.milliseconds(100)) { "timed out" }
/// let what = try await s.run()                        // or `try s.run()` in a fiber
/// ```
/// When several are ready at once, one is picked at random (no branch starves).
public struct Select<Result: Sendable>: Sendable {
    var branches: [any SelectBranch<Result>] = []
    var timeout: (Duration, @Sendable () -> Result)?

    public init() {}

    /// Receive from `channel`; the handler gets nil if the channel is closed and drained.
    public mutating func onReceive<E: Sendable>(_ channel: Channel<E>, _ handler: @escaping @Sendable (E?) -> Result) {
        branches.append(ReceiveBranch(channel, handler))
    }

    /// Send `value` to `channel`. If the channel is closed, `run()` throws
    /// `ChannelClosedError`.
    public mutating func onSend<E: Sendable>(_ value: E, to channel: Channel<E>, _ handler: @escaping @Sendable () -> Result) {
        branches.append(SendBranch(channel, value, handler))
    }

    /// Give up after `duration` with the handler's result.
    public mutating func onTimeout(_ duration: Duration, _ handler: @escaping @Sendable () -> Result) {
        timeout = (duration, handler)
    }

    /// Runs the select from a task. - Throws: `CancellationError`, `ChannelClosedError`.
    public func run() async throws -> Result {
        if let r = try fastPass() { return r }
        let selection = Selection()
        let timeoutIndex = branches.count
        let signal = SelectSignal(fiber: nil, parker: nil)
        let timer: Task<Void, Never>? = timeout.map { (d, _) in
            Task {
                try? await Task.sleep(for: d)
                if selection.claim(timeoutIndex) { signal.fire() }
            }
        }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                signal.arm(c)
                // A branch that completed at once, a lost claim (someone won meanwhile) or
                // a cancellation that came first: wake ourselves (at most once).
                if registerAll(selection, signal: signal) || selection.claimedBranch != nil { signal.fire() }
            }
        } onCancel: {
            if selection.claim(Selection.cancelled) { signal.fire() }
        }
        timer?.cancel()
        return try conclude(selection, timeoutIndex: timeoutIndex)
    }

    /// Runs the select from a fiber (parks it) or a plain thread (blocks it).
    /// - Throws: `CancellationError` (fiber cancelled), `ChannelClosedError`,
    ///   ``FiberError/blockingOnWorker(_:)`` from a task.
    public func run() throws -> Result {
        if let r = try fastPass() { return r }
        try checkMayBlock("Select.run")
        let selection = Selection()
        let timeoutIndex = branches.count
        let fiber = Fiber.currentCore
        let parker = fiber == nil ? Parker() : nil
        let signal = SelectSignal(fiber: fiber, parker: parker)
        if !registerAll(selection, signal: signal) {
            let deadline = timeout.map { Sys.nowNanos() &+ $0.0.nanosecondsClamped }
            if let d = deadline, let fiber, let runtime = fiber.home?.runtime {
                runtime.schedule(Runnable(retaining: SelectAlarm { signal.fire() }), at: d)
            }
            while selection.claimedBranch == nil {
                if let d = deadline, Sys.nowNanos() >= d {
                    _ = selection.claim(timeoutIndex)
                    continue
                }
                if let fiber {
                    if fiber.isCancelled {
                        _ = selection.claim(Selection.cancelled)
                        continue
                    }
                    fiber.park(unless: { selection.claimedBranch != nil })
                } else if let d = deadline {
                    parker!.park(timeoutNanos: max(0, d - Sys.nowNanos()))
                } else {
                    parker!.park()
                }
            }
        }
        return try conclude(selection, timeoutIndex: timeoutIndex)
    }

    private func fastPass() throws -> Result? {
        if branches.isEmpty {
            guard let (d, handler) = timeout else { spindleFatal("Select.run() with no branches and no timeout") }
            try Fiber.sleep(for: d)
            return handler()
        }
        let start = Int.random(in: 0..<branches.count)
        for i in 0..<branches.count {
            if let r = try branches[(start + i) % branches.count].tryNow() { return r }
        }
        return nil
    }

    /// Queues every branch; true if one completed, or the claim was lost, on the way.
    private func registerAll(_ selection: Selection, signal: SelectSignal) -> Bool {
        for (i, b) in branches.enumerated() {
            switch b.register(selection, index: i, signal: signal) {
            case .queued: continue
            case .completedNow, .lostClaim: return true
            }
        }
        return false
    }

    private func conclude(_ selection: Selection, timeoutIndex: Int) throws -> Result {
        // Losers' waiters are dead (their claim fails); take them out of the queues now.
        // Taking each channel's lock also orders us after the winner's completion: the
        // claim and the outcome are written in one critical section under that lock.
        for b in branches { b.withdraw() }
        guard let winner = selection.claimedBranch else { spindleFatal("select woke without a winner") }
        if winner == Selection.cancelled { throw CancellationError() }
        if winner == timeoutIndex, let (_, handler) = timeout { return handler() }
        return try branches[winner].finish()
    }
}

/// A timer wake-up for a fiber parked in `Select.run()`.
final class SelectAlarm: Wakeup, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): holds only a Sendable closure.
    let wake: @Sendable () -> Void
    init(_ wake: @escaping @Sendable () -> Void) { self.wake = wake }
    override func fire() { wake() }
}

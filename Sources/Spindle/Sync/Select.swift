// Select: wait on several channel operations (and a timeout) at once; exactly one
// completes. UNSAFE FILE: none of its own.
//
// How (Go's selectgo, with crossbeam's one-claim idea):
//   1. fast pass: try each branch without waiting, starting at a random branch (so no
//      branch is favoured when several are ready);
//   2. otherwise lock every channel of the select (each once, in one global order, so two
//      selects never deadlock) and, under all those locks, either complete a branch that
//      can proceed or queue one waiter per branch, all sharing a `Selection`; then unlock.
//      Whoever wants to complete a select waiter later (a sender, a receiver, close(),
//      another select) must claim the selection, under that channel's lock; only the first
//      claim succeeds, so exactly one branch completes and the others' waiters are dead
//      entries, skipped by everyone;
//   3. the caller wakes (one continuation / one fiber / one parker shared by all
//      branches), withdraws the other waiters under their channels' locks, and runs the
//      winning branch's handler.
// Two selects on opposite ends of a rendezvous channel meet: the second one, holding all
// its locks, finds the first one's waiter. It claims itself *tentatively* (nobody else can
// claim it: its waiters are not queued yet, and claims need a channel lock it holds), then
// claims the other select; if that fails the other is already done and its waiter dead,
// so it returns to unclaimed and looks further. Cancellation and the timeout claim from
// outside any lock; they record a request first, which the select honours when it leaves
// the tentative state (Selection). A select never pairs with its own waiters.
// A value offered by a losing send branch was never taken (only a successful claim takes
// it), and a losing receive branch was never given one: nothing is lost or duplicated.
import Synchronization

/// One operation of a select.
protocol SelectBranch<Result>: AnyObject, Sendable {
    associatedtype Result: Sendable
    /// Completes now if the operation can proceed without waiting (nothing registered yet,
    /// so no claim is involved). Returns nil if it would wait.
    func tryNow() throws -> Result?
    /// The channel's lock, which `register` needs held.
    var lock: AnyObject { get }
    func lockChannel()
    func unlockChannel()
    /// With the channel locked: if the operation can proceed now, claims the selection
    /// and completes (appending the counterpart's wake-up to `wakes`); otherwise queues a
    /// waiter sharing `selection` as branch `index`, waking through `signal`.
    func register(_ selection: Selection, index: Int, signal: SelectSignal, wakes: inout [Wake]) -> RegisterResult
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

    var lock: AnyObject { channel.state }
    func lockChannel() { channel.state.lockRaw() }
    func unlockChannel() { channel.state.unlockRaw() }

    func register(_ selection: Selection, index: Int, signal: SelectSignal, wakes: inout [Wake]) -> RegisterResult {
        let w = Waiter<Element>(selection: selection, branch: index, onWake: { signal.fire() })
        waiter = w
        // The caller holds the channel's lock (lockChannel) for this whole call.
        return channel.state.withLockHeld { s in
            if !s.buffer.isEmpty || (s.closed && !s.senders.contains { $0.selection !== selection }) {
                guard selection.claim(index) else { return .lostClaim }
                switch s.receive(queueing: nil) {
                case .value(let v, let other):
                    w.payload = v
                    _ = w.complete(.completed)
                    if let other { wakes.append(other) }
                case .closed:
                    _ = w.complete(.closed)
                case .empty, .queued:
                    spindleFatal("a certain select receive found nothing")
                }
                return .completedNow
            }
            var i = s.senders.startIndex
            while i < s.senders.endIndex {
                let sender = s.senders[i]
                if sender.selection === selection { i += 1; continue } // our own send branch
                if sender.selection == nil {
                    guard selection.claim(index) else { return .lostClaim }
                } else if !selection.beginPairing() {
                    return .lostClaim
                } else if !sender.claim() {
                    s.senders.remove(at: i) // a dead waiter of a finished select
                    sender.isQueued = false
                    if selection.abandonPairing() { return .lostClaim }
                    continue
                } else {
                    selection.commitPairing(index)
                }
                s.senders.remove(at: i)
                w.payload = sender.payload.take()
                wakes.append(sender.complete(.completed))
                _ = w.complete(.completed)
                return .completedNow
            }
            w.isQueued = true
            s.receivers.append(w)
            return .queued
        }
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

    var lock: AnyObject { channel.state }
    func lockChannel() { channel.state.lockRaw() }
    func unlockChannel() { channel.state.unlockRaw() }

    func register(_ selection: Selection, index: Int, signal: SelectSignal, wakes: inout [Wake]) -> RegisterResult {
        let w = Waiter<Element>(selection: selection, branch: index, onWake: { signal.fire() })
        waiter = w
        // The caller holds the channel's lock (lockChannel) for this whole call.
        return channel.state.withLockHeld { s in
            if s.closed || (s.buffer.count < s.capacity && !s.receivers.contains { $0.selection !== selection }) {
                guard selection.claim(index) else { return .lostClaim }
                switch s.send(value, queueing: nil) {
                case .sent(let r):
                    _ = w.complete(.completed)
                    if let r { wakes.append(r) }
                case .closed:
                    _ = w.complete(.closed)
                case .full, .queued:
                    spindleFatal("a certain select send found no room")
                }
                return .completedNow
            }
            var i = s.receivers.startIndex
            while i < s.receivers.endIndex {
                let receiver = s.receivers[i]
                if receiver.selection === selection { i += 1; continue } // our own receive branch
                if receiver.selection == nil {
                    guard selection.claim(index) else { return .lostClaim }
                } else if !selection.beginPairing() {
                    return .lostClaim
                } else if !receiver.claim() {
                    s.receivers.remove(at: i) // a dead waiter of a finished select
                    receiver.isQueued = false
                    if selection.abandonPairing() { return .lostClaim }
                    continue
                } else {
                    selection.commitPairing(index)
                }
                s.receivers.remove(at: i)
                receiver.payload = value
                wakes.append(receiver.complete(.completed))
                _ = w.complete(.completed)
                return .completedNow
            }
            if s.buffer.count < s.capacity {
                // Room, and the only receivers waiting are our own: buffer the value.
                guard selection.claim(index) else { return .lostClaim }
                s.buffer.append(value)
                _ = w.complete(.completed)
                return .completedNow
            }
            w.payload = value
            w.isQueued = true
            s.senders.append(w)
            return .queued
        }
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
        if branches.isEmpty {
            // Only a timeout: a plain sleep, on this runtime's removable timers.
            guard let (d, handler) = timeout else { throw SelectError.noBranches }
            try await Spindle.sleep(for: d)
            return handler()
        }
        if let r = try fastPass() { return r }
        let selection = Selection()
        let timeoutIndex = branches.count
        let signal = SelectSignal(fiber: nil, parker: nil)
        // The timeout runs on this runtime's removable timers (Spindle.sleep), so a select
        // that ends first takes its timer out at once when the helper task is cancelled.
        let runtime = Runtime.current ?? Runtime.global
        let timer: Task<Void, Never>? = timeout.map { (d, _) in
            Task(executorPreference: runtime) {
                do { try await Spindle.sleep(for: d) } catch { return }
                if selection.request(timeoutIndex) { signal.fire() }
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
            if selection.request(Selection.cancelled) { signal.fire() }
        }
        timer?.cancel()
        return try conclude(selection, timeoutIndex: timeoutIndex)
    }

    /// Runs the select from a fiber (parks it) or a plain thread (blocks it).
    /// - Throws: `CancellationError` (fiber cancelled), `ChannelClosedError`,
    ///   ``FiberError/blockingOnWorker(_:)`` from a task.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func run() throws -> Result {
        try checkMayBlock("Select.run")
        if branches.isEmpty {
            guard let (d, handler) = timeout else { throw SelectError.noBranches }
            try Fiber.sleep(for: d)
            return handler()
        }
        if let r = try fastPass() { return r }
        let selection = Selection()
        let timeoutIndex = branches.count
        let fiber = Fiber.currentCore
        let parker = fiber == nil ? Parker() : nil
        let signal = SelectSignal(fiber: fiber, parker: parker)
        if !registerAll(selection, signal: signal) {
            let deadline = timeout.map { Sys.nowNanos() &+ $0.0.nanosecondsClamped }
            var alarm: (Runtime, TimerEntry)?
            if let d = deadline, let fiber, let runtime = fiber.home?.runtime,
               let entry = runtime.schedule(Runnable(retaining: SelectAlarm { signal.fire() }), at: d) {
                alarm = (runtime, entry)
            }
            // Whoever wins, the timer goes at once (its memory too): a loop of selects
            // with a long timeout must not pile up armed timers.
            defer {
                if let (runtime, entry) = alarm, let item = runtime.timers.cancel(entry) { _ = item.takeWakeup() }
            }
            while selection.claimedBranch == nil {
                if let d = deadline, Sys.nowNanos() >= d {
                    _ = selection.request(timeoutIndex)
                    continue
                }
                if let fiber {
                    if fiber.isCancelled {
                        _ = selection.request(Selection.cancelled)
                        continue
                    }
                    fiber.park(unless: { selection.claimedBranch != nil }, reason: .select)
                } else if let d = deadline {
                    parker!.park(timeoutNanos: max(0, d - Sys.nowNanos()))
                } else {
                    parker!.park()
                }
            }
        }
        return try conclude(selection, timeoutIndex: timeoutIndex)
    }

    /// A branch that can complete now, without waiting (`branches` is not empty).
    private func fastPass() throws -> Result? {
        let start = Int.random(in: 0..<branches.count)
        for i in 0..<branches.count {
            if let r = try branches[(start + i) % branches.count].tryNow() { return r }
        }
        return nil
    }

    /// Locks every channel (each once, in address order), then completes a branch that
    /// can proceed or queues every branch; unlocks, then wakes the counterpart. Returns
    /// true if a branch completed, or the selection was claimed, on the way.
    private func registerAll(_ selection: Selection, signal: SelectSignal) -> Bool {
        var locks: [(ObjectIdentifier, any SelectBranch<Result>)] = []
        for b in branches where !locks.contains(where: { $0.0 == ObjectIdentifier(b.lock) }) {
            locks.append((ObjectIdentifier(b.lock), b))
        }
        locks.sort { $0.0 < $1.0 }
        for (_, b) in locks { b.lockChannel() }
        var wakes: [Wake] = []
        var done = false
        let start = Int.random(in: 0..<branches.count)
        for k in 0..<branches.count {
            let i = (start + k) % branches.count
            switch branches[i].register(selection, index: i, signal: signal, wakes: &wakes) {
            case .queued: continue
            case .completedNow, .lostClaim: done = true
            }
            if done { break }
        }
        for (_, b) in locks.reversed() { b.unlockChannel() }
        for w in wakes { w.resume() }
        return done
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

/// A select that can never complete.
public enum SelectError: Error, Equatable, CustomStringConvertible {
    /// `run()` was called with no branches and no timeout: it would wait forever.
    case noBranches

    public var description: String {
        switch self {
        case .noBranches: return "Select.run() has no branches and no timeout, so it would wait forever: add a branch (onReceive/onSend) or onTimeout"
        }
    }
}

/// A timer wake-up for a fiber parked in `Select.run()`.
final class SelectAlarm: Wakeup, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): holds only a Sendable closure.
    let wake: @Sendable () -> Void
    init(_ wake: @escaping @Sendable () -> Void) { self.wake = wake }
    override func fire() { wake() }
}

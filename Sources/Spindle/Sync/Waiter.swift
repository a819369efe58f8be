// Waiter: one blocked caller of a synchronization primitive (channel, lock, semaphore…),
// whichever world it lives in: a task (continuation), a fiber (parked on its worker), or a
// plain thread (parked on a futex). UNSAFE FILE: @unchecked Sendable state guarded by the
// owning primitive's lock.
//
// The protocol every primitive follows (the Tokio / swift-async-algorithms shape):
//   1. under the primitive's lock, a pure state machine decides: complete now, or queue
//      this waiter; a waker, under the same lock, takes a waiter off the queue and fills
//      in its outcome (`complete`, which also takes the continuation out);
//   2. after unlocking, whoever decided calls `Wake.resume()`: nothing user-visible runs
//      while the lock is held.
// Cancellation goes through the same lock: a waiter still queued is removed and completes
// as cancelled; one already taken off the queue keeps its outcome (a delivered value is
// never lost: the cancelled receiver gets it).
//
// Split in two so generic primitives specialize well: `WaiterCore` (not generic) does the
// parking and waking; `Waiter<Payload>` only adds the payload slot. Primitives are
// inlinable so their generic code is specialized where the element type is known
// (measured: unspecialized, the Swift runtime's generic-metadata lookups made a channel
// round trip cost ~6.6 µs instead of well under one).
//
// Fields marked "guarded" are only touched under the owning primitive's lock (or, once the
// waiter is done, by its owner after the hand-off); they are @exclusivity(unchecked) since
// the lock already makes accesses exclusive.
import DequeModule
import Synchronization

/// How a waiter ended.
@usableFromInline
enum WaitOutcome: Equatable, Sendable {
    /// Still waiting (or not yet registered).
    case pending
    /// The operation completed (a value was delivered, a permit granted…).
    case completed
    /// The primitive was closed while waiting.
    case closed
    /// The waiter was cancelled before anything was delivered to it.
    case cancelled
}

@usableFromInline
class WaiterCore: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `outcome`, `isQueued`, `continuation` are guarded by
    // the owning primitive's lock (or, for a fiber's or thread's waiter, written by the
    // completer before its `done` store and read by the owner after seeing it); `done` is
    // atomic; `fiber`/`parker`/`selection`/`onWake` are set at init and never change, so
    // a waker may read them after its `done` store (its `Wake` keeps the waiter alive).

    /// guarded.
    @usableFromInline @exclusivity(unchecked) var outcome: WaitOutcome = .pending
    /// guarded. True while the waiter sits in one of the primitive's queues.
    @usableFromInline @exclusivity(unchecked) var isQueued = false
    /// guarded. The task's continuation, once it has suspended.
    @usableFromInline @exclusivity(unchecked) var continuation: UnsafeContinuation<Void, Never>?
    /// For `select`: the claim shared by every branch of one select call.
    @usableFromInline let selection: Selection?
    /// Which branch of the select this waiter is.
    @usableFromInline let branch: Int
    /// The fiber that waits on this waiter (nil: a task, a thread or a select). Fixed for
    /// the waiter's life: a fiber's waiter is its own, reused only by that fiber
    /// (`FiberCore.ownWaiter`).
    @usableFromInline let fiber: FiberCore?
    /// `fiber` again, for the hot paths: reached through it without a retain/release pair.
    /// SAFETY: unretained; `fiber` holds the same object for the waiter's whole life.
    @usableFromInline let fiberRef: Unmanaged<FiberCore>?
    private let parker: Parker?
    /// Select waiters wake their select through this instead (one signal for all branches).
    private let onWake: (@Sendable () -> Void)?
    /// Set (after `outcome`) by whoever completes the waiter; read by a parked fiber or
    /// thread to know it may go on.
    @usableFromInline let done = Atomic<Bool>(false)

    /// A waiter for the calling context: a task (the continuation is attached when it
    /// suspends), or else the current fiber, or else this thread (parked on a futex).
    @usableFromInline
    init(forTask: Bool, selection: Selection?, branch: Int) {
        self.selection = selection
        self.branch = branch
        onWake = nil
        if forTask {
            fiber = nil
            parker = nil
        } else if let f = Fiber.currentCore {
            fiber = f
            parker = nil
        } else {
            fiber = nil
            parker = Parker()
        }
        fiberRef = fiber.map { Unmanaged.passUnretained($0) }
    }

    /// The waiter of `fiber`, which keeps it (`FiberCore.ownWaiter`) between its blocking calls.
    @usableFromInline
    init(fiber: FiberCore) {
        self.selection = nil
        self.branch = 0
        self.fiber = fiber
        fiberRef = Unmanaged.passUnretained(fiber)
        parker = nil
        onWake = nil
    }

    /// A select branch's waiter: completing it calls `onWake` (the select's one signal).
    init(selection: Selection, branch: Int, onWake: @escaping @Sendable () -> Void) {
        self.selection = selection
        self.branch = branch
        self.fiber = nil
        self.fiberRef = nil
        self.parker = nil
        self.onWake = onWake
    }

    @usableFromInline
    final var isDone: Bool { done.load(ordering: .sequentiallyConsistent) }

    /// A task's plain waiter (not a fiber's, a thread's or a select branch's): its
    /// primitive may keep it once finished and hand it to the next task that has to wait
    /// (`reuseForTask()`), which saves an allocation, a free and the generic deinit per
    /// blocking call. (A fiber keeps its own: `Waiter.own(by:)`.)
    @usableFromInline
    final var isReusable: Bool { fiber == nil && parker == nil && selection == nil && onWake == nil }

    /// A spare (taken out of its primitive's spares under the lock, so no one else holds
    /// it) made new for a task's wait. The task's cancellation handler of its previous use
    /// cannot run any more: Swift removes a handler when `withTaskCancellationHandler`
    /// returns, waiting for one that is running, and the waiter was recycled after that.
    @usableFromInline
    final func reuseForTask() { reset() }

    /// A finished waiter made pending again, by the one owner that holds it (a primitive's
    /// spares under its lock, or its fiber). A waker's last touch of its own fields is the
    /// `done` store in `resume` (after it, it reads only the fixed ones), and the previous
    /// owner saw that store before it finished; a wake it sends afterwards goes to this
    /// waiter's fixed fiber, which tolerates a spurious wake (every park loops on its own
    /// condition).
    @inlinable
    final func reset() {
        outcome = .pending
        isQueued = false
        continuation = nil
        done.store(false, ordering: .relaxed)
    }

    /// Under the lock: may this waiter be completed now? For a select branch, claims the
    /// whole select (so exactly one branch completes).
    @inlinable
    final func claim() -> Bool {
        guard let selection else { return true }
        return selection.claim(branch)
    }

    /// Under the lock: completes the waiter. Pass the result to `resume()` after unlocking.
    @inlinable
    final func complete(_ outcome: WaitOutcome) -> Wake {
        self.outcome = outcome
        isQueued = false
        return Wake(waiter: self, continuation: continuation.take())
    }

    /// After unlocking: wakes whoever waits on this waiter (exactly once per waiter).
    @usableFromInline
    final func resume(continuation c: UnsafeContinuation<Void, Never>?) {
        // Once `done` is set the owner may go on and reuse this waiter (reset), but the
        // fields read below never change, and our caller's `Wake` keeps the waiter (so
        // them) alive: no copies, no retains.
        if let fiberRef {
            // SAFETY: `fiber` holds it, and our caller's Wake holds this waiter.
            fiberRef._withUnsafeGuaranteedRef { $0.setDoneAndWake(done) }
            return
        }
        done.store(true, ordering: .sequentiallyConsistent)
        if let c {
            c.resume()
        } else if let onWake {
            onWake()
        } else if let parker {
            parker.unpark()
        }
    }

    /// After a cancelled fiber found its waiter already completed: waits for the resume
    /// that is on its way, whatever the cancellation.
    @usableFromInline
    final func blockIgnoringCancellation(reason: TraceEvent.ParkReason = .wait) {
        if let fiber {
            while !isDone { fiber.park(unless: { isDone }, cancellable: false, reason: reason) }
        } else {
            while !isDone { parker!.park() }
        }
    }

    /// For fibers and threads: blocks until `isDone`, or until the fiber is cancelled
    /// (then returns false; the caller withdraws the waiter under its lock).
    @usableFromInline
    final func blockUntilDone(reason: TraceEvent.ParkReason = .wait) -> Bool {
        if let fiberRef {
            // SAFETY: `fiber` holds it for this waiter's life.
            return fiberRef._withUnsafeGuaranteedRef { fiber in
                while !isDone {
                    if fiber.isCancelled { return false }
                    fiber.park(unless: { isDone }, reason: reason)
                }
                return true
            }
        }
        while !isDone { parker!.park() }
        return true
    }
}

/// A waiter with a slot for the value it sends or receives.
@usableFromInline
final class Waiter<Payload>: WaiterCore, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `payload` is guarded by the owning primitive's lock.
    /// guarded. A sender's offered value, or the value delivered to a receiver.
    @usableFromInline @exclusivity(unchecked) var payload: Payload?

    @inlinable
    init(payload: Payload? = nil, forTask: Bool, selection: Selection? = nil, branch: Int = 0) {
        self.payload = payload
        super.init(forTask: forTask, selection: selection, branch: branch)
    }

    /// On a fiber: the fiber's own waiter for this payload type, unretained. The fiber
    /// holds it (`FiberCore.ownWaiter`) until its body ends or a blocking call with another
    /// payload type replaces it; neither can happen during the blocking call that uses it
    /// (the fiber runs nothing else meanwhile). A previous call left it done and in no
    /// queue; `reset()` it before queueing it again.
    @inlinable
    static func own(by core: FiberCore) -> Unmanaged<Waiter<Payload>> {
        // SAFETY: the fiber's +1 keeps `u` alive (see FiberCore.ownWaiter).
        if let u = core.ownWaiter,
           u._withUnsafeGuaranteedRef({ ObjectIdentifier(type(of: $0)) == ObjectIdentifier(Waiter<Payload>.self) }) {
            // SAFETY: its dynamic type was just checked to be exactly this class.
            return Unmanaged<Waiter<Payload>>.fromOpaque(u.toOpaque())
        }
        let fresh = Waiter<Payload>(fiber: core)
        // SAFETY: the old one's +1 is the fiber's, given up here (a late waker holds its own).
        core.ownWaiter?.release()
        core.ownWaiter = Unmanaged.passRetained(fresh)
        return Unmanaged.passUnretained(fresh)
    }

    /// Under the owning primitive's lock: keeps a finished reusable waiter in `spares`
    /// (at most `limit`), emptied of its payload.
    @inlinable
    func recycle(into spares: inout [Waiter<Payload>], limit: Int = 4) {
        guard isReusable, spares.count < limit else { return }
        payload = nil
        spares.append(self)
    }

    @inlinable
    override init(fiber: FiberCore) {
        self.payload = nil
        super.init(fiber: fiber)
    }

    override init(selection: Selection, branch: Int, onWake: @escaping @Sendable () -> Void) {
        super.init(selection: selection, branch: branch, onWake: onWake)
    }
}

/// A completed waiter to wake once the lock is released.
@usableFromInline
struct Wake {
    @usableFromInline let waiter: WaiterCore
    @usableFromInline let continuation: UnsafeContinuation<Void, Never>?
    @inlinable init(waiter: WaiterCore, continuation: UnsafeContinuation<Void, Never>?) {
        self.waiter = waiter
        self.continuation = continuation
    }
    /// Under the lock: completes `waiter` (as `WaiterCore.complete`), taking over the
    /// reference the caller gives up (a waiter just taken off a queue): no retain.
    @inlinable init(completing waiter: __owned WaiterCore, _ outcome: WaitOutcome) {
        waiter.outcome = outcome
        waiter.isQueued = false
        continuation = waiter.continuation.take()
        self.waiter = waiter
    }
    @inlinable func resume() { waiter.resume(continuation: continuation) }
}

/// The blocked waiters of one queue of a primitive (a channel's receivers, a socket's
/// readers, a semaphore's waiters…), first come first served. Guarded by the primitive's
/// lock.
///
/// Each queued waiter holds one reference, taken by `append`, handed to the caller by
/// `popFirst` and `remove(at:)` (usually on to the `Wake` that completes the waiter), and
/// released by `removeFirst(identicalTo:)` and `dropAll`. The queue is a plain copyable
/// struct: never copy one that holds waiters (both copies would release them). The
/// entries are unmanaged words, so moving them costs no retain/release (a `Deque<Waiter>`
/// paid three ARC calls to queue a waiter and three more to take it off: measured, the
/// largest single cost of a fiber's channel round trip). The first waiter sits inline, in
/// the primitive's own memory: with the usual one waiter there is no second heap block
/// to allocate, and none to miss in the cache when an event arrives (at a thousand
/// sockets, the deque's buffer was one more cache miss per readiness event).
@usableFromInline
struct WaiterQueue<Payload> {
    // SAFETY: every entry (`head` and those in `rest`) is +1 (passRetained/retain when
    // queued) and released exactly once: by `popFirst`/`remove(at:)` handing it to a
    // strong reference, or by `dropAll`. Invariant: `head == nil` implies `rest` is empty.
    @usableFromInline var head: Unmanaged<Waiter<Payload>>?
    @usableFromInline var rest = Deque<Unmanaged<Waiter<Payload>>>()

    @inlinable init() {}

    @inlinable var isEmpty: Bool { head == nil }
    @inlinable var count: Int { head == nil ? 0 : 1 + rest.count }
    @inlinable var startIndex: Int { 0 }
    @inlinable var endIndex: Int { count }

    /// The waiter at `i` (0 is the oldest), still queued.
    @inlinable subscript(i: Int) -> Waiter<Payload> {
        i == 0 ? head.unsafelyUnwrapped.takeUnretainedValue() : rest[i - 1].takeUnretainedValue()
    }

    @inlinable @inline(__always)
    mutating func append(_ w: Waiter<Payload>) { append(retaining: Unmanaged.passUnretained(w)) }

    /// Queues a waiter the caller keeps alive, taking the queue's reference to it.
    @inlinable @inline(__always)
    mutating func append(retaining u: Unmanaged<Waiter<Payload>>) {
        if head == nil { head = u.retain() } else { rest.append(u.retain()) }
    }

    /// Takes the first waiter off, with the queue's reference.
    @inlinable @inline(__always)
    mutating func popFirst() -> Waiter<Payload>? { popFirstUnmanaged()?.takeRetainedValue() }

    /// Takes the first waiter off; the queue's reference passes to the caller, who must
    /// release it or hand it on (`takeRetainedValue`).
    @inlinable @inline(__always)
    mutating func popFirstUnmanaged() -> Unmanaged<Waiter<Payload>>? {
        guard let h = head else { return nil }
        head = rest.isEmpty ? nil : rest.removeFirst()
        return h
    }

    /// Takes the waiter at `i` off, with the queue's reference.
    @inlinable @discardableResult
    mutating func remove(at i: Int) -> Waiter<Payload> {
        if i == 0 { return popFirst().unsafelyUnwrapped }
        return rest.remove(at: i - 1).takeRetainedValue()
    }

    /// Takes `w` off if it is queued here; true if it was.
    @inlinable
    mutating func removeFirst(identicalTo w: Waiter<Payload>) -> Bool {
        let target = Unmanaged.passUnretained(w).toOpaque()
        guard let h = head else { return false }
        if h.toOpaque() == target {
            remove(at: 0)
            return true
        }
        guard let i = rest.firstIndex(where: { $0.toOpaque() == target }) else { return false }
        rest.remove(at: i).release()
        return true
    }

    @inlinable
    func contains(where predicate: (Waiter<Payload>) -> Bool) -> Bool {
        // SAFETY: queued entries are alive (the queue's reference).
        guard let h = head else { return false }
        if h._withUnsafeGuaranteedRef(predicate) { return true }
        return rest.contains { $0._withUnsafeGuaranteedRef(predicate) }
    }

    /// Releases every entry (the primitive is going away).
    @inlinable
    mutating func dropAll() {
        while let u = popFirstUnmanaged() { u.release() }
    }
}

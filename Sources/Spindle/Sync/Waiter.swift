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
    // the owning primitive's lock; `done` is atomic; `parker`/`selection`/`onWake` are set
    // at init; `fiber` is set at init or by `reuseForCurrentFiber()`/`reuseForTask()`, on a
    // finished waiter that only its new owner holds (no queue, and no waker reads it after
    // its `done` store: see `resume`).

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
    /// Guarded as `outcome`; see `reuseForCurrentFiber()`.
    @usableFromInline @exclusivity(unchecked) var fiber: FiberCore?
    private let parker: Parker?
    /// Select waiters wake their select through this instead (one signal for all branches).
    private let onWake: (@Sendable () -> Void)?
    /// Set (after `outcome`) by whoever completes the waiter; read by a parked fiber or
    /// thread to know it may go on.
    private let done = Atomic<Bool>(false)

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
    }

    /// A select branch's waiter: completing it calls `onWake` (the select's one signal).
    init(selection: Selection, branch: Int, onWake: @escaping @Sendable () -> Void) {
        self.selection = selection
        self.branch = branch
        self.fiber = nil
        self.parker = nil
        self.onWake = onWake
    }

    @usableFromInline
    var isDone: Bool { done.load(ordering: .sequentiallyConsistent) }

    /// A plain fiber or task waiter (not a select branch, not a thread's): its primitive
    /// may keep it once finished and hand it to the next blocking call of any fiber
    /// (`reuseForCurrentFiber()`) or task (`reuseForTask()`), which saves an allocation, a
    /// free and the generic deinit per blocking call.
    @usableFromInline
    var isReusable: Bool { parker == nil && selection == nil && onWake == nil }

    /// A spare (taken out of its primitive's spares under the lock, so no one else holds
    /// it) made new for a task's wait. The task's cancellation handler of its previous use
    /// cannot run any more: Swift removes a handler when `withTaskCancellationHandler`
    /// returns, waiting for one that is running, and the waiter was recycled after that.
    @usableFromInline
    func reuseForTask() { reset(for: nil) }

    /// Under the owning primitive's lock, by the code about to block: when it runs in a
    /// fiber, makes a finished waiter (`isReusable`, its previous owner past its finish)
    /// new again for that fiber and returns true; elsewhere returns false and changes
    /// nothing.
    /// Safe because a waker's last touch of a waiter is the `done` store in `resume`
    /// (it reads what it needs first), and the previous owner saw that store before it
    /// finished; a wake it sends afterwards goes to the fiber it read, which tolerates a
    /// spurious wake (every park loops on its own condition).
    @usableFromInline
    func reuseForCurrentFiber() -> Bool {
        guard let fiber = Fiber.currentCore else { return false }
        reset(for: fiber)
        return true
    }

    /// A finished waiter made pending again, for `fiber` (nil: a task).
    private func reset(for fiber: FiberCore?) {
        outcome = .pending
        isQueued = false
        continuation = nil
        self.fiber = fiber
        done.store(false, ordering: .relaxed)
    }

    /// Under the lock: may this waiter be completed now? For a select branch, claims the
    /// whole select (so exactly one branch completes).
    @inlinable
    func claim() -> Bool {
        guard let selection else { return true }
        return selection.claim(branch)
    }

    /// Under the lock: completes the waiter. Pass the result to `resume()` after unlocking.
    @inlinable
    func complete(_ outcome: WaitOutcome) -> Wake {
        self.outcome = outcome
        isQueued = false
        return Wake(waiter: self, continuation: continuation.take())
    }

    /// After unlocking: wakes whoever waits on this waiter (exactly once per waiter).
    @usableFromInline
    func resume(continuation c: UnsafeContinuation<Void, Never>?) {
        // Read everything first: once `done` is set, the owner may finish and its
        // primitive may hand this waiter to another fiber (`reuseForCurrentFiber()`).
        let onWake = self.onWake, fiber = self.fiber, parker = self.parker
        done.store(true, ordering: .sequentiallyConsistent)
        if let onWake {
            onWake()
        } else if let c {
            c.resume()
        } else if let fiber {
            fiber.wakeIfParked()
        } else if let parker {
            parker.unpark()
        }
    }

    /// After a cancelled fiber found its waiter already completed: waits for the resume
    /// that is on its way, whatever the cancellation.
    @usableFromInline
    func blockIgnoringCancellation(reason: TraceEvent.ParkReason = .wait) {
        if let fiber {
            while !isDone { fiber.park(unless: { isDone }, cancellable: false, reason: reason) }
        } else {
            while !isDone { parker!.park() }
        }
    }

    /// For fibers and threads: blocks until `isDone`, or until the fiber is cancelled
    /// (then returns false; the caller withdraws the waiter under its lock).
    @usableFromInline
    func blockUntilDone(reason: TraceEvent.ParkReason = .wait) -> Bool {
        if let fiber {
            while !isDone {
                if fiber.isCancelled { return false }
                fiber.park(unless: { isDone }, reason: reason)
            }
            return true
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

    /// Under the owning primitive's lock: keeps a finished reusable waiter in `spares`
    /// (at most `limit`), emptied of its payload.
    @inlinable
    func recycle(into spares: inout [Waiter<Payload>], limit: Int = 4) {
        guard isReusable, spares.count < limit else { return }
        payload = nil
        spares.append(self)
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
    @inlinable func resume() { waiter.resume(continuation: continuation) }
}

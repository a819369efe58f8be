// FiberCore: one stackful coroutine's shared state, and the protocol by which it parks and
// is woken. UNSAFE FILE: unowned(unsafe) links, Unmanaged self-retain, raw context pointer.
//
// ## Life of a fiber
//   spawned → queued (a word of kind `fiber` in the ordinary, stealable run queues)
//   → started by whichever worker takes it: that worker becomes its *home* for good (a
//     stack from its pool, the context at the stack's top, registered in its live list)
//   → runs ⇄ suspended (yield, or parked waiting for something)
//   → body returns → finished: stack back to the pool, joiners woken, self-retain dropped.
// Before it starts, a fiber may run anywhere (stealing balances spawn bursts). After, it
// is only ever resumed by its home worker's loop (PLATFORM.md: thread-local addresses may
// be cached across a switch; and a fiber must never run inside a stranger's Swift job).
//
// ## Parking and waking (exactly one resume per park)
// A fiber that must wait sets `waiting`, re-checks its condition, and suspends. A waker
// first makes the condition true, then takes `waiting` (exchange to false): only the one
// that took it schedules the resume, so at most one resume is ever queued per park, and a
// fiber never gets resumed while running. Both sides use sequentially consistent
// operations (a store then a load on each side: Dekker's pattern), so either the fiber
// sees the condition or the waker sees `waiting`. A fiber that finds its condition already
// true after arming takes `waiting` back itself; if someone beat it to it, a resume is
// already queued and the fiber must suspend to consume it.
// Wakers do not name the park they mean: a late waker (the timer of a sleep that was
// cancelled) may wake a later park. Every blocking call therefore loops on its own
// condition and treats a wake-up as a hint.
//
// ## Who touches what
//   - home thread only: `context`, `stack`, the live-list links, `bodyDone`;
//   - written once before anyone else can see it: `home` (set at start on the home thread;
//     wakers read it only after taking `waiting`, which the fiber set after starting);
//   - any thread, atomically: `waiting`, `cancelled`, `joiners`.
//   - the result (in FiberTask) is written by the fiber before `joiners` is closed and
//     read only after seeing it closed (release/acquire through the exchange).
import CSpindle
import Synchronization

@usableFromInline
class FiberCore: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): see "Who touches what" above. The home-thread fields
    // are @exclusivity(unchecked): one thread touches them, in strict alternation between
    // the fiber and its worker, which the dynamic checker cannot follow across stacks.

    /// The worker that started the fiber; nil until then. Unmanaged so the hot paths
    /// (yield, park) reach it without a retain/release pair.
    /// SAFETY: unretained: a runtime keeps its workers for its whole life, and a started
    /// fiber keeps its runtime alive (`runtimeRef`).
    @exclusivity(unchecked) var homeWorker: Unmanaged<Worker>?
    var home: Worker? { homeWorker?.takeUnretainedValue() }
    /// Holds the runtime while the fiber lives (a worker refers to it unowned).
    @exclusivity(unchecked) var runtimeRef: Runtime?
    /// The fiber's context, at the top of its stack; nil unless started and not finished.
    @exclusivity(unchecked) var context: UnsafeMutablePointer<spindle_fiber_context>?
    @exclusivity(unchecked) var stack: FiberStack?
    /// Requested usable stack size in bytes (nil: the runtime's default).
    let stackSize: Int?
    @usableFromInline let name: String?
    /// Set by the body's last act; read by the home worker after the resume returns.
    @exclusivity(unchecked) var bodyDone = false
    /// Why and since about when it last suspended (its worker's `recentNanos`: a clock
    /// read per park would cost a fifth of a fiber switch): for dumps, which read them on
    /// the home thread while the fiber is suspended.
    @exclusivity(unchecked) var parkReason: TraceEvent.ParkReason = .wait
    @exclusivity(unchecked) var parkedAt: Int64 = 0

    // The home worker's list of live fibers (for cancelling them all at shutdown, and
    // dumps). Home thread only.
    // SAFETY: unretained: a listed fiber is alive (it is unlisted before it ends).
    @exclusivity(unchecked) var previousLive: Unmanaged<FiberCore>?
    @exclusivity(unchecked) var nextLive: Unmanaged<FiberCore>?

    /// The fiber's own waiter for channel calls (a fiber blocks on one thing at a time),
    /// held +1 here: such a call then allocates nothing and retains nothing
    /// (`Waiter.own(by:)`). Touched only by the fiber itself; released when its body ends
    /// (the waiter refers to the fiber).
    /// SAFETY: a manually counted reference: one +1, given up by `releaseOwnWaiter()` or
    /// when `Waiter.own(by:)` replaces it with a waiter of another payload type.
    @usableFromInline @exclusivity(unchecked) final var ownWaiter: Unmanaged<WaiterCore>?

    /// The fiber's own node for joining other fibers (FiberHandle.join), reused while no
    /// list holds it. Touched only by the fiber itself; dropped when its body ends.
    @exclusivity(unchecked) final var ownJoinWaiter: JoinWaiter?

    /// On the fiber, its body done: gives up its own waiters.
    final func releaseOwnWaiter() {
        ownWaiter?.release()
        ownWaiter = nil
        ownJoinWaiter = nil
    }

    let waiting = Atomic<Bool>(false)
    let cancelled = Atomic<Bool>(false)
    /// Join waiters: 0 none, `JoinList.closed` once finished, otherwise a retained
    /// JoinWaiter (the head of a push-only list).
    let joiners = Atomic<UInt>(0)

    // The typed part of a fiber, kept in untyped storage (FiberTask's note says why):
    // `payload` holds the body before the fiber runs, then its value or error.
    /// 0 empty, 1 body, 2 value, 3 error. Written by the fiber (or by `abandon`) before
    /// `joiners` is closed; read by joiners after seeing it closed.
    @usableFromInline @exclusivity(unchecked) var payloadState: UInt8 = 0
    /// Four words, 8-aligned: the body closure, or a value of up to 32 bytes, or a pointer
    /// to a boxed larger value, or an `any Error`.
    @usableFromInline @exclusivity(unchecked) var payload: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Runs the body on the fiber's stack and stores its result.
    @usableFromInline let run: (FiberCore) -> Void
    /// Ends a fiber that never started, with an error as its result.
    @usableFromInline let abandon: (FiberCore, any Error) -> Void
    /// Destroys whatever the payload holds (deinit).
    @usableFromInline let destroyPayload: (FiberCore) -> Void

    @usableFromInline
    init(name: String?, stackSize: Int?,
         run: @escaping (FiberCore) -> Void,
         abandon: @escaping (FiberCore, any Error) -> Void,
         destroyPayload: @escaping (FiberCore) -> Void) {
        self.name = name
        self.stackSize = stackSize
        self.run = run
        self.abandon = abandon
        self.destroyPayload = destroyPayload
    }

    deinit { destroyPayload(self) }

    /// On the fiber's stack: the body, then the result.
    func runBody() {
        run(self)
        releaseOwnWaiter()
        bodyDone = true
    }

    /// A fiber that will never run: its result is `error`.
    func finishWithoutRunning(_ error: any Error) {
        abandon(self, error)
        bodyDone = true
    }

    /// The payload's address. The storage of a class instance's stored property does not
    /// move; the pointer is used only while the fiber's object is alive.
    @inlinable @inline(__always)
    func withPayload<R>(_ body: (UnsafeMutableRawPointer) -> R) -> R {
        withUnsafeMutableBytes(of: &payload) { body($0.baseAddress.unsafelyUnwrapped) }
    }

    @usableFromInline
    var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }
    @usableFromInline
    var isFinished: Bool { joiners.load(ordering: .acquiring) == JoinList.closed }

    // MARK: waking

    /// Any thread: if the fiber is parked, schedule its resume (on its home worker).
    /// Call it after making the fiber's wake condition true.
    func wakeIfParked() {
        if waiting.exchange(false, ordering: .sequentiallyConsistent) {
            scheduleResume()
        }
    }

    /// Any thread, completing a waiter of this fiber: sets `done` (its wake condition, the
    /// completer's last write to the waiter) and wakes the fiber if it is parked.
    ///
    /// On the fiber's home thread the fiber is not running (the thread runs one thing at a
    /// time) and reads `done` only once it runs here again, after this store in program
    /// order: a relaxed store is enough there, and saves a locked instruction per wake-up.
    /// From any other thread the store stays sequentially consistent: it pairs with the
    /// park's `waiting` store (each side writes its flag, then reads the other's).
    @usableFromInline @inline(__always)
    func setDoneAndWake(_ done: borrowing Atomic<Bool>) {
        guard let home = homeWorker else { spindleFatal("a fiber was woken before it started") }
        let onHome = Worker.withCurrent { current -> Bool in
            // SAFETY: the addresses only compare identities; nothing is retained or released.
            guard Unmanaged.passUnretained(current).toOpaque() == home.toOpaque() else { return false }
            done.store(true, ordering: .relaxed)
            if waiting.exchange(false, ordering: .sequentiallyConsistent) {
                if _slowPath(Trace.isOn) { Trace.enqueued(Runnable(fiber: self), .fiberReady) }
                current.readyFibers.append(Runnable(fiber: self))
            }
            return true
        }
        if onHome == true { return }
        done.store(true, ordering: .sequentiallyConsistent)
        if waiting.exchange(false, ordering: .sequentiallyConsistent) {
            if _slowPath(Trace.isOn) { Trace.enqueued(Runnable(fiber: self), .fiberRemote) }
            // SAFETY: unretained, see `homeWorker`.
            home._withUnsafeGuaranteedRef { $0.pushRemoteFiber(Runnable(fiber: self)) }
        }
    }

    /// Requests cancellation: the fiber's current and future blocking calls throw
    /// CancellationError. Any thread, any number of times.
    @usableFromInline
    func cancel() {
        if cancelled.exchange(true, ordering: .sequentiallyConsistent) { return }
        wakeIfParked()
    }

    /// Queues the resume on the home worker: its own ready list when called on the home
    /// thread, its remote list (and a nudge) from anywhere else.
    private func scheduleResume() {
        guard let home = homeWorker else { spindleFatal("a fiber was woken before it started") }
        let onHome = Worker.withCurrent { current -> Bool in
            // SAFETY: the addresses only compare identities; nothing is retained or released.
            guard Unmanaged.passUnretained(current).toOpaque() == home.toOpaque() else { return false }
            if _slowPath(Trace.isOn) { Trace.enqueued(Runnable(fiber: self), .fiberReady) }
            current.readyFibers.append(Runnable(fiber: self))
            return true
        }
        if onHome != true {
            if _slowPath(Trace.isOn) { Trace.enqueued(Runnable(fiber: self), .fiberRemote) }
            // SAFETY: unretained, see `homeWorker`.
            home._withUnsafeGuaranteedRef { $0.pushRemoteFiber(Runnable(fiber: self)) }
        }
    }

    // MARK: parking (on the fiber itself)

    /// On the fiber: suspends until woken, unless `ready()` is already true after arming
    /// (or, when `cancellable`, the fiber is cancelled). Returns after at most one
    /// suspension; callers loop on their own condition.
    @inline(__always)
    func park(unless ready: () -> Bool, cancellable: Bool = true, reason: TraceEvent.ParkReason = .wait) {
        waiting.store(true, ordering: .sequentiallyConsistent)
        if ready() || (cancellable && isCancelled) {
            if waiting.exchange(false, ordering: .sequentiallyConsistent) { return }
            // A waker took `waiting` first: its resume is queued; consume it.
        }
        noteSuspension(reason)
        suspend()
    }

    /// On the fiber, about to suspend: what dumps and the trace say about this park.
    @inline(__always)
    func noteSuspension(_ reason: TraceEvent.ParkReason) {
        parkReason = reason
        // SAFETY: on the fiber, so it has started: homeWorker is set.
        parkedAt = homeWorker.unsafelyUnwrapped._withUnsafeGuaranteedRef { $0.recentNanos }
    }

    /// Recording: this fiber suspends, and `next` (nil: back to the worker's loop) runs.
    /// A direct hand-off is one event, not a park and a resume.
    @inline(never)
    func traceSuspension(to next: UnsafeMutablePointer<spindle_fiber_context>?) {
        let me = Trace.id(self)
        let reason = UInt64(parkReason.rawValue)
        if let next {
            let other = UInt64(UInt(bitPattern: next.pointee.owner))
            Trace.emit(.fiberSwitch, me, reason, actor: other)
            spindle_trace_set_current(other)
        } else {
            Trace.emit(.fiberPark, me, reason)
        }
    }

    /// On the fiber: gives up the thread until resumed. When another of the worker's
    /// fibers is ready and no job is waiting, switches straight to it (one stack switch);
    /// otherwise hands control back to the worker's loop.
    @inline(__always)
    func suspend() {
        // SAFETY: homeWorker and context are set while the fiber runs (we are on its stack).
        let me = context.unsafelyUnwrapped
        homeWorker.unsafelyUnwrapped._withUnsafeGuaranteedRef { w in
            let next = w.directSuccessor()
            if _slowPath(Trace.isOn) { traceSuspension(to: next) }
            if let next {
                // Our own resume, queued by a waker that beat the park: it is consumed.
                if next == me { return }
                spindle_fiber_switch(me, next)
            } else {
                spindle_fiber_suspend(me)
            }
        }
    }

    /// On the fiber: goes to the back of the home worker's ready list and lets the others
    /// run first.
    @inline(__always)
    func yieldNow() {
        // SAFETY: as in suspend().
        let me = context.unsafelyUnwrapped
        let word = Runnable(fiber: self)
        noteSuspension(.yield)
        homeWorker.unsafelyUnwrapped._withUnsafeGuaranteedRef { w in
            // Pick the successor before queueing ourselves, so we never pick ourselves.
            let next = w.directSuccessor()
            if _slowPath(Trace.isOn) { traceSuspension(to: next) }
            w.readyFibers.append(word)
            if let next {
                spindle_fiber_switch(me, next)
            } else {
                spindle_fiber_suspend(me)
            }
        }
    }

    // MARK: finishing and joining

    /// On the home worker, after the body ended: wakes every joiner. Returns how many.
    @discardableResult
    func closeJoiners() -> Int {
        var raw = joiners.exchange(JoinList.closed, ordering: .acquiringAndReleasing)
        var n = 0
        while raw != 0 && raw != JoinList.closed {
            // SAFETY: every non-sentinel word in the list is a JoinWaiter retained by
            // `addJoiner`; we own the list now that it is closed, and release each once.
            let w = Unmanaged<JoinWaiter>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!).takeRetainedValue()
            raw = w.next
            w.fire()
            n += 1
        }
        return n
    }

    /// Any thread: registers `waiter` to be fired when the fiber finishes. Returns false
    /// (and does not keep `waiter`) if it already has.
    func addJoiner(_ waiter: JoinWaiter) -> Bool {
        // SAFETY: the +1 is owned by the list and released by closeJoiners (or right here
        // if the list turns out to be closed).
        let raw = UInt(bitPattern: Unmanaged.passRetained(waiter).toOpaque())
        var head = joiners.load(ordering: .acquiring)
        while true {
            if head == JoinList.closed {
                Unmanaged.passUnretained(waiter).release()
                return false
            }
            waiter.next = head
            let (done, seen) = joiners.compareExchange(expected: head, desired: raw, ordering: .acquiringAndReleasing)
            if done { return true }
            head = seen
        }
    }
}

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

class FiberCore: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): see "Who touches what" above.

    /// The worker that started the fiber; nil until then.
    /// SAFETY: unowned(unsafe): a runtime keeps its workers for its whole life, and a
    /// started fiber keeps its runtime alive (`runtimeRef`).
    unowned(unsafe) var home: Worker?
    /// Holds the runtime while the fiber lives (a worker refers to it unowned).
    var runtimeRef: Runtime?
    /// The fiber's context, at the top of its stack; nil unless started and not finished.
    var context: UnsafeMutablePointer<spindle_fiber_context>?
    var stack: FiberStack?
    /// Requested usable stack size in bytes (nil: the runtime's default).
    let stackSize: Int?
    let name: String?
    /// Set by the body's last act; read by the home worker after the resume returns.
    var bodyDone = false

    // The home worker's list of live fibers (for cancelling them all at shutdown).
    // SAFETY: unowned(unsafe): a listed fiber is alive (it is unlisted before it ends).
    unowned(unsafe) var previousLive: FiberCore?
    unowned(unsafe) var nextLive: FiberCore?

    let waiting = Atomic<Bool>(false)
    let cancelled = Atomic<Bool>(false)
    /// Join waiters: 0 none, `JoinList.closed` once finished, otherwise a retained
    /// JoinWaiter (the head of a push-only list).
    let joiners = Atomic<UInt>(0)

    init(name: String?, stackSize: Int?) {
        self.name = name
        self.stackSize = stackSize
    }

    /// Overridden by FiberTask: runs the body on the fiber's stack and stores its result.
    func runBody() { spindleFatal("FiberCore.runBody is abstract") }
    /// Overridden by FiberTask: ends a fiber that never started, with `error`.
    func finishWithoutRunning(_ error: any Error) { spindleFatal("FiberCore.finishWithoutRunning is abstract") }

    var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }
    var isFinished: Bool { joiners.load(ordering: .acquiring) == JoinList.closed }

    // MARK: waking

    /// Any thread: if the fiber is parked, schedule its resume (on its home worker).
    /// Call it after making the fiber's wake condition true.
    func wakeIfParked() {
        if waiting.exchange(false, ordering: .sequentiallyConsistent) {
            scheduleResume()
        }
    }

    /// Requests cancellation: the fiber's current and future blocking calls throw
    /// CancellationError. Any thread, any number of times.
    func cancel() {
        if cancelled.exchange(true, ordering: .sequentiallyConsistent) { return }
        wakeIfParked()
    }

    /// Queues the resume on the home worker: its own ready list when called on the home
    /// thread, its remote list (and a nudge) from anywhere else.
    private func scheduleResume() {
        guard let w = home else { spindleFatal("a fiber was woken before it started") }
        if let current = Worker.current, current === w {
            w.readyFibers.append(Runnable(fiber: self))
        } else {
            w.pushRemoteFiber(Runnable(fiber: self))
        }
    }

    // MARK: parking (on the fiber itself)

    /// On the fiber: suspends until woken, unless `ready()` is already true after arming
    /// (or, when `cancellable`, the fiber is cancelled). Returns after at most one
    /// suspension; callers loop on their own condition.
    @inline(__always)
    func park(unless ready: () -> Bool, cancellable: Bool = true) {
        waiting.store(true, ordering: .sequentiallyConsistent)
        if ready() || (cancellable && isCancelled) {
            if waiting.exchange(false, ordering: .sequentiallyConsistent) { return }
            // A waker took `waiting` first: its resume is queued; consume it.
        }
        suspend()
    }

    /// On the fiber: hands control back to the home worker's loop.
    @inline(__always)
    func suspend() {
        // SAFETY: context is set while the fiber runs (we are on its stack).
        spindle_fiber_suspend(context!)
    }

    /// On the fiber: goes to the back of the home worker's ready list and suspends.
    func yieldNow() {
        home!.readyFibers.append(Runnable(fiber: self))
        suspend()
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

enum JoinList {
    static let closed: UInt = 1
}

/// Someone waiting for a fiber to finish: another fiber, a task, or a plain thread.
final class JoinWaiter: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `next` is written only before the waiter is published
    // by the CAS in addJoiner, and read only by closeJoiners after the list is closed.
    enum Kind {
        case fiber(FiberCore)
        case continuation(UnsafeContinuation<Void, Never>)
        case thread(Parker)
    }
    let kind: Kind
    var next: UInt = 0

    init(fiber: FiberCore) { kind = .fiber(fiber) }
    init(continuation: UnsafeContinuation<Void, Never>) { kind = .continuation(continuation) }
    init(parker: Parker) { kind = .thread(parker) }

    func fire() {
        switch kind {
        case .fiber(let f): f.wakeIfParked()
        case .continuation(let c): c.resume()
        case .thread(let p): p.unpark()
        }
    }
}

/// A fiber with a typed body and result.
final class FiberTask<Value: Sendable>: FiberCore, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `body` is touched only by the fiber (once, when it
    // starts) or by finishWithoutRunning on the thread that decided the fiber never runs;
    // `result` as described in the file's note.
    private var body: (() throws -> Value)?
    private(set) var result: Result<Value, any Error>?

    init(name: String?, stackSize: Int?, body: @escaping () throws -> Value) {
        self.body = body
        super.init(name: name, stackSize: stackSize)
    }

    override func runBody() {
        let body = self.body.take()!
        do {
            result = .success(try body())
        } catch {
            result = .failure(error)
        }
        // `body` (and whatever it captured) is released here, still on the fiber's stack,
        // before control leaves the fiber for the last time.
        bodyDone = true
    }

    override func finishWithoutRunning(_ error: any Error) {
        body = nil
        result = .failure(error)
        bodyDone = true
    }

    /// The result, once `isFinished` is true.
    func finishedResult() -> Result<Value, any Error> {
        guard let r = result else { spindleFatal("fiber result read before it finished") }
        return r
    }
}

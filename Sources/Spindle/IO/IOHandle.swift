// IOHandle: one non-blocking descriptor registered with the reactor: who waits for it to
// become readable or writable, and when it may really be closed. UNSAFE FILE: a raw
// descriptor whose lifetime is managed by an atomic use count.
//
// Readiness (edge-triggered, Tokio's ScheduledIo idea): each direction has an event
// counter. An operation reads the counter (its ticket), tries the syscall, and if it would
// block waits "until the counter moves past my ticket". An event that arrived between the
// ticket and the wait is therefore never missed: the wait completes at once.
//
// Waiters are the primitives' `Waiter`s (task, fiber or thread), so a socket call parks a
// fiber or suspends a task with the same code paths as a channel (Blocking.swift): the
// decision is taken under `state`'s lock, the resume happens after unlocking.
//
// Closing while others use the descriptor: `use` packs (operations in flight << 1 |
// closed). An operation enters (refused once closed) and leaves; `close()` sets the bit,
// fails every waiter at once (they throw `SocketError.closed`), and the descriptor is
// deregistered and closed by whoever brings the count to zero with the bit set: exactly
// once, and never while a syscall might still use the number (which could by then name
// another file).
import CSpindle
import DequeModule
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

enum IODirection { case read, write }

final class IOHandle: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `fd` is immutable and valid until `finalClose` (see
    // the use count above); `token` is written once in init; `state` is under its lock;
    // the rest is atomic.
    let fd: Int32
    let runtime: Runtime
    /// The runtime's reactor (tests may give another one, e.g. on a FakeBackend).
    let reactor: Reactor
    private var token: UInt64 = 0

    struct State {
        var readers = WaiterQueue<Void>()
        var writers = WaiterQueue<Void>()
        /// Why waits now fail, once closed or shut down.
        var failure: SocketError?
        /// A finished task waiter kept for the next task wait without a deadline (see
        /// `WaiterCore.reuseForTask()`): that wait then allocates nothing.
        var spare: Waiter<Void>?
    }
    /// guarded by lock
    let state = Lock(State())
    let readEvents = Atomic<UInt64>(0)
    let writeEvents = Atomic<UInt64>(0)
    /// The read ticket at which the socket was last seen drained (IOOperation), or .max.
    /// Only reads are judged drained: a short write is retried at once.
    private let readDrained = Atomic<UInt64>(.max)
    /// Set (before the counters move) by the first event that reports the peer closed or
    /// an error: from then on a short read no longer means "nothing more", since the end
    /// of the stream (or the error) is still to be read and no further event will say so.
    private let hungUp = Atomic<Bool>(false)
    private let use = Atomic<Int>(0)
    /// The worker whose own backend watches the descriptor, or -1 for the shared one.
    /// Changed once (adopt), under `state`'s lock, inside an operation; read by
    /// finalClose, which runs when no operation is left.
    private let owner = Atomic<Int>(-1)

    /// Takes ownership of `fd` (non-blocking): registers it, or closes it and throws.
    init(fd: Int32, runtime: Runtime, reactor: Reactor? = nil) throws(SocketError) {
        self.fd = fd
        self.runtime = runtime
        self.reactor = reactor ?? runtime.reactor
        do throws(SocketError) {
            token = try self.reactor.register(self)
        } catch {
            Sys.closeDescriptor(fd)
            use.store(1, ordering: .relaxed) // closed; nothing to deregister
            throw error
        }
    }

    deinit {
        // Waiters still queued (normally none: a waiter's caller holds this handle for its
        // whole wait): the queues' references to them go with it (WaiterQueue).
        state.withLock { s in
            s.readers.dropAll()
            s.writers.dropAll()
        }
    }

    // MARK: lifetime

    /// Starts an operation. Throws `SocketError.closed` once `close()` was called.
    @inline(__always)
    func enter() throws(SocketError) {
        var v = use.load(ordering: .relaxed)
        while true {
            if v & 1 != 0 { throw .closed }
            let (done, now) = use.weakCompareExchange(expected: v, desired: v + 2, successOrdering: .acquiring, failureOrdering: .relaxed)
            if done { return }
            v = now
        }
    }

    /// Ends an operation started by `enter()`.
    @inline(__always)
    func leave() {
        let old = use.subtract(2, ordering: .acquiringAndReleasing).oldValue
        if old == 3 { finalClose() }
    }

    var isClosed: Bool { use.load(ordering: .acquiring) & 1 != 0 }

    /// Closes the handle: waiters fail with `SocketError.closed` at once; the descriptor
    /// closes when the last operation in flight leaves. Idempotent.
    func close() {
        let old = use.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue
        if old & 1 != 0 { return }
        failWaiters(.closed)
        if old == 0 { finalClose() }
    }

    private func finalClose() {
        let w = owner.load(ordering: .acquiring)
        reactor.deregister(self, token: token, worker: w)
        if w >= 0 { runtime.workers[w].ownRegistrations.subtract(1, ordering: .relaxed) }
        Sys.closeDescriptor(fd)
    }

    /// A fiber is about to wait on this descriptor: if the shared backend watches it, move
    /// it to the fiber's worker's own backend. A fiber never leaves its worker, so its
    /// events then wake that worker directly instead of whichever worker polls the shared
    /// backend, which would hand the fiber over with a second thread wake-up (a fiber echo
    /// server at 1000 connections: 0.46 such hand-overs per event before, 0.002 after).
    /// Later waiters of any kind still get its events, from that worker.
    @inline(__always)
    private func adoptIfFiber() {
        if owner.load(ordering: .relaxed) >= 0 || reactor.workerBackends.isEmpty { return }
        guard let home = Fiber.currentCore?.home, home.runtime === runtime else { return }
        state.withLock { _ in
            guard owner.load(ordering: .relaxed) < 0 else { return }
            if reactor.move(self, token: token, toWorker: home.index) {
                home.ownRegistrations.add(1, ordering: .relaxed)
                owner.store(home.index, ordering: .releasing)
            }
        }
    }

    // MARK: readiness

    @inline(__always)
    func ticket(_ d: IODirection) -> UInt64 {
        d == .read ? readEvents.load(ordering: .acquiring) : writeEvents.load(ordering: .acquiring)
    }

    @inline(__always)
    func drainedAt(_ d: IODirection) -> UInt64 {
        // After `ticket(d)` (acquiring): a hang-up counted by that ticket is visible here.
        if d == .write || hungUp.load(ordering: .relaxed) { return .max }
        return readDrained.load(ordering: .relaxed)
    }

    @inline(__always)
    func markDrained(_ d: IODirection, at ticket: UInt64) {
        if d == .read { readDrained.store(ticket, ordering: .relaxed) }
    }

    /// The reactor says readiness changed: bump the counters and wake the waiters.
    func ready(_ r: Readiness) {
        let read = !r.isDisjoint(with: [.readable, .closed])
        let write = !r.isDisjoint(with: [.writable, .closed])
        // The common case, one waiter, without building an array.
        var first: Wake?
        var more: [Wake] = []
        state.withLock { s in
            if r.contains(.closed) { hungUp.store(true, ordering: .relaxed) } // published by the adds
            if read {
                readEvents.add(1, ordering: .releasing)
                IOHandle.completeAll(&s.readers, &first, &more)
            }
            if write {
                writeEvents.add(1, ordering: .releasing)
                IOHandle.completeAll(&s.writers, &first, &more)
            }
        }
        first?.resume()
        for w in more { w.resume() }
    }

    private static func completeAll(_ queue: inout WaiterQueue<Void>, _ first: inout Wake?, _ more: inout [Wake]) {
        while let w = queue.popFirst() {
            // The wake takes over the queue's reference.
            let wake = Wake(completing: w, .completed)
            if first == nil { first = wake } else { more.append(wake) }
        }
    }

    /// Fails every waiter, now and later, with `error` (close, runtime shutdown).
    func failWaiters(_ error: SocketError) {
        let wakes: [Wake] = state.withLock { s in
            if s.failure == nil { s.failure = error }
            return Blocking.completeAll(&s.readers, .closed) + Blocking.completeAll(&s.writers, .closed)
        }
        for w in wakes { w.resume() }
    }

    // MARK: waiting

    /// Under the lock: completes `w` at once, or queues it (Blocking's `register`). Called
    /// from closure literals at the call sites, so their contexts stay on the stack (a
    /// returned closure was one heap allocation per wait).
    private func register(_ s: inout State, _ w: Waiter<Void>, _ d: IODirection, _ ticket: UInt64, _ timeout: IOTimeout?) -> [Wake]? {
        if s.failure != nil { return [w.complete(.closed)] }
        if self.ticket(d) != ticket { return [w.complete(.completed)] }
        // The deadline passed before we queued (IOTimeout.fire sets it under this lock).
        if let timeout, timeout.hasFired { return [w.complete(.cancelled)] }
        return d == .read ? Blocking.enqueue(&s.readers, w) : Blocking.enqueue(&s.writers, w)
    }

    private static func withdraw(_ s: inout State, _ w: Waiter<Void>, _ d: IODirection) -> Bool {
        d == .read ? Blocking.withdraw(&s.readers, w) : Blocking.withdraw(&s.writers, w)
    }

    /// Suspends the task until an event for `d` arrives after `ticket` (or the deadline,
    /// monotonic ns, passes: `SocketError.timedOut`).
    func wait(_ d: IODirection, since ticket: UInt64, deadline: Int64? = nil) async throws {
        let waiter: Waiter<Void>
        if deadline == nil, let spare = state.withLock({ $0.spare.take() }) {
            spare.reuseForTask()
            waiter = spare
        } else {
            waiter = Waiter<Void>(forTask: true)
        }
        let timeout = deadline.map { armTimeout(d, waiter, at: $0) }
        await Blocking.wait(state, waiter, register: { [self] s, w in register(&s, w, d, ticket, timeout) },
                            withdraw: { s, w in IOHandle.withdraw(&s, w, d) })
        try finish(waiter, timeout)
    }

    /// Parks the fiber (blocks the thread) until an event for `d` arrives after `ticket`.
    func block(_ d: IODirection, since ticket: UInt64, deadline: Int64? = nil) throws {
        adoptIfFiber()
        // A fiber without a deadline waits on its own waiter (no allocation per wait). With
        // a deadline it takes a fresh one: the timeout holds its waiter and may withdraw it
        // after this call is over, which must not touch the fiber's next wait.
        if deadline == nil, let core = Fiber.currentCoreRef {
            // SAFETY: the running fiber, alive while it runs this.
            try core._withUnsafeGuaranteedRef { core in
                // SAFETY: the fiber holds its own waiter for the whole call.
                try Waiter<Void>.own(by: core)._withUnsafeGuaranteedRef { waiter in
                    waiter.reset()
                    Blocking.block(state, waiter, register: { [self] s, w in register(&s, w, d, ticket, nil) },
                                   withdraw: { s, w in IOHandle.withdraw(&s, w, d) }, reason: d == .read ? .read : .write)
                    try finish(waiter, nil)
                }
            }
            return
        }
        let waiter = Waiter<Void>(forTask: false)
        let timeout = deadline.map { armTimeout(d, waiter, at: $0) }
        Blocking.block(state, waiter, register: { [self] s, w in register(&s, w, d, ticket, timeout) },
                       withdraw: { s, w in IOHandle.withdraw(&s, w, d) }, reason: d == .read ? .read : .write)
        try finish(waiter, timeout)
    }

    private func finish(_ waiter: Waiter<Void>, _ timeout: IOTimeout?) throws {
        if let timeout { timeout.disarm(runtime) }
        let (outcome, failure) = state.withLock { s in
            // A task's waiter, done with, becomes the spare; not one a timeout holds (it
            // may still withdraw it), and not a fiber's or thread's.
            if timeout == nil && s.spare == nil && waiter.isReusable { s.spare = waiter }
            return (waiter.outcome, s.failure)
        }
        switch outcome {
        case .completed, .pending: return
        case .closed: throw failure ?? .closed
        case .cancelled:
            if timeout?.hasFired == true { throw SocketError.timedOut }
            throw CancellationError()
        }
    }

    private func armTimeout(_ d: IODirection, _ waiter: Waiter<Void>, at deadline: Int64) -> IOTimeout {
        let t = IOTimeout(handle: self, direction: d, waiter: waiter)
        t.entry = runtime.schedule(Runnable(retaining: t), at: deadline)
        return t
    }
}

/// A wait's deadline: when it fires first, it withdraws the waiter (outcome cancelled,
/// reported as `SocketError.timedOut`).
final class IOTimeout: Wakeup, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `entry` is written once by the arming thread right
    // after scheduling and read only by that same thread in `disarm`; `fire` (which may
    // run on another thread, even before `entry` is written) never touches it. The rest
    // is immutable or atomic.
    let handle: IOHandle
    let direction: IODirection
    let waiter: Waiter<Void>
    var entry: TimerEntry?
    private let fired = Atomic<Bool>(false)

    init(handle: IOHandle, direction: IODirection, waiter: Waiter<Void>) {
        self.handle = handle
        self.direction = direction
        self.waiter = waiter
    }

    var hasFired: Bool { fired.load(ordering: .sequentiallyConsistent) }

    override func fire() {
        let wake: Wake? = handle.state.withLock { s in
            fired.store(true, ordering: .sequentiallyConsistent)
            let withdrawn = direction == .read ? Blocking.withdraw(&s.readers, waiter) : Blocking.withdraw(&s.writers, waiter)
            guard withdrawn else { return nil }
            return waiter.complete(.cancelled)
        }
        wake?.resume()
    }

    func disarm(_ runtime: Runtime) {
        if let entry, let item = runtime.timers.cancel(entry) { _ = item.takeWakeup() }
    }
}

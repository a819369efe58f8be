// Reactor: readiness events from the kernel to the coroutines waiting for them, inside
// the workers themselves.
//
// There is no I/O thread. One thread at a time holds the polling token and polls the
// shared backend (a parked worker blocked in it, or a worker taking a quick look), so an
// event resumes its waiter on the polling worker: a task's continuation is enqueued on that
// worker's own run-next slot, with no thread hop.
//
// Registrations live in a slab; an event carries (slot << 24 | generation), and an event
// whose generation no longer matches its slot (the descriptor was closed, maybe reused) is
// dropped. The slab is guarded by its lock; lookups for one poll's events take it once.
//
// Who polls, who blocks here and how a blocked worker is woken is the Driver's business
// (Driver.swift); the reactor only delivers what one poll returns.
//
// Fibers never move, so an event for a fiber polled by another worker had to be handed
// over with a second thread wake-up (~half the events of a fiber echo server). So each
// worker also has its own backend: a descriptor a fiber waits on moves there
// (IOHandle.adoptIfFiber) and its events are polled by the fiber's worker only, which
// looks at it when out of work, every 61 ticks, and parks *in* it (state "in worker
// reactor") unless it is the one parked in the shared backend. Each worker backend is
// nested in the shared one (token worker + 1), so that worker sees its own events too;
// a poller that sees another worker's backend ready nudges that worker, which polls its
// backend on waking (it may have been about to block in the shared one, where the edge
// is gone).
import CSpindle
import Synchronization

final class Reactor: Sendable {
    let backend: any ReactorBackend
    /// One epoll instance per worker for descriptors that fibers of that worker wait on
    /// (a fiber never moves, so its events are best polled by its own worker; see
    /// IOHandle.adopt). Each is nested in `backend` under token `worker + 1` (slot 0,
    /// which no registration uses), so the worker blocked in the shared reactor also sees
    /// its own. Empty for test reactors and the current-thread flavour. Set once in init.
    let workerBackends: [EpollBackend]
    /// Held by the one thread polling. Taken with an exchange, released with a store.
    private let driver = Atomic<Bool>(false)

    private struct Slab {
        var slots: [IOHandle?] = [nil] // slot 0 is never used (ReactorToken.wake)
        var generations: [UInt32] = [0]
        var free: [Int] = []
        var live = 0
        var shutDown = false
    }
    /// guarded by lock
    private let slab = Lock(Slab())
    /// Descriptors registered now (Runtime.metrics).
    var registrations: Int { slab.withLock { $0.live } }

    /// `live`, readable without the lock: a quick look at the shared backend with no
    /// descriptor registered anywhere can only find the wake-up eventfd, which a busy
    /// worker does not need (`pollIfFree` skips the syscall then).
    let liveCount = Atomic<Int>(0)
    /// Readiness events handed to live registrations, ever (Runtime.statistics).
    let eventsDelivered = Atomic<Int>(0)

    static let generationBits: UInt64 = 24
    static let generationMask: UInt64 = (1 << 24) - 1

    /// A reactor without worker backends (tests, the current-thread flavour).
    init(backend: any ReactorBackend) {
        self.backend = backend
        self.workerBackends = []
    }

    init(backend: any ReactorBackend, workerBackends: [EpollBackend]) throws(SysError) {
        self.backend = backend
        self.workerBackends = workerBackends
        for (i, b) in workerBackends.enumerated() {
            try backend.register(fd: b.epfd, token: UInt64(i + 1))
        }
    }

    /// Moves `handle`'s registration from the shared backend to worker `index`'s own
    /// (the caller serializes moves and closes of one handle). False if it stayed.
    func move(_ handle: IOHandle, token: UInt64, toWorker index: Int) -> Bool {
        guard index < workerBackends.count else { return false }
        backend.deregister(fd: handle.fd)
        // Edge-triggered ADD reports the current readiness at once: nothing is missed
        // between the two calls (the tickets make an extra event harmless).
        do {
            try workerBackends[index].register(fd: handle.fd, token: token)
            return true
        } catch {
            try? backend.register(fd: handle.fd, token: token)
            return false
        }
    }

    // MARK: registrations

    /// Adds `handle` (its descriptor already open and non-blocking) and returns its token.
    func register(_ handle: IOHandle) throws(SocketError) -> UInt64 {
        let token = try slab.withLock { s throws(SocketError) -> UInt64 in
            if s.shutDown { throw .runtimeShutDown }
            let slot: Int
            if let f = s.free.popLast() {
                slot = f
                s.slots[f] = handle
            } else {
                slot = s.slots.count
                s.slots.append(handle)
                s.generations.append(0)
            }
            s.live += 1
            liveCount.store(s.live, ordering: .relaxed)
            return UInt64(slot) << Reactor.generationBits | UInt64(s.generations[slot])
        }
        do {
            try backend.register(fd: handle.fd, token: token)
        } catch {
            release(token: token)
            throw SocketError(error)
        }
        return token
    }

    /// Stops watching `handle`'s descriptor (before it is closed); late events for its
    /// token are dropped from now on.
    func deregister(_ handle: IOHandle, token: UInt64, worker: Int = -1) {
        if worker >= 0 { workerBackends[worker].deregister(fd: handle.fd) } else { backend.deregister(fd: handle.fd) }
        release(token: token)
    }

    private func release(token: UInt64) {
        let slot = Int(token >> Reactor.generationBits)
        slab.withLock { s in
            guard slot < s.slots.count, UInt64(s.generations[slot]) == token & Reactor.generationMask else { return }
            s.slots[slot] = nil
            s.generations[slot] = UInt32((UInt64(s.generations[slot]) + 1) & Reactor.generationMask)
            s.free.append(slot)
            s.live -= 1
            liveCount.store(s.live, ordering: .relaxed)
        }
    }

    var registrationCount: Int { slab.withLock { $0.live } }

    // MARK: polling

    @inline(__always)
    func tryAcquireDriver() -> Bool {
        if driver.load(ordering: .relaxed) { return false }
        return !driver.exchange(true, ordering: .acquiring)
    }

    @inline(__always)
    func releaseDriver() { driver.store(false, ordering: .releasing) }

    /// The token holder only: waits up to `timeoutNanos` (nil: forever) and delivers the
    /// events. `worker`: the polling worker, which then also polls its own backend if that
    /// has events. `othersReady` is called with each other worker whose own backend has
    /// events: that worker polls them itself, but may be about to block in this shared
    /// backend, where the edge just consumed no longer shows (the Driver nudges it).
    /// Returns how many registrations were told.
    @discardableResult
    func poll(timeoutNanos: Int64?, worker: Int? = nil, othersReady: (Int) -> Void = { _ in }) -> Int {
        var ownReady = false
        let n = deliver(from: backend, timeoutNanos: timeoutNanos) { nested in
            if nested == worker { ownReady = true } else { othersReady(nested) }
        }
        if ownReady, let worker { return n + pollWorker(worker, timeoutNanos: 0) }
        return n
    }

    /// Worker `index`'s own thread only: waits up to `timeoutNanos` on that worker's
    /// backend and delivers its events.
    @discardableResult
    func pollWorker(_ index: Int, timeoutNanos: Int64?) -> Int {
        deliver(from: workerBackends[index], timeoutNanos: timeoutNanos) { _ in }
    }

    private func deliver(from b: any ReactorBackend, timeoutNanos: Int64?, nested: (Int) -> Void) -> Int {
        var batch: [(UInt64, Readiness)] = []
        b.poll(timeoutNanos: timeoutNanos) { token, r in
            // Slot 0: a worker's own backend, nested (token = worker + 1). Its worker polls
            // it; whoever else sees it ignores it.
            if token >> Reactor.generationBits == 0 { nested(Int(token) - 1) } else { batch.append((token, r)) }
        }
        if batch.isEmpty { return 0 }
        let handles: [(IOHandle, Readiness)] = slab.withLock { s in
            var out: [(IOHandle, Readiness)] = []
            out.reserveCapacity(batch.count)
            for (token, r) in batch {
                let slot = Int(token >> Reactor.generationBits)
                guard slot < s.slots.count, UInt64(s.generations[slot]) == token & Reactor.generationMask,
                      let h = s.slots[slot] else { continue } // stale: descriptor gone
                out.append((h, r))
            }
            return out
        }
        for (h, r) in handles { h.ready(r) }
        eventsDelivered.add(handles.count, ordering: .relaxed)
        return handles.count
    }

    /// A look at the reactor (no waiting), if nobody holds the token.
    /// Returns how many registrations were told.
    @inline(__always) @discardableResult
    func pollIfFree(worker: Int? = nil, othersReady: (Int) -> Void = { _ in }) -> Int {
        // Nothing registered: nothing to deliver (events that arrive later stay queued in
        // the kernel for the next look). Spares a hand-off chain a syscall every
        // `Tuning.globalQueueInterval` turns.
        if liveCount.load(ordering: .relaxed) == 0 { return 0 }
        guard tryAcquireDriver() else { return 0 }
        defer { releaseDriver() }
        return poll(timeoutNanos: 0, worker: worker, othersReady: othersReady)
    }

    /// True while some thread holds the polling token (blocked in the shared backend, or
    /// taking a quick look).
    var isDriverHeld: Bool { driver.load(ordering: .relaxed) }

    // MARK: shutdown

    /// The runtime stopped: every waiter fails with `SocketError.runtimeShutDown`, and new
    /// registrations are refused. Descriptors stay open until their owners close them.
    func shutdown() {
        let all: [IOHandle] = slab.withLock { s in
            s.shutDown = true
            return s.slots.compactMap { $0 }
        }
        for h in all { h.failWaiters(.runtimeShutDown) }
    }

    private let backendsClosed = Atomic<Bool>(false)

    /// Closes the backends' descriptors, once (after the runtime stopped and no thread
    /// polls any more, or at deinit). A late deregistration then finds a closed epoll and
    /// is ignored (Sys.epollDelete).
    ///
    /// A waker may be between its Parker exchange and its backend wake when the last worker
    /// closes the backends: it would write into a closed descriptor, whose number may
    /// already be someone else's. So wakes go through `wakeBackend`, which counts itself in
    /// (`wakesInFlight`) and re-checks `backendsClosed`; closing sets the flag, then waits
    /// until no wake is in flight (a few instructions). Both sides sequentially consistent:
    /// either the waker sees the flag and skips (nobody is left to wake), or the closer sees
    /// the count and waits for it.
    func closeBackends() {
        if backendsClosed.exchange(true, ordering: .sequentiallyConsistent) { return }
        while wakesInFlight.load(ordering: .sequentiallyConsistent) != 0 { spindle_cpu_relax() }
        backend.close()
        for b in workerBackends { b.close() }
    }

    private let wakesInFlight = Atomic<Int>(0)

    /// Wakes the shared backend (nil) or worker `index`'s own, unless they are closed.
    func wakeBackend(_ index: Int?) {
        wakesInFlight.add(1, ordering: .sequentiallyConsistent)
        defer { wakesInFlight.subtract(1, ordering: .sequentiallyConsistent) }
        if backendsClosed.load(ordering: .sequentiallyConsistent) { return }
        if let index { workerBackends[index].wake() } else { backend.wake() }
    }

    deinit { closeBackends() }
}

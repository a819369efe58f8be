// Reactor: readiness events from the kernel to the coroutines waiting for them, inside
// the workers themselves.
//
// There is no I/O thread. A worker with nothing to run parks *in the reactor* if the
// driver token is free (one worker at a time polls; the others park on their futex, as
// Tokio's workers do), so an event resumes its waiter on the polling worker: a task's
// continuation is enqueued on that worker's own run-next slot, with no thread hop. Busy
// workers also poll without waiting every `Tuning.globalQueueInterval` ticks, so events
// are seen while every worker is busy.
//
// Registrations live in a slab; an event carries (slot << 24 | generation), and an event
// whose generation no longer matches its slot (the descriptor was closed, maybe reused) is
// dropped. The slab is guarded by its lock; lookups for one poll's events take it once.
//
// Waking a worker parked in the reactor goes through its Parker (state "in reactor"),
// which calls `wake()` on the backend: the two never miss each other (Parker.swift).
import Synchronization

final class Reactor: Sendable {
    let backend: any ReactorBackend
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
    /// Readiness events handed to live registrations, ever (Runtime.statistics).
    let eventsDelivered = Atomic<Int>(0)

    static let generationBits: UInt64 = 24
    static let generationMask: UInt64 = (1 << 24) - 1

    init(backend: any ReactorBackend) {
        self.backend = backend
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
    func deregister(_ handle: IOHandle, token: UInt64) {
        backend.deregister(fd: handle.fd)
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

    /// The driver only: waits up to `timeoutNanos` (nil: forever) and delivers the events.
    /// Returns how many registrations were told.
    @discardableResult
    func poll(timeoutNanos: Int64?) -> Int {
        var batch: [(UInt64, Readiness)] = []
        backend.poll(timeoutNanos: timeoutNanos) { token, r in batch.append((token, r)) }
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

    /// A busy worker's look at the reactor (no waiting), if nobody is polling.
    /// Returns how many registrations were told.
    @inline(__always) @discardableResult
    func pollIfFree() -> Int {
        guard tryAcquireDriver() else { return 0 }
        defer { releaseDriver() }
        return poll(timeoutNanos: 0)
    }

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

    deinit { backend.close() }
}

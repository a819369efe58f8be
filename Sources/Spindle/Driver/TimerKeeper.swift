// TimerKeeper: the scheduler's side of the timer store (Time/): who sleeps with a timeout.
//
// At most one parked worker, the *keeper*, sleeps with a timeout equal to the earliest
// deadline; every other parked worker sleeps without one, so an idle runtime with a timer
// wakes one thread, once, when it is due, and an idle runtime with no timers never wakes.
// Busy workers look at `earliest` (one atomic load) every `Tuning.globalQueueInterval`
// ticks and fire what is due, so timers keep firing while every worker is busy.
//
// The decision is taken under the lock (insert compares the new deadline with the one the
// keeper sleeps until); the waking is done by the caller after unlocking.
import Synchronization

final class TimerKeeper: Sendable {
    private struct State {
        var store: WheelTimerStore
        /// The parked worker sleeping until `keeperDeadline`, if any.
        var keeper: Int?
        var keeperDeadline: Int64 = .max
        /// Set once at shutdown: inserts are refused so nothing is stranded.
        var closed = false
    }

    /// guarded by lock
    private let state: Lock<State>
    /// Earliest deadline (Int64.max if none); written under the lock, read as a hint.
    private let earliest = Atomic<Int64>(.max)
    /// The keeper's index, -1 if none; written under the lock, read as a hint (the Driver
    /// prefers waking other workers for new work, so the keeper keeps sleeping).
    private let keeperHint = Atomic<Int>(-1)

    var keeperIndex: Int? {
        let k = keeperHint.load(ordering: .relaxed)
        return k < 0 ? nil : k
    }

    enum InsertAction {
        case none
        /// The keeper sleeps past the new deadline: unpark it.
        case wakeKeeper(Int)
        /// Nobody sleeps with a timeout: make sure some worker will.
        case noKeeper
        /// The runtime has stopped; the caller still owns the item.
        case closed
    }

    /// The store is a timing wheel (TimerWheel.swift): measured against the heap
    /// (`spindle bench --rows timer.store`), it inserts, cancels and fires 1M timers 2–3×
    /// faster and 10k timers ~1.3× faster. `tickShift` 0 makes its wake-ups exact (tests).
    init(tickShift: Int = Tuning.timerTickShift) {
        state = Lock(State(store: WheelTimerStore(tickShift: tickShift)))
    }

    /// `now` is read before locking: an empty wheel restarts from it, so a new timer is
    /// filed against the present and not against when the wheel last turned.
    func insert(deadline: Int64, item: Runnable, now: Int64 = Sys.nowNanos()) -> (InsertAction, TimerEntry?) {
        state.withLock { s in
            if s.closed { return (.closed, nil) }
            if s.store.isEmpty { s.store.restart(now: now) }
            let entry = s.store.insert(deadline: deadline, item: item)
            let wake = s.store.earliestDeadline ?? .max
            earliest.store(wake, ordering: .releasing)
            guard let k = s.keeper else { return (.noKeeper, entry) }
            if wake < s.keeperDeadline {
                s.keeperDeadline = wake
                return (.wakeKeeper(k), entry)
            }
            return (.none, entry)
        }
    }

    /// Cancels a timer that has not fired: returns its item (now the caller's), or nil if
    /// it already fired, was cancelled, or the store closed.
    func cancel(_ entry: TimerEntry) -> Runnable? {
        state.withLock { s in
            let item = s.store.remove(entry)
            if item != nil { earliest.store(s.store.earliestDeadline ?? .max, ordering: .releasing) }
            return item
        }
    }

    /// A worker about to park asks to be the keeper. Returns the timeout in nanoseconds if
    /// it became the keeper of a non-empty store, nil otherwise (sleep without timeout).
    func claimKeeper(_ index: Int, now: Int64) -> Int64? {
        state.withLock { s -> Int64? in
            guard let d = s.store.earliestDeadline else { return nil }
            if let k = s.keeper, k != index { return nil }
            s.keeper = index
            s.keeperDeadline = d
            keeperHint.store(index, ordering: .relaxed)
            return max(0, d - now)
        }
    }

    /// The keeper woke; the role is free again.
    func releaseKeeper(_ index: Int) {
        state.withLock { s in
            if s.keeper == index {
                s.keeper = nil
                s.keeperDeadline = .max
                keeperHint.store(-1, ordering: .relaxed)
            }
        }
    }

    /// Cheap check for busy workers.
    @inline(__always)
    func anyDue(now: Int64) -> Bool { earliest.load(ordering: .acquiring) <= now }

    var earliestDeadline: Int64? {
        let e = earliest.load(ordering: .acquiring)
        return e == .max ? nil : e
    }

    var isEmpty: Bool { earliest.load(ordering: .acquiring) == .max }

    var count: Int { state.withLock { $0.store.count } }

    /// Takes out everything due; `body` runs after unlocking.
    func fireDue(now: Int64, _ body: (Runnable) -> Void) -> Int {
        if !anyDue(now: now) { return 0 }
        var due: [Runnable] = []
        state.withLock { s in
            s.store.popExpired(now: now) { due.append($0) }
            earliest.store(s.store.earliestDeadline ?? .max, ordering: .releasing)
        }
        for r in due { body(r) }
        return due.count
    }

    /// Closes the store (shutdown) and returns what it held.
    func close() -> [(deadline: Int64, item: Runnable)] {
        state.withLock { s in
            s.closed = true
            let all = s.store.removeAll()
            earliest.store(.max, ordering: .releasing)
            return all
        }
    }
}

// Parker: puts one thread to sleep until another unparks it, on a futex. UNSAFE FILE:
// a raw futex word.
//
// States of the word: EMPTY (0), PARKED (1, the owner is, or is about to be, asleep on
// the futex), NOTIFIED (2, an unpark arrived), IN_REACTOR (3, the owner is, or is about
// to be, polling the reactor: an unpark then wakes the reactor's backend instead, and a
// wake that lands before the poll begins makes that poll return at once),
// IN_WORKER_REACTOR (4, the same with the worker's own backend, Reactor.swift). An unpark
// is never lost: it leaves NOTIFIED behind and the next park returns at once. A park may
// also return spuriously or on timeout; callers always re-check their own condition, so
// the parker only promises "no lost wake-up".
// Only the owning thread parks; any thread may unpark.
import CSpindle

final class Parker: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the only state is the futex word, touched solely
    // through atomic C operations; it is freed in deinit, after every user dropped us.
    private let word: UnsafeMutablePointer<UInt32>

    private static let empty: UInt32 = 0
    private static let parked: UInt32 = 1
    private static let notified: UInt32 = 2
    private static let inReactor: UInt32 = 3
    /// The owner is, or is about to be, polling its own worker backend.
    private static let inWorkerReactor: UInt32 = 4
    /// How long a worker that should poll the reactor, but found it busy, sleeps before
    /// trying again. A safety net only: the holder is either a worker blocked in the
    /// reactor (it delivers the events) or a running worker taking a quick look, which
    /// will itself be the last to park and block there. Long enough that an idle runtime
    /// in that state costs nothing measurable (20 wake-ups a second).
    static let driverRetryNanos: Int64 = 50_000_000

    /// The reactor this parker may poll while parked (workers); nil for plain threads.
    let reactor: Reactor?
    /// The worker this parker belongs to, if any: index of its own backend in the reactor.
    let worker: Int?

    init(reactor: Reactor? = nil, worker: Int? = nil) {
        self.reactor = reactor
        self.worker = worker
        // SAFETY: a private 4-byte allocation, freed in deinit.
        word = .allocate(capacity: 1)
        word.initialize(to: Parker.empty)
    }

    deinit { word.deallocate() }

    /// Owner thread only. Sleeps until unparked, the timeout passes (nil: no timeout), or a
    /// spurious wake-up; consumes a pending unpark.
    func park(timeoutNanos: Int64? = nil) {
        if spindle_word_exchange(word, Parker.empty) == Parker.notified { return }
        if !spindle_word_cas(word, Parker.empty, Parker.parked).asBool {
            _ = spindle_word_exchange(word, Parker.empty)
            return
        }
        Sys.futexWait(word, expected: Parker.parked, timeoutNanos: timeoutNanos ?? -1)
        _ = spindle_word_exchange(word, Parker.empty)
    }

    /// Owner thread only: like `park`, but if the reactor's driver token is free, waits
    /// in the reactor (delivering I/O events) instead of on the futex. Returns true if it
    /// polled the reactor.
    func parkPolling(timeoutNanos: Int64?, ownEvents: Bool = false) -> Bool {
        guard let reactor, reactor.tryAcquireDriver() else {
            // Another thread holds the reactor for a moment (a busy worker's look at it):
            // sleep briefly and let the caller try again, so no event waits for a runtime
            // whose every worker sleeps.
            let t = min(timeoutNanos ?? Parker.driverRetryNanos, Parker.driverRetryNanos)
            if ownEvents { return parkInWorkerReactor(timeoutNanos: t) }
            park(timeoutNanos: t)
            return false
        }
        defer { reactor.releaseDriver() }
        if spindle_word_exchange(word, Parker.empty) == Parker.notified { return false }
        if !spindle_word_cas(word, Parker.empty, Parker.inReactor).asBool {
            _ = spindle_word_exchange(word, Parker.empty)
            return false
        }
        reactor.poll(timeoutNanos: timeoutNanos, worker: worker)
        _ = spindle_word_exchange(word, Parker.empty)
        return true
    }

    /// Owner thread only: like `park`, but waits in the worker's own backend (delivering
    /// the events of descriptors its fibers wait on). Returns true if it polled.
    func parkInWorkerReactor(timeoutNanos: Int64?) -> Bool {
        guard let reactor, let worker, worker < reactor.workerBackends.count else {
            park(timeoutNanos: timeoutNanos)
            return false
        }
        if spindle_word_exchange(word, Parker.empty) == Parker.notified { return false }
        if !spindle_word_cas(word, Parker.empty, Parker.inWorkerReactor).asBool {
            _ = spindle_word_exchange(word, Parker.empty)
            return false
        }
        reactor.pollWorker(worker, timeoutNanos: timeoutNanos)
        _ = spindle_word_exchange(word, Parker.empty)
        return true
    }

    /// Any thread: the owner's own backend has events. If the owner waits in that backend
    /// the kernel wakes it already; otherwise this is an unpark (it will poll the backend
    /// before parking again).
    func nudgeForOwnEvents() {
        if spindle_word_load(word) == Parker.inWorkerReactor { return }
        unpark()
    }

    /// Any thread. Wakes the owner if it sleeps, or makes its next park return at once.
    func unpark() {
        switch spindle_word_exchange(word, Parker.notified) {
        case Parker.parked: Sys.futexWake(word, count: 1)
        case Parker.inReactor: reactor?.backend.wake()
        case Parker.inWorkerReactor: if let reactor, let worker { reactor.workerBackends[worker].wake() }
        default: break
        }
    }
}

extension Int32 {
    var asBool: Bool { self != 0 }
}

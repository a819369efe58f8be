// Parker: puts one thread to sleep until another unparks it, on a futex. UNSAFE FILE:
// a raw futex word.
//
// States of the word: EMPTY (0), PARKED (1, the owner is, or is about to be, asleep on
// the futex), NOTIFIED (2, an unpark arrived), IN_REACTOR (3, the owner is, or is about
// to be, polling the reactor: an unpark then wakes the reactor's backend instead, and a
// wake that lands before the poll begins makes that poll return at once). An unpark is never lost: it leaves NOTIFIED behind and
// the next park returns at once. A park may also return spuriously or on timeout; callers
// always re-check their own condition, so the parker only promises "no lost wake-up".
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
    /// How long a worker that should poll the reactor, but found it busy, sleeps before
    /// trying again. A safety net only: the holder is either a worker blocked in the
    /// reactor (it delivers the events) or a running worker taking a quick look, which
    /// will itself be the last to park and block there. Long enough that an idle runtime
    /// in that state costs nothing measurable (20 wake-ups a second).
    static let driverRetryNanos: Int64 = 50_000_000

    /// The reactor this parker may poll while parked (workers); nil for plain threads.
    let reactor: Reactor?

    init(reactor: Reactor? = nil) {
        self.reactor = reactor
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
    func parkPolling(timeoutNanos: Int64?) -> Bool {
        guard let reactor, reactor.tryAcquireDriver() else {
            // Another thread holds the reactor for a moment (a busy worker's look at it):
            // sleep briefly and let the caller try again, so no event waits for a runtime
            // whose every worker sleeps.
            park(timeoutNanos: min(timeoutNanos ?? Parker.driverRetryNanos, Parker.driverRetryNanos))
            return false
        }
        defer { reactor.releaseDriver() }
        if spindle_word_exchange(word, Parker.empty) == Parker.notified { return false }
        if !spindle_word_cas(word, Parker.empty, Parker.inReactor).asBool {
            _ = spindle_word_exchange(word, Parker.empty)
            return false
        }
        reactor.poll(timeoutNanos: timeoutNanos)
        _ = spindle_word_exchange(word, Parker.empty)
        return true
    }

    /// Any thread. Wakes the owner if it sleeps, or makes its next park return at once.
    func unpark() {
        switch spindle_word_exchange(word, Parker.notified) {
        case Parker.parked: Sys.futexWake(word, count: 1)
        case Parker.inReactor: reactor?.backend.wake()
        default: break
        }
    }
}

extension Int32 {
    var asBool: Bool { self != 0 }
}

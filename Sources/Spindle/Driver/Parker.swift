// Parker: puts one thread to sleep until another unparks it. UNSAFE FILE: a raw futex word.
//
// States of the word:
//   EMPTY (0)         nothing pending;
//   PARKED (1)        the owner is, or is about to be, asleep on the futex;
//   NOTIFIED (2)      an unpark arrived; the next park returns at once;
//   IN_REACTOR (3)    the owner is, or is about to be, blocked in the shared reactor;
//   IN_OWN_REACTOR (4) the same in its worker's own reactor.
// An unpark is never lost: it leaves NOTIFIED behind. When the owner was blocked in a
// reactor, `unpark` says so and the caller (the Driver) wakes that reactor's backend; a
// wake that lands before the poll begins makes that poll return at once, so the two never
// miss each other. A park may also return spuriously or on timeout; callers re-check their
// own condition, so the parker only promises "no lost wake-up".
// Only the owning thread parks; any thread may unpark. The parker knows nothing of
// reactors: the Driver blocks there and says which state it is in.
import CSpindle

final class Parker: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the only state is the futex word, touched solely
    // through atomic C operations; it is freed in deinit, after every user dropped us.
    private let word: UnsafeMutablePointer<UInt32>

    private static let empty: UInt32 = 0
    private static let parked: UInt32 = 1
    private static let notified: UInt32 = 2
    private static let inReactor: UInt32 = 3
    private static let inOwnReactor: UInt32 = 4

    /// Where the owner was when an unpark reached it.
    enum Unparked {
        /// Running, asleep on the futex (already woken), or already notified.
        case handled
        /// Blocked, or about to block, in the shared reactor: wake its backend.
        case inReactor
        /// The same in the worker's own reactor.
        case inOwnReactor
    }

    /// Which reactor a `block(in:)` waits in.
    enum Place { case reactor, ownReactor }

    init() {
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

    /// Owner thread only: runs `wait` (a blocking poll of a reactor) in state `place`,
    /// unless an unpark is pending (then returns false at once, consuming it). An unpark
    /// that arrives meanwhile is reported to its caller as `.inReactor`/`.inOwnReactor`,
    /// who wakes that backend, so `wait` returns promptly.
    func block(in place: Place, _ wait: () -> Void) -> Bool {
        if spindle_word_exchange(word, Parker.empty) == Parker.notified { return false }
        let state = place == .reactor ? Parker.inReactor : Parker.inOwnReactor
        if !spindle_word_cas(word, Parker.empty, state).asBool {
            _ = spindle_word_exchange(word, Parker.empty)
            return false
        }
        wait()
        _ = spindle_word_exchange(word, Parker.empty)
        return true
    }

    /// True while the owner is blocked (or about to block) in its own reactor: the kernel
    /// wakes it there for that reactor's events, no unpark needed.
    var isInOwnReactor: Bool { spindle_word_load(word) == Parker.inOwnReactor }

    /// Any thread. Wakes the owner if it sleeps on the futex, or makes its next park
    /// return at once; says whether it was blocked in a reactor instead.
    @discardableResult
    func unpark() -> Unparked {
        switch spindle_word_exchange(word, Parker.notified) {
        case Parker.parked: Sys.futexWake(word, count: 1); return .handled
        case Parker.inReactor: return .inReactor
        case Parker.inOwnReactor: return .inOwnReactor
        default: return .handled
        }
    }
}

extension Int32 {
    var asBool: Bool { self != 0 }
}

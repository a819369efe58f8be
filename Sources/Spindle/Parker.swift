// Parker: puts one thread to sleep until another unparks it, on a futex. UNSAFE FILE:
// a raw futex word.
//
// States of the word: EMPTY (0), PARKED (1, the owner is, or is about to be, asleep),
// NOTIFIED (2, an unpark arrived). An unpark is never lost: it leaves NOTIFIED behind and
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

    /// Any thread. Wakes the owner if it sleeps, or makes its next park return at once.
    func unpark() {
        if spindle_word_exchange(word, Parker.notified) == Parker.parked {
            Sys.futexWake(word, count: 1)
        }
    }
}

extension Int32 {
    var asBool: Bool { self != 0 }
}

// Lock: a mutex around a value, on one futex word. UNSAFE FILE: a raw pointer to the word
// and to the protected value.
//
// The word (Drepper's "futexes are tricky", mutex #2): 0 free, 1 held, 2 held and a
// thread may be asleep on it. Taking it uncontended is one compare-and-swap (acquire);
// giving it back is one exchange (release), plus a futex wake only if the old value was
// 2. Contended takers spin a little (a holder's critical sections here are short), then
// set 2 and sleep on the futex.
//
// Why not `Synchronization.Mutex`: on Linux it locks through a futex inside the Swift
// runtime's own (uninstrumented) code, so the thread sanitizer sees none of its
// happens-before edges and reports every access it protects as a race (seen in this
// suite: 41 reports, all inside withLock on both sides). This lock's atomics are inline C
// compiled into our own modules, which the sanitizer instruments: it sees the acquire and
// release pairs. Why not `pthread_mutex_t` (what this was until the fiber channel's
// round trip was profiled): glibc's lock and unlock calls, with their type checks, cost
// 17% of that round trip; the word does the same two atomic operations inline.
import CSpindle

/// A mutex around a value (the thread sanitizer follows it, unlike
/// `Synchronization.Mutex` on Linux: see above). Public so the layers above Spindle
/// (SpindleHTTP) keep TSan's reports meaningful too.
///
/// ```swift
/// let counts = Lock([String: Int]())
/// counts.withLock { $0["a", default: 0] += 1 }
/// ```
public final class Lock<Value>: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `value` is only read or written while the word is
    // held: in `withLock`, or in `withLockHeld` by a caller that took it with `lockRaw()`.
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    /// @exclusivity(unchecked): only touched between lock and unlock, which already
    /// excludes overlapping access; the dynamic check cost ~15% of a channel round trip.
    @usableFromInline @exclusivity(unchecked) var value: Value

    public init(_ value: Value) {
        self.value = value
        // SAFETY: allocated and initialised here, freed in deinit (when no one can hold it).
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
    }

    deinit {
        word.deallocate()
    }

    /// Lock without a closure, for code that must hold several locks at once (select
    /// locks every channel it waits on, in a global order). Pair with `unlockRaw()`; touch
    /// `value` only in between.
    @inlinable @inline(__always)
    func lockRaw() {
        if spindle_lock_try(word) == 0 { lockContended() }
    }

    @inlinable @inline(__always)
    func unlockRaw() {
        if spindle_lock_give_back(word) == 2 { wakeSleeper() }
    }

    /// A taker may be asleep on the word: wake one.
    @usableFromInline @inline(never)
    func wakeSleeper() { Sys.futexWake(word) }

    /// The slow half of `lockRaw`: spin while the holder is likely to let go soon, then
    /// sleep on the word (marked 2, so its next unlock wakes a sleeper).
    @usableFromInline @inline(never)
    func lockContended() {
        for _ in 0..<100 {
            spindle_cpu_relax()
            if spindle_word_load(word) == 0 && spindle_lock_try(word) != 0 { return }
        }
        while spindle_lock_take_contended(word) != 0 {
            Sys.futexWait(word, expected: 2, timeoutNanos: -1, injectable: false)
        }
    }

    /// The value, for a caller that already holds the lock through `lockRaw()`.
    @inlinable @inline(__always)
    func withLockHeld<R>(_ body: (inout Value) -> R) -> R { body(&value) }

    /// Runs `body` with the value, holding the lock.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lockRaw()
        defer { unlockRaw() }
        return try body(&value)
    }
}

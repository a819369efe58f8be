// Lock: a mutex around a value, on pthread_mutex_t. UNSAFE FILE: raw pointers to the
// pthread mutex and the protected value.
//
// Why not `Synchronization.Mutex`: on Linux it locks through a futex inside the Swift
// runtime's own (uninstrumented) code, so the thread sanitizer sees none of its
// happens-before edges and reports every access it protects as a race (seen in this
// suite: 41 reports, all inside withLock on both sides). TSan intercepts pthread_mutex_*,
// so with this lock its reports mean something. Cost is the same order: an uncontended
// lock/unlock pair is two atomic operations in glibc.
#if canImport(Glibc)
import Glibc
#endif

/// A mutex around a value, on `pthread_mutex_t` (which the thread sanitizer
/// understands, unlike `Synchronization.Mutex` on Linux: see above). Public so the
/// layers above Spindle (SpindleHTTP) keep TSan's reports meaningful too.
///
/// ```swift
/// let counts = Lock([String: Int]())
/// counts.withLock { $0["a", default: 0] += 1 }
/// ```
public final class Lock<Value>: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `value` is only read or written between
    // pthread_mutex_lock and pthread_mutex_unlock on `mutex`: in `withLock`, or in
    // `withLockHeld` by a caller that took the lock with `lockRaw()`.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// @exclusivity(unchecked): only touched between lock and unlock, which already
    /// excludes overlapping access; the dynamic check cost ~15% of a channel round trip.
    @usableFromInline @exclusivity(unchecked) var value: Value

    public init(_ value: Value) {
        self.value = value
        // SAFETY: allocated and initialised here, destroyed and freed in deinit.
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let r = pthread_mutex_init(mutex, nil)
        precondition(r == 0, "Spindle fatal: pthread_mutex_init failed with \(r)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Lock without a closure, for code that must hold several locks at once (select
    /// locks every channel it waits on, in a global order). Pair with `unlockRaw()`; touch
    /// `value` only in between.
    @inlinable @inline(__always)
    func lockRaw() { pthread_mutex_lock(mutex) }

    @inlinable @inline(__always)
    func unlockRaw() { pthread_mutex_unlock(mutex) }

    /// The value, for a caller that already holds the lock through `lockRaw()`.
    @inlinable @inline(__always)
    func withLockHeld<R>(_ body: (inout Value) -> R) -> R { body(&value) }

    /// Runs `body` with the value, holding the lock.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

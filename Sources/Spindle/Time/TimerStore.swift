// TimerStore: the contract between the scheduler and whatever keeps its timers. Two
// backends: `WheelTimerStore` (WheelTimerStore.swift), the one the runtime uses, and
// `HeapTimerStore` (HeapTimerStore.swift), a binary min-heap whose entries know their own
// position. `package` access: `spindle bench` measures both (rows `timer.store.*`).
// Both remove a cancelled timer at once and give its memory back.
//
// Why the wheel: `spindle bench --rows timer.store` runs both on the same work. Inserting and
// cancelling 1M timers: wheel 1,017 ns, heap 1,805 ns per timer; inserting and firing 1M:
// 1,071 vs 2,414 ns; 10k: 431 vs 603 ns (2026-11-29). The heap's edge, an exact earliest
// deadline in O(1), costs the wheel at most one 8 µs tick of lateness and an extra wake-up
// per cascade; `timer.late.1ms` stayed well under its 1 ms bound.
//
// Deadlines are CLOCK_MONOTONIC nanoseconds (Sys.nowNanos). Entries with equal deadlines
// fire in insertion order (a sequence number breaks ties).
//
// Not thread-safe: the owner (TimerKeeper) guards it with its lock, and so every field of
// `TimerEntry` is guarded by that lock too.

/// One armed timer; the handle its arming code keeps to cancel it.
package final class TimerEntry: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): every field is read and written only under the
    // Timers lock (the handle is passed around, its fields are not touched outside).
    let deadline: Int64
    let sequence: UInt64
    /// guarded. What to run when due; taken out when it fires or is cancelled.
    var item: Runnable?
    /// guarded. Position in the heap, or in its wheel bucket; -1 once out of the heap.
    var heapIndex: Int = -1
    /// guarded. The wheel bucket holding it, or -1 (heap entries, or out of the wheel).
    var bucket: Int = -1

    init(deadline: Int64, sequence: UInt64, item: Runnable) {
        self.deadline = deadline
        self.sequence = sequence
        self.item = item
    }

    @inline(__always)
    func isBefore(_ other: TimerEntry) -> Bool {
        deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
    }
}

package protocol TimerStore: ~Copyable {
    /// Adds `item`, due at `deadline`; returns the entry (a handle for `remove`).
    mutating func insert(deadline: Int64, item: Runnable) -> TimerEntry
    /// Takes `entry` out if it has not fired yet and returns its item (the caller now owns
    /// it); nil if it already fired or was removed.
    mutating func remove(_ entry: TimerEntry) -> Runnable?
    /// When `popExpired` must next run, or nil when empty: never later than the earliest
    /// deadline rounded up to the store's granularity (the heap: exactly that deadline),
    /// and after `popExpired(now:)` always later than `now`.
    var earliestDeadline: Int64? { get }
    var isEmpty: Bool { get }
    var count: Int { get }
    /// Removes every item with deadline ≤ now, in deadline order.
    mutating func popExpired(now: Int64, into body: (Runnable) -> Void)
    /// Removes everything (shutdown), with deadlines.
    mutating func removeAll() -> [(deadline: Int64, item: Runnable)]
}

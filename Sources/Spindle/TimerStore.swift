// TimerStore: the contract between the scheduler and whatever keeps its timers, and the
// first backend, a binary heap.
//
// The scheduler only needs: insert an item with a deadline, know the earliest deadline,
// and take out everything due. A timing wheel (the I/O issue) will replace the heap behind
// this same contract. Deadlines are CLOCK_MONOTONIC nanoseconds (Sys.nowNanos). Items with
// equal deadlines fire in insertion order (a sequence number breaks ties).
import HeapModule

protocol TimerStore: ~Copyable {
    /// Adds `item`, due at `deadline`. Returns true if it is now the earliest deadline.
    mutating func insert(deadline: Int64, item: Runnable) -> Bool
    /// The earliest deadline, or nil when empty.
    var earliestDeadline: Int64? { get }
    var isEmpty: Bool { get }
    var count: Int { get }
    /// Removes every item with deadline ≤ now, in deadline order.
    mutating func popExpired(now: Int64, into body: (Runnable) -> Void)
    /// Removes everything (shutdown), with deadlines.
    mutating func removeAll() -> [(deadline: Int64, item: Runnable)]
}

struct HeapTimerStore: TimerStore {
    private struct Entry: Comparable {
        let deadline: Int64
        let sequence: UInt64
        let item: Runnable
        static func < (a: Entry, b: Entry) -> Bool {
            (a.deadline, a.sequence) < (b.deadline, b.sequence)
        }
        static func == (a: Entry, b: Entry) -> Bool {
            a.deadline == b.deadline && a.sequence == b.sequence
        }
    }

    private var heap = Heap<Entry>()
    private var nextSequence: UInt64 = 0

    mutating func insert(deadline: Int64, item: Runnable) -> Bool {
        let wasEarliest = earliestDeadline.map { deadline < $0 } ?? true
        heap.insert(Entry(deadline: deadline, sequence: nextSequence, item: item))
        nextSequence &+= 1
        return wasEarliest
    }

    var earliestDeadline: Int64? { heap.min?.deadline }
    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func popExpired(now: Int64, into body: (Runnable) -> Void) {
        while let top = heap.min, top.deadline <= now {
            body(heap.removeMin().item)
        }
    }

    mutating func removeAll() -> [(deadline: Int64, item: Runnable)] {
        var out: [(deadline: Int64, item: Runnable)] = []
        while let e = heap.popMin() { out.append((e.deadline, e.item)) }
        return out
    }
}

// HeapTimerStore: a binary min-heap of timers whose entries know their own position, so a
// cancelled timer is removed at once (O(log n)). The runtime uses the wheel
// (WheelTimerStore.swift); the heap is what the wheel was measured against
// (`spindle bench --rows timer.store`, numbers in TimerStore.swift) and the tests'
// second implementation of the contract.

package struct HeapTimerStore: TimerStore {
    package init() {}

    private var heap: [TimerEntry] = []
    private var nextSequence: UInt64 = 0

    package mutating func insert(deadline: Int64, item: Runnable) -> TimerEntry {
        let e = TimerEntry(deadline: deadline, sequence: nextSequence, item: item)
        nextSequence &+= 1
        e.heapIndex = heap.count
        heap.append(e)
        siftUp(heap.count - 1)
        return e
    }

    package mutating func remove(_ entry: TimerEntry) -> Runnable? {
        let i = entry.heapIndex
        guard i >= 0, i < heap.count, heap[i] === entry else { return nil }
        removeAt(i)
        return entry.item.take()
    }

    package var earliestDeadline: Int64? { heap.first?.deadline }
    package var isEmpty: Bool { heap.isEmpty }
    package var count: Int { heap.count }

    package mutating func popExpired(now: Int64, into body: (Runnable) -> Void) {
        while let top = heap.first, top.deadline <= now {
            removeAt(0)
            if let item = top.item.take() { body(item) }
        }
        if heap.isEmpty && heap.capacity > 1024 { heap = [] }
    }

    package mutating func removeAll() -> [(deadline: Int64, item: Runnable)] {
        var out: [(deadline: Int64, item: Runnable)] = []
        while let top = heap.first {
            removeAt(0)
            if let item = top.item.take() { out.append((top.deadline, item)) }
        }
        return out
    }

    // MARK: heap mechanics

    private mutating func removeAt(_ i: Int) {
        let last = heap.count - 1
        heap[i].heapIndex = -1
        if i != last {
            heap.swapAt(i, last)
            heap[i].heapIndex = i
        }
        heap.removeLast()
        if i < heap.count {
            siftDown(i)
            siftUp(i)
        }
        // Give memory back after a mass cancellation (1M sleeps cancelled).
        if heap.capacity > 4096 && heap.count < heap.capacity / 8 {
            heap = Array(heap)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let e = heap[i]
        while i > 0 {
            let parent = (i - 1) / 2
            if !e.isBefore(heap[parent]) { break }
            heap[i] = heap[parent]
            heap[i].heapIndex = i
            i = parent
        }
        heap[i] = e
        e.heapIndex = i
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let e = heap[i]
        let n = heap.count
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && heap[child + 1].isBefore(heap[child]) { child += 1 }
            if !heap[child].isBefore(e) { break }
            heap[i] = heap[child]
            heap[i].heapIndex = i
            i = child
        }
        heap[i] = e
        e.heapIndex = i
    }
}


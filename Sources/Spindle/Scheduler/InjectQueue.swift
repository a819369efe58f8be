// InjectQueue: the runtime's global FIFO for work that comes from outside the workers
// (other threads, the timer, the blocking pool) and for local-queue overflow.
//
// A mutex around a ring deque plus an atomic length, so the hot path of a worker that
// finds its own queue empty ("is there global work?") is one relaxed load, not a lock.
// Workers check it every `Tuning.globalQueueInterval` ticks even when they have local
// work, so it cannot starve. Rejected: an intrusive lock-free MPSC list threaded through the
// jobs' private words (cheaper pushes, but the consumer side is multi-consumer here, which
// puts us back at a lock or a far more delicate algorithm; measure first).
import DequeModule
import Synchronization

final class InjectQueue: Sendable {
    private struct State {
        var queue: Deque<Runnable> = []
        /// Set once at shutdown; a closed queue refuses pushes so nothing is stranded.
        var closed = false
    }
    /// guarded by lock
    private let items = Lock(State())
    /// Mirrors items.count; written under the lock, read without it as a hint.
    private let length = Atomic<Int>(0)

    var isEmpty: Bool { length.load(ordering: .acquiring) == 0 }
    var count: Int { length.load(ordering: .acquiring) }

    /// Returns false (and keeps nothing) if the queue was closed by shutdown.
    @discardableResult
    func push(_ item: Runnable) -> Bool {
        items.withLock { s in
            if s.closed { return false }
            s.queue.append(item)
            length.store(s.queue.count, ordering: .releasing)
            return true
        }
    }

    /// Returns false (and keeps nothing) if the queue was closed by shutdown.
    @discardableResult
    func push(batch: [Runnable]) -> Bool {
        items.withLock { s in
            if s.closed { return false }
            s.queue.append(contentsOf: batch)
            length.store(s.queue.count, ordering: .releasing)
            return true
        }
    }

    /// Closes the queue if it is empty. Returns true if it is (now) closed.
    func closeIfEmpty() -> Bool {
        items.withLock { s in
            if !s.queue.isEmpty { return false }
            s.closed = true
            return true
        }
    }

    /// Closes the queue and returns what it held.
    func close() -> [Runnable] {
        items.withLock { s in
            s.closed = true
            let out = Array(s.queue)
            s.queue.removeAll()
            length.store(0, ordering: .releasing)
            return out
        }
    }

    func pop() -> Runnable? {
        if isEmpty { return nil }
        return items.withLock { s in
            let r = s.queue.popFirst()
            length.store(s.queue.count, ordering: .releasing)
            return r
        }
    }

    /// Pops up to `max` items at once (a worker refilling its local queue).
    func pop(upTo max: Int, into body: (Runnable) -> Void) -> Int {
        if isEmpty { return 0 }
        let taken: [Runnable] = items.withLock { s in
            let n = Swift.min(max, s.queue.count)
            let out = Array(s.queue.prefix(n))
            s.queue.removeFirst(n)
            length.store(s.queue.count, ordering: .releasing)
            return out
        }
        for r in taken { body(r) }
        return taken.count
    }
}

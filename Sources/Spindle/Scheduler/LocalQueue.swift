// LocalQueue: a worker's bounded run queue. The owner pushes and pops without locks; other
// workers steal half of it at once.
//
// Design (the Tokio/Go scheme, written from their published descriptions):
// - A ring of `capacity` atomic words, `tail` written only by the owner, and `head`, one
//   64-bit atomic packing two 32-bit indices: `real` (the next slot the owner pops) and
//   `steal` (the first slot a stealer is still copying). When nobody steals,
//   steal == real.
// - Push (owner): if `tail - steal < capacity` the slot at `tail` is free (no stealer can be
//   reading it, because stealers only read [steal, real+n)), so write it and publish with a
//   release store of `tail`. When full, the owner moves half of the queue plus the new item
//   to the global inject queue in one batch ("overflow"), so pushing never fails.
// - Overflow moves the OLDEST half (as Go and Tokio do) and then puts the new item in the
//   freed local slot, so the inject queue always holds work older than any local work.
//   Order matters more in Swift than elsewhere: Swift 6.3.1 unlinks a finished child task
//   by walking its group's child list from the oldest child, so completing children
//   newest-first is quadratic (measured here with 20k live children: 213 µs per child
//   newest-first versus 9.7 µs oldest-first). `push` reports the overflow so the worker
//   can switch to oldest-first consumption (see Worker).
// - Pop (owner): CAS `real` forward; if no steal is in progress, `steal` moves with it.
// - Steal (others): one stealer at a time per queue (a steal in progress shows as
//   steal != real and makes a second stealer give up). It claims n = ceil(len/2) items by
//   CAS-ing `real` forward while leaving `steal` behind, copies the slots into its own
//   queue, then CASes `steal` up to `real`, which releases the slots to the owner.
// Indices are u32 and wrap; all distances use wrapping subtraction.
//
// Rejected: Chase-Lev deque (needs a fence on every owner pop, and steals one at a time,
// so a fan-out of 1M tiny tasks makes idle workers steal a million times); a mutex-guarded
// deque (every push and pop pays an atomic RMW and contention with stealers).
import Synchronization

final class LocalQueue: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): all shared state is atomics; `slots` is a fixed
    // allocation freed only in deinit, when no other thread holds a reference.

    let capacity: UInt32
    private let mask: UInt32
    /// Packed (steal << 32 | real). Shared by the owner and stealers.
    private let head = Atomic<UInt64>(0)
    /// Written by the owner only; read by stealers (acquire) to find the end.
    private let tail = Atomic<UInt32>(0)
    /// The ring; each slot a Runnable's bits. Immutable pointer after init.
    private let slots: UnsafeMutablePointer<Atomic<UInt>>

    /// `capacity` must be a power of two ≥ 2. The runtime uses 256 (Tokio and Go both chose
    /// 256: one 2 KiB ring per worker, big enough that overflow to the global queue is rare);
    /// tests use 4 to reach overflow and wrap-around quickly.
    init(capacity: Int = 256) {
        precondition(capacity >= 2 && capacity & (capacity - 1) == 0 && capacity <= 1 << 30)
        self.capacity = UInt32(capacity)
        self.mask = UInt32(capacity - 1)
        // SAFETY: allocated and initialised here, deinitialised and freed in deinit.
        slots = .allocate(capacity: capacity)
        for i in 0..<capacity { (slots + i).initialize(to: Atomic<UInt>(0)) }
    }

    deinit {
        slots.deinitialize(count: Int(capacity))
        slots.deallocate()
    }

    @inline(__always) private static func unpack(_ v: UInt64) -> (steal: UInt32, real: UInt32) {
        (UInt32(truncatingIfNeeded: v >> 32), UInt32(truncatingIfNeeded: v))
    }
    @inline(__always) private static func pack(steal: UInt32, real: UInt32) -> UInt64 {
        UInt64(steal) << 32 | UInt64(real)
    }

    /// Items currently queued (approximate when read by other threads).
    var count: Int {
        let (steal, _) = Self.unpack(head.load(ordering: .acquiring))
        return Int(tail.load(ordering: .acquiring) &- steal)
    }

    var isEmpty: Bool {
        let (_, real) = Self.unpack(head.load(ordering: .acquiring))
        return tail.load(ordering: .acquiring) == real
    }

    /// Owner only. Pushes `item`; if the ring is full, first moves its oldest half to
    /// `overflow` in one batch. Returns true if it overflowed. Items the overflow queue
    /// refuses (it closed: the runtime stopped) go to `orphaned`, never nowhere.
    @discardableResult
    func push(_ item: Runnable, overflow: InjectQueue, orphaned: (Runnable) -> Void = LocalQueue.noOrphansExpected) -> Bool {
        var overflowed = false
        while true {
            let h = head.load(ordering: .acquiring)
            let (steal, real) = Self.unpack(h)
            let t = tail.load(ordering: .relaxed)
            if t &- steal < capacity {
                slots[Int(t & mask)].store(item.bits, ordering: .relaxed)
                tail.store(t &+ 1, ordering: .releasing)
                return overflowed
            }
            if steal != real {
                // A stealer is making room right now; do not wait for it.
                if !overflow.push(item) { orphaned(item) }
                return true
            }
            if moveOldestHalf(head: real, tail: t, to: overflow, orphaned: orphaned) { overflowed = true }
            // Either there is room now, or a stealer took items between our load and CAS.
        }
    }

    /// The default for `push`: callers that can meet a closed inject queue (the workers)
    /// pass the runtime's forwarding instead.
    static func noOrphansExpected(_ r: Runnable) {
        spindleFatal("a job overflowed into a closed inject queue and had nowhere to go")
    }

    private func moveOldestHalf(head real: UInt32, tail t: UInt32, to overflow: InjectQueue, orphaned: (Runnable) -> Void) -> Bool {
        let half = capacity / 2
        precondition(t &- real == capacity, "Spindle fatal: local queue overflow with a queue that is not full")
        let prev = Self.pack(steal: real, real: real)
        let next = Self.pack(steal: real &+ half, real: real &+ half)
        // Claim the oldest half like a stealer would, so no stealer can take it too.
        guard head.compareExchange(expected: prev, desired: next, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        var batch: [Runnable] = []
        batch.reserveCapacity(Int(half))
        for i in 0..<half {
            batch.append(Runnable(bits: slots[Int((real &+ i) & mask)].load(ordering: .relaxed)))
        }
        if !overflow.push(batch: batch) { batch.forEach(orphaned) }
        return true
    }

    /// Owner only.
    func pop() -> Runnable? {
        var h = head.load(ordering: .acquiring)
        while true {
            let (steal, real) = Self.unpack(h)
            if real == tail.load(ordering: .relaxed) { return nil }
            let nextReal = real &+ 1
            let next = steal == real
                ? Self.pack(steal: nextReal, real: nextReal)
                : Self.pack(steal: steal, real: nextReal)
            let (done, actual) = head.compareExchange(expected: h, desired: next, ordering: .acquiringAndReleasing)
            if done {
                return Runnable(bits: slots[Int(real & mask)].load(ordering: .relaxed))
            }
            h = actual
        }
    }

    /// Called by the owner of `dst` (a different worker). Moves about half of `self` into
    /// `dst` and returns one of them to run now, or nil if there was nothing to steal or
    /// another stealer was already at work.
    func steal(into dst: LocalQueue) -> Runnable? {
        let dstTail = dst.tail.load(ordering: .relaxed)
        let (dstSteal, _) = Self.unpack(dst.head.load(ordering: .acquiring))
        // Only steal when dst has room for half of a full queue.
        if dstTail &- dstSteal > dst.capacity / 2 { return nil }

        var n = stealInto(dst, dstTail: dstTail)
        if n == 0 { return nil }
        n -= 1
        let last = dst.slots[Int((dstTail &+ n) & dst.mask)].load(ordering: .relaxed)
        if n > 0 { dst.tail.store(dstTail &+ n, ordering: .releasing) }
        return Runnable(bits: last)
    }

    private func stealInto(_ dst: LocalQueue, dstTail: UInt32) -> UInt32 {
        var prev = head.load(ordering: .acquiring)
        var n: UInt32
        var first: UInt32
        var claimed: UInt64
        while true {
            let (steal, real) = Self.unpack(prev)
            if steal != real { return 0 } // another stealer is active
            let srcTail = tail.load(ordering: .acquiring)
            n = srcTail &- real
            n -= n / 2
            if n == 0 { return 0 }
            n = min(n, dst.capacity / 2)
            let next = Self.pack(steal: steal, real: real &+ n)
            let (done, actual) = head.compareExchange(expected: prev, desired: next, ordering: .acquiringAndReleasing)
            if done { first = steal; claimed = next; break }
            prev = actual
        }
        for i in 0..<n {
            let v = slots[Int((first &+ i) & mask)].load(ordering: .relaxed)
            dst.slots[Int((dstTail &+ i) & dst.mask)].store(v, ordering: .relaxed)
        }
        // Release the claimed slots: move `steal` up to `real` (the owner may have popped
        // more meanwhile, so re-read `real`).
        prev = claimed
        while true {
            let (_, real) = Self.unpack(prev)
            let next = Self.pack(steal: real, real: real)
            let (done, actual) = head.compareExchange(expected: prev, desired: next, ordering: .acquiringAndReleasing)
            if done { break }
            prev = actual
        }
        return n
    }
}

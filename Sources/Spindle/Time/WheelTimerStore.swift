// WheelTimerStore: a hierarchical timing wheel behind the `TimerStore` contract; the
// runtime's store, chosen over `HeapTimerStore` by measurement (TimerStore.swift).
//
// Shape (Tokio's, Varghese & Lauck's): 8 levels of 64 slots. Time is counted in ticks of
// 2^tickShift ns (8,192 ns by default, Tuning.timerTickShift). A level-l slot spans 64^l
// ticks, so level 0 covers 0.5 ms in 8 µs slots, level 1 33 ms, level 2 2.1 s, level 3
// 2.3 min, level 4 2.4 h, level 5 6.4 days, level 6 1.1 years, level 7 73 years; a timer
// further away than that waits in `overflow`.
//
// An entry goes to the level of the highest 6-bit digit in which its deadline tick
// differs from `elapsed` (the tick up to which the wheel has been processed), in the slot
// named by that digit. So the entries of a level all share the digits above it with
// `elapsed`, and their slot is never behind `elapsed`'s slot at that level: no slot wraps,
// and the first occupied slot of the lowest occupied level is the next thing to do.
// Processing a level-0 slot fires its entries; processing a higher slot ("cascading")
// moves `elapsed` to the slot's start and re-files its entries, each one level lower or
// more. An entry is re-filed at most once per level.
//
// Versus the heap: insert and remove are O(1) (an append, a swap-remove), popping is
// O(1) per entry plus the cascades; the heap's are O(log n) with a cache miss per level at
// millions of timers. The price: the keeper's wake-up (`earliestDeadline`) is exact only
// to a tick (a level-0 slot is due at its last nanosecond, so a timer fires up to one
// tick late), and a timer more than 0.5 ms away costs extra wake-ups of an idle runtime,
// one per cascade. `popExpired(now:)` itself is exact: it fires what is due by `now`,
// partially emptying the current slot if need be, in (deadline, insertion) order.
//
// Not thread-safe: the owner (Timers) guards it with its lock, as it does the entries.
package struct WheelTimerStore: TimerStore {
    static let levels = 8
    static let slotBits = 6
    static let slotsPerLevel = 1 << slotBits
    static let slotMask: Int64 = Int64(slotsPerLevel - 1)
    /// Tick bits the levels cover (48).
    static let wheelBits = Int64(levels * slotBits)
    /// `TimerEntry.bucket` of an entry waiting in `overflow`.
    private static let overflowBucket = levels * slotsPerLevel

    /// log2 of a tick in nanoseconds.
    let tickShift: Int
    /// Every slot with a start tick below `elapsed` has been processed.
    private var elapsed: Int64 = 0
    /// levels × slots buckets; an entry's `heapIndex` is its index in its bucket.
    private var buckets: [[TimerEntry]]
    /// One bit per non-empty slot, per level.
    private var occupied: [UInt64]
    /// Timers beyond the last level (deadline ticks that differ from `elapsed` above bit 48).
    private var overflow: [TimerEntry] = []
    /// The earliest deadline in `overflow` (Int64.max when empty).
    private var overflowMin: Int64 = .max
    package private(set) var count = 0
    private var nextSequence: UInt64 = 0

    package init(tickShift: Int = Tuning.timerTickShift) {
        precondition(tickShift >= 0 && tickShift < 32)
        self.tickShift = tickShift
        buckets = Array(repeating: [], count: Self.levels * Self.slotsPerLevel)
        occupied = Array(repeating: 0, count: Self.levels)
    }

    package var isEmpty: Bool { count == 0 }

    /// An empty wheel may move `elapsed` to any time not after the present: timers filed
    /// next then sit at the lowest level their distance from now allows (fewer cascades).
    package mutating func restart(now: Int64) {
        precondition(isEmpty)
        elapsed = max(elapsed, tick(of: now))
    }

    package mutating func insert(deadline: Int64, item: Runnable) -> TimerEntry {
        let e = TimerEntry(deadline: deadline, sequence: nextSequence, item: item)
        nextSequence &+= 1
        file(e)
        count += 1
        return e
    }

    package mutating func remove(_ entry: TimerEntry) -> Runnable? {
        let b = entry.bucket
        guard b >= 0 else { return nil }
        if b == Self.overflowBucket {
            let i = entry.heapIndex
            guard i < overflow.count, overflow[i] === entry else { return nil }
            takeOut(at: i, from: &overflow)
            overflowMin = overflow.lazy.map(\.deadline).min() ?? .max
        } else {
            let i = entry.heapIndex
            guard i < buckets[b].count, buckets[b][i] === entry else { return nil }
            takeOut(at: i, from: &buckets[b])
            if buckets[b].isEmpty { occupied[b >> Self.slotBits] &= ~(1 << UInt64(b & (Self.slotsPerLevel - 1))) }
            shrinkIfSparse(b)
        }
        count -= 1
        return entry.item.take()
    }

    /// When `popExpired` must next run: the last nanosecond of the first occupied level-0
    /// slot, or the start of the first occupied higher slot (to cascade it), or the
    /// earliest overflow deadline. Never later than the earliest deadline rounded up to a
    /// tick; after `popExpired(now:)` always later than `now`.
    package var earliestDeadline: Int64? {
        if let (level, _, tick) = firstOccupied() {
            return level == 0 ? ((tick + 1) << Int64(tickShift)) - 1 : tick << Int64(tickShift)
        }
        return overflow.isEmpty ? nil : overflowMin
    }

    package mutating func popExpired(now: Int64, into body: (Runnable) -> Void) {
        let nowTick = max(tick(of: now), elapsed)
        var due: [TimerEntry] = []
        while let (level, slot, slotTick) = firstOccupied(), slotTick <= nowTick {
            let b = level << Self.slotBits | slot
            occupied[level] &= ~(1 << UInt64(slot))
            var entries: [TimerEntry] = []
            swap(&entries, &buckets[b])
            if level == 0 && slotTick == nowTick {
                // The current tick: only what is due by `now` fires; the rest stays.
                for e in entries {
                    if e.deadline <= now { e.bucket = -1; due.append(e) } else { append(e, to: b) }
                }
                break
            }
            if level == 0 {
                for e in entries { e.bucket = -1; due.append(e) }
                elapsed = slotTick
            } else {
                elapsed = slotTick
                for e in entries { file(e) }
            }
        }
        // Overflow entries can only fit once `elapsed` changes its digits above the wheel.
        let crossed = (elapsed >> Self.wheelBits) != (nowTick >> Self.wheelBits)
        elapsed = nowTick
        if !overflow.isEmpty && (crossed || overflowMin <= now) { drainOverflow(now: now, into: &due) }
        count -= due.count
        due.sort { $0.isBefore($1) }
        for e in due { if let item = e.item.take() { body(item) } }
    }

    package mutating func removeAll() -> [(deadline: Int64, item: Runnable)] {
        var all = overflow
        overflow = []
        overflowMin = .max
        for b in buckets.indices where !buckets[b].isEmpty {
            all.append(contentsOf: buckets[b])
            buckets[b] = []
        }
        for l in occupied.indices { occupied[l] = 0 }
        count = 0
        all.sort { $0.isBefore($1) }
        return all.compactMap { e in
            e.bucket = -1
            return e.item.take().map { (e.deadline, $0) }
        }
    }

    // MARK: wheel mechanics

    @inline(__always)
    private func tick(of deadline: Int64) -> Int64 { max(deadline, 0) >> Int64(tickShift) }

    /// Puts `e` in the slot its deadline belongs to, relative to `elapsed`.
    private mutating func file(_ e: TimerEntry) {
        let when = max(tick(of: e.deadline), elapsed)
        let differing = (elapsed ^ when) | Self.slotMask
        let level = (63 - differing.leadingZeroBitCount) / Self.slotBits
        guard level < Self.levels else {
            e.bucket = Self.overflowBucket
            e.heapIndex = overflow.count
            overflow.append(e)
            overflowMin = min(overflowMin, e.deadline)
            return
        }
        let slot = Int((when >> Int64(level * Self.slotBits)) & Self.slotMask)
        append(e, to: level << Self.slotBits | slot)
    }

    @inline(__always)
    private mutating func append(_ e: TimerEntry, to b: Int) {
        e.bucket = b
        e.heapIndex = buckets[b].count
        buckets[b].append(e)
        occupied[b >> Self.slotBits] |= 1 << UInt64(b & (Self.slotsPerLevel - 1))
    }

    /// Swap-removes the entry at `i`, fixing the moved entry's index.
    @inline(__always)
    private func takeOut(at i: Int, from list: inout [TimerEntry]) {
        list[i].bucket = -1
        let last = list.count - 1
        if i != last {
            list.swapAt(i, last)
            list[i].heapIndex = i
        }
        list.removeLast()
    }

    /// Gives memory back after a mass cancellation (1M sleeps cancelled).
    private mutating func shrinkIfSparse(_ b: Int) {
        if buckets[b].capacity > 1024 && buckets[b].count < buckets[b].capacity / 8 {
            buckets[b] = Array(buckets[b])
        }
    }

    /// The first occupied slot of the lowest occupied level, with its start tick.
    private func firstOccupied() -> (level: Int, slot: Int, tick: Int64)? {
        for level in 0..<Self.levels where occupied[level] != 0 {
            let shift = Int64(level * Self.slotBits)
            let slot = occupied[level].trailingZeroBitCount
            let levelStart = elapsed & ~((Int64(1) << (shift + Int64(Self.slotBits))) - 1)
            return (level, slot, levelStart + (Int64(slot) << shift))
        }
        return nil
    }

    /// Fires overflow entries due by `now` and files those that now fit in the wheel.
    private mutating func drainOverflow(now: Int64, into due: inout [TimerEntry]) {
        let waiting = overflow
        overflow = []
        overflowMin = .max
        for e in waiting {
            if e.deadline <= now { e.bucket = -1; due.append(e) } else { file(e) }
        }
    }
}

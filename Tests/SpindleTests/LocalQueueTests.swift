@testable import Spindle
import Synchronization
import Testing

/// Runnables in these tests are fake: even words that never reach a worker.
private func item(_ i: Int) -> Runnable { Runnable(bits: UInt(i) << 4) }
private func value(_ r: Runnable) -> Int { Int(r.bits >> 4) }

@Suite struct LocalQueueTests {
    @Test func fifoPushPop() {
        let q = LocalQueue(capacity: 8)
        let inject = InjectQueue()
        for i in 0..<5 { q.push(item(i), overflow: inject) }
        #expect(q.count == 5)
        for i in 0..<5 { #expect(q.pop().map(value) == i) }
        #expect(q.pop() == nil)
        #expect(inject.isEmpty)
    }

    @Test func overflowMovesHalfToInject() {
        let q = LocalQueue(capacity: 4)
        let inject = InjectQueue()
        var overflowed: [Bool] = []
        for i in 0..<5 { overflowed.append(q.push(item(i), overflow: inject)) }
        #expect(overflowed == [false, false, false, false, true])
        // Full at 4: the 5th push moves the oldest half (0, 1) out and keeps the new item,
        // so the inject queue only ever holds work older than any local work.
        #expect(inject.count == 2)
        #expect(q.count == 3)
        var out: [Int] = []
        while let r = inject.pop() { out.append(value(r)) }
        while let r = q.pop() { out.append(value(r)) }
        #expect(out == [0, 1, 2, 3, 4])
    }

    @Test func wrapsAroundManyTimes() {
        let q = LocalQueue(capacity: 4)
        let inject = InjectQueue()
        var next = 0
        var expected = 0
        for _ in 0..<10_000 {
            q.push(item(next), overflow: inject); next += 1
            q.push(item(next), overflow: inject); next += 1
            #expect(q.pop().map(value) == expected); expected += 1
            #expect(q.pop().map(value) == expected); expected += 1
        }
        #expect(q.isEmpty && inject.isEmpty)
    }

    @Test func stealTakesHalfAndReturnsOne() {
        let src = LocalQueue(capacity: 16)
        let dst = LocalQueue(capacity: 16)
        let inject = InjectQueue()
        for i in 0..<8 { src.push(item(i), overflow: inject) }
        let got = src.steal(into: dst)
        #expect(got != nil)
        // 4 stolen: one returned, three now in dst; src keeps 4.
        #expect(src.count == 4)
        #expect(dst.count == 3)
        var all = [value(got!)]
        while let r = src.pop() { all.append(value(r)) }
        while let r = dst.pop() { all.append(value(r)) }
        #expect(all.sorted() == Array(0..<8))
    }

    @Test func stealFromEmptyIsNil() {
        #expect(LocalQueue(capacity: 4).steal(into: LocalQueue(capacity: 4)) == nil)
    }

    /// The owner pushes and pops while stealers steal: every item is taken exactly once.
    @Test(arguments: [4, 256])
    func concurrentStealing(capacity: Int) async {
        let total = 200_000
        let stealers = 3
        let owner = LocalQueue(capacity: capacity)
        let inject = InjectQueue()
        let seen = SeenSet(count: total)
        let ownerDone = Flag()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for i in 0..<total {
                    owner.push(item(i), overflow: inject)
                    if i % 3 == 0, let r = owner.pop() { seen.mark(value(r)) }
                }
                while let r = owner.pop() { seen.mark(value(r)) }
                ownerDone.set()
            }
            for _ in 0..<stealers {
                group.addTask {
                    let mine = LocalQueue(capacity: capacity)
                    while true {
                        let finished = ownerDone.isSet
                        if let r = owner.steal(into: mine) { seen.mark(value(r)) }
                        while let r = mine.pop() { seen.mark(value(r)) }
                        if finished && owner.isEmpty { break }
                    }
                }
            }
        }
        while let r = inject.pop() { seen.mark(value(r)) }
        #expect(seen.duplicates == 0)
        #expect(seen.missing == 0)
    }
}

@Suite struct InjectQueueTests {
    @Test func fifoAndBatch() {
        let q = InjectQueue()
        q.push(item(1))
        q.push(batch: [item(2), item(3), item(4)])
        #expect(q.count == 4)
        var got: [Int] = []
        let n = q.pop(upTo: 2) { got.append(value($0)) }
        #expect(n == 2)
        #expect(got == [1, 2])
        #expect(q.pop().map(value) == 3)
        #expect(q.closeIfEmpty() == false)
        #expect(q.close().map(value) == [4])
        #expect(q.push(item(5)) == false)
        #expect(q.isEmpty)
    }
}

@Suite struct TimerStoreTests {
    @Test func firesInDeadlineThenInsertionOrder() {
        var s = HeapTimerStore()
        var earliest: [Int64?] = []
        for (d, v) in [(30, 1), (10, 2), (20, 3), (10, 4)] as [(Int64, Int)] {
            _ = s.insert(deadline: d, item: item(v))
            earliest.append(s.earliestDeadline)
        }
        #expect(earliest == [30, 10, 10, 10])
        var fired: [Int] = []
        s.popExpired(now: 20) { fired.append(value($0)) }
        #expect(fired == [2, 4, 3])
        #expect(s.count == 1)
        #expect(s.removeAll().map { value($0.item) } == [1])
        #expect(s.isEmpty)
    }

    @Test func removedEntriesNeverFireAndGiveTheirItemBack() {
        var s = HeapTimerStore()
        let a = s.insert(deadline: 10, item: item(1))
        let b = s.insert(deadline: 5, item: item(2))
        _ = s.insert(deadline: 20, item: item(3))
        #expect(s.remove(b).map(value) == 2)
        #expect(s.remove(b) == nil) // twice: nothing
        #expect(s.earliestDeadline == 10)
        var fired: [Int] = []
        s.popExpired(now: 100) { fired.append(value($0)) }
        #expect(fired == [1, 3])
        #expect(s.remove(a) == nil) // already fired
        #expect(s.isEmpty)
    }

    /// Random inserts, removals and pops against a sorted reference list.
    @Test func heapMatchesReferenceUnderRandomOperations() {
        var s = HeapTimerStore()
        checkAgainstReference(&s, rounds: 20_000, horizon: 1_000, step: 200, tick: 1, exact: true)
    }

    /// The wheel with 1 ns ticks (exact wake-ups, many cascades), with coarse ticks
    /// (wake-ups rounded up to a tick, slots fired partly), and with deadlines that span
    /// every level and the overflow (2^48 ticks and beyond).
    @Test(arguments: [(0, Int64(1_000), Int64(200)), (0, Int64(1) << 20, Int64(1) << 14),
                      (6, Int64(1_000), Int64(200)), (2, Int64(1) << 52, Int64(1) << 46)])
    func wheelMatchesReferenceUnderRandomOperations(shift: Int, horizon: Int64, step: Int64) {
        var s = WheelTimerStore(tickShift: shift)
        checkAgainstReference(&s, rounds: 20_000, horizon: horizon, step: step, tick: Int64(1) << shift, exact: false)
    }

    @Test func wheelKeepsFarAndEndlessTimers() {
        var s = WheelTimerStore(tickShift: 13)
        let forever = s.insert(deadline: .max, item: item(1))
        _ = s.insert(deadline: 5_000_000, item: item(2))
        _ = s.insert(deadline: 1 << 61, item: item(3)) // beyond the last level: overflow
        var fired: [Int] = []
        s.popExpired(now: 4_999_999) { fired.append(value($0)) }
        #expect(fired.isEmpty)
        s.popExpired(now: 5_000_000) { fired.append(value($0)) }
        #expect(fired == [2])
        #expect(s.earliestDeadline == 1 << 61)
        s.popExpired(now: 1 << 61) { fired.append(value($0)) }
        #expect(fired == [2, 3])
        #expect(s.remove(forever).map(value) == 1)
        #expect(s.isEmpty && s.earliestDeadline == nil)
    }

    private func checkAgainstReference<S: TimerStore>(
        _ s: inout S, rounds: Int, horizon: Int64, step: Int64, tick: Int64, exact: Bool
    ) {
        var rng = SystemRandomNumberGenerator()
        var live: [(entry: TimerEntry, deadline: Int64, seq: Int)] = []
        var seq = 0
        var now: Int64 = 0
        for _ in 0..<rounds {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                let d = now + Int64.random(in: 0..<horizon, using: &rng)
                live.append((s.insert(deadline: d, item: item(seq)), d, seq))
                seq += 1
            case 5..<8 where !live.isEmpty:
                let i = Int.random(in: 0..<live.count, using: &rng)
                let victim = live.remove(at: i)
                #expect(s.remove(victim.entry).map(value) == victim.seq)
            default:
                now += Int64.random(in: 0..<step, using: &rng)
                var fired: [Int] = []
                s.popExpired(now: now) { fired.append(value($0)) }
                let due = live.filter { $0.deadline <= now }.sorted { ($0.deadline, $0.seq) < ($1.deadline, $1.seq) }
                #expect(fired == due.map(\.seq))
                live.removeAll { $0.deadline <= now }
                // The next wake-up is in the future, or the keeper would spin.
                if let next = s.earliestDeadline { #expect(next > now) }
            }
            #expect(s.count == live.count)
            let earliest = live.map(\.deadline).min()
            if exact {
                #expect(s.earliestDeadline == earliest)
            } else if let earliest {
                // Never later than the earliest deadline's tick; nil only when empty.
                let wake = s.earliestDeadline
                #expect(wake != nil && wake! <= (earliest / tick + 1) * tick - 1)
            } else {
                #expect(s.earliestDeadline == nil)
            }
        }
    }

    @Test func keeperProtocol() {
        // 1 ns ticks, times below 64 ns: level 0 of the wheel, so wake-ups are exact.
        let t = TimerKeeper(tickShift: 0)
        #expect(t.claimKeeper(0, now: 0) == nil) // nothing armed: sleep without timeout
        guard case .noKeeper = t.insert(deadline: 40, item: item(1), now: 0).0 else { Issue.record("expected noKeeper"); return }
        #expect(t.claimKeeper(0, now: 10) == 30)
        #expect(t.claimKeeper(1, now: 10) == nil) // worker 0 keeps the role
        guard case .none = t.insert(deadline: 50, item: item(2), now: 0).0 else { Issue.record("expected none"); return }
        guard case .wakeKeeper(0) = t.insert(deadline: 20, item: item(3), now: 0).0 else { Issue.record("expected wake 0"); return }
        t.releaseKeeper(0)
        var fired: [Int] = []
        let n = t.fireDue(now: 40) { fired.append(value($0)) }
        #expect(n == 2)
        #expect(fired == [3, 1])
        #expect(t.close().count == 1)
        guard case .closed = t.insert(deadline: 1, item: item(4)).0 else { Issue.record("expected closed"); return }
    }
}

@Suite struct IdleTests {
    @Test func notifiesOneWorkerOnlyWhenNobodySearches() {
        let idle = Idle(workerCount: 4)
        #expect(idle.workerToNotify() == nil) // everyone awake
        _ = idle.transitionToParked(3, isSearching: false)
        _ = idle.transitionToParked(2, isSearching: false)
        #expect(idle.unparkedCount == 2)
        let woken = idle.workerToNotify()
        #expect(woken == 2)
        #expect(idle.searchingCount == 1)
        // Somebody is searching: no second wake-up (no thundering herd).
        #expect(idle.workerToNotify() == nil)
        #expect(idle.transitionFromSearching()) // last searcher
        #expect(idle.workerToNotify() == 3)
    }

    @Test func searchingIsCappedAtHalf() {
        let idle = Idle(workerCount: 4)
        #expect(idle.transitionToSearching())
        #expect(idle.transitionToSearching())
        #expect(!idle.transitionToSearching())
    }

    @Test func unparkSelf() {
        let idle = Idle(workerCount: 2)
        _ = idle.transitionToParked(1, isSearching: false)
        #expect(idle.isParked(1))
        #expect(idle.unparkSelf(1))
        #expect(!idle.unparkSelf(1))
        #expect(idle.unparkedCount == 2)
    }
}

@Suite struct SysTests {
    @Test func cgroupQuotaParsing() {
        #expect(Sys.parseCgroupV2CPUMax("max 100000\n") == nil)
        #expect(Sys.parseCgroupV2CPUMax("150000 100000\n") == 2)
        #expect(Sys.parseCgroupV2CPUMax("100000 100000") == 1)
        #expect(Sys.parseCgroupV2CPUMax("garbage") == nil)
        #expect(Sys.availableCPUs() >= 1)
    }
}

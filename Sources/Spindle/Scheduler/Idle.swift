// Idle: which workers are parked, and how many are searching for work. Decides whom to
// wake so that new work wakes exactly one worker, only when one is needed.
//
// State: one atomic word packing `unparked` (workers not asleep, high half) and
// `searching` (awake workers looking for work to steal, low half), plus the list of parked
// workers under a mutex.
//
// Rules (after Tokio's idle.rs and Go's spinning-M rule, written from their docs):
// 1. New stealable work calls `workerToNotify()`. If some worker is already searching, it
//    will find the work (or wake the next one when it stops searching), so nobody is
//    woken: no thundering herd. Otherwise one parked worker is popped and counted as
//    unparked *and* searching before it is woken, so a burst of N pushes wakes one worker,
//    which wakes the next only when it finds work (rule 3).
// 2. At most half the workers search at once (`transitionToSearching`), so an idle
//    runtime with a trickle of work doesn't burn every core stealing from each other.
// 3. A searcher that finds work stops searching; if it was the last searcher it wakes
//    another worker, because more work may be waiting behind the item it found.
// 4. A worker parks in `transitionToParked`; if it was the last searcher it re-checks all
//    queues once more before sleeping (the caller does this), closing the window where
//    work was pushed while it was searching and nobody was woken (rule 1 saw a searcher).
// The counters are only ever changed under the lock or by the worker that owns the
// searching flag, so the fast path (rule 1 with a searcher present) is one atomic load.
import Synchronization

final class Idle: Sendable {
    private static let unparkShift = 16
    private static let searchMask: Int = (1 << 16) - 1

    let workerCount: Int
    /// (unparked << 16) | searching. Written under `sleepers`' lock, or by a searcher
    /// leaving the searching state (fetch-sub).
    private let state: Atomic<Int>
    /// guarded by lock: indices of parked workers.
    private let sleepers: Lock<[Int]>

    init(workerCount: Int) {
        precondition(workerCount < Idle.searchMask)
        self.workerCount = workerCount
        state = Atomic(workerCount << Idle.unparkShift)
        var list: [Int] = []
        list.reserveCapacity(workerCount)
        sleepers = Lock(list)
    }

    var unparkedCount: Int { state.load(ordering: .sequentiallyConsistent) >> Idle.unparkShift }
    var searchingCount: Int { state.load(ordering: .sequentiallyConsistent) & Idle.searchMask }

    private func shouldNotify() -> Bool {
        // The pusher stored its item (a queue's tail or length) and now loads `state`; a
        // parking worker updates `state` and then loads the queues. Without a full fence
        // between the pusher's store and load (store-load order, which release/acquire does
        // not give), both could miss each other and the work would sleep with the worker.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let s = state.load(ordering: .sequentiallyConsistent)
        return s & Idle.searchMask == 0 && s >> Idle.unparkShift < workerCount
    }

    /// Rule 1. Returns the worker to unpark, already counted as unparked and searching.
    /// Prefers a worker other than `avoiding` and `alsoAvoiding` (the Driver passes the
    /// worker blocked in the reactor and the timer keeper, which should stay where they
    /// are: they are the ones who notice events and deadlines while others are busy).
    func workerToNotify(avoiding: Int = -1, alsoAvoiding: Int = -1) -> Int? {
        if !shouldNotify() { return nil }
        return sleepers.withLock { list -> Int? in
            if !shouldNotify() || list.isEmpty { return nil }
            state.add(1 << Idle.unparkShift | 1, ordering: .sequentiallyConsistent)
            if let i = list.lastIndex(where: { $0 != avoiding && $0 != alsoAvoiding }) {
                return list.remove(at: i)
            }
            return list.removeLast()
        }
    }

    /// Rule 2. A compare-exchange loop: a load followed by an add let two workers both see
    /// room for one more searcher and exceed the cap.
    func transitionToSearching() -> Bool {
        var s = state.load(ordering: .sequentiallyConsistent)
        while true {
            if 2 * (s & Idle.searchMask) >= workerCount { return false }
            let (done, seen) = state.compareExchange(expected: s, desired: s + 1, ordering: .sequentiallyConsistent)
            if done { return true }
            s = seen
        }
    }

    /// Rule 3. Returns true if the caller was the last searcher.
    func transitionFromSearching() -> Bool {
        let prev = state.subtract(1, ordering: .sequentiallyConsistent).oldValue
        return prev & Idle.searchMask == 1
    }

    /// Rule 4. Returns (wasLastSearcher, unparkedAfter).
    func transitionToParked(_ index: Int, isSearching: Bool) -> (wasLastSearcher: Bool, unparkedAfter: Int) {
        sleepers.withLock { list in
            let dec = 1 << Idle.unparkShift | (isSearching ? 1 : 0)
            let prev = state.subtract(dec, ordering: .sequentiallyConsistent).oldValue
            list.append(index)
            return (isSearching && prev & Idle.searchMask == 1, (prev >> Idle.unparkShift) - 1)
        }
    }

    /// The worker woke for its own reasons (a timer fired): take it off the parked list if
    /// nobody did. Returns true if it was still listed (so it is not counted as searching).
    func unparkSelf(_ index: Int) -> Bool {
        sleepers.withLock { list in
            guard let i = list.firstIndex(of: index) else { return false }
            list.remove(at: i)
            state.add(1 << Idle.unparkShift, ordering: .sequentiallyConsistent)
            return true
        }
    }

    func isParked(_ index: Int) -> Bool {
        sleepers.withLock { $0.contains(index) }
    }

    /// Any parked worker at all (timer hand-over, the monitor's rescues)? Pops it, counted
    /// unparked+searching, preferring one other than `avoiding`.
    func anySleeper(avoiding: Int = -1) -> Int? {
        sleepers.withLock { list -> Int? in
            if list.isEmpty { return nil }
            state.add(1 << Idle.unparkShift | 1, ordering: .sequentiallyConsistent)
            if let i = list.lastIndex(where: { $0 != avoiding }) { return list.remove(at: i) }
            return list.removeLast()
        }
    }
}

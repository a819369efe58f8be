// Latch: a thread-blocking one-shot gate, for the runtime's own lifecycle waits. ("Signal"
// means POSIX signals only in Spindle: IO/Signals.swift.)
import Synchronization

/// A one-shot gate that many threads can wait for (the runtime stopped, a `run` finished).
/// Once opened it stays open. Waiters block on their own parkers.
final class Latch: Sendable {
    private let fired = Atomic<Bool>(false)
    private let waiters = Lock<[Parker]>([])

    var isOpen: Bool { fired.load(ordering: .acquiring) }

    func open() {
        let list: [Parker] = waiters.withLock { w in
            fired.store(true, ordering: .releasing)
            let l = w
            w.removeAll()
            return l
        }
        for p in list { p.unpark() }
    }

    /// Waits until opened or `deadline` (monotonic ns). Returns true if opened.
    @discardableResult
    func wait(deadline: Int64? = nil) -> Bool {
        if isOpen { return true }
        let me = Parker()
        let registered = waiters.withLock { w -> Bool in
            if fired.load(ordering: .acquiring) { return false }
            w.append(me)
            return true
        }
        if !registered { return true }
        while !isOpen {
            if let d = deadline {
                let left = d - Sys.nowNanos()
                if left <= 0 { break }
                me.park(timeoutNanos: left)
            } else {
                me.park()
            }
        }
        waiters.withLock { w in w.removeAll { $0 === me } }
        return isOpen
    }
}

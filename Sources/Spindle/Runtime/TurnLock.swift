// TurnLock: the current-thread flavour's rule that one thread at a time runs its worker
// loop (`Runtime.run`, `shutdown`); the others sleep on their own parkers.

/// The current-thread flavour's turn to drive the loop: one thread at a time; waiters
/// sleep, FIFO-ish.
final class TurnLock: Sendable {
    private struct State { var held = false; var waiters: [Parker] = [] }
    private let state = Lock(State())

    func acquire() {
        let me = Parker()
        while true {
            let got = state.withLock { s -> Bool in
                if !s.held { s.held = true; return true }
                s.waiters.append(me)
                return false
            }
            if got { return }
            me.park()
            state.withLock { s in s.waiters.removeAll { $0 === me } }
        }
    }

    func release() {
        let next = state.withLock { s -> Parker? in
            s.held = false
            return s.waiters.first
        }
        next?.unpark()
    }
}

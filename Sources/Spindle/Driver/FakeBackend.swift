// FakeBackend: a reactor backend driven by hand, for tests of the reactor's contract
// (token generations, wake-ups, dispatch) without the kernel. Events pushed with
// `inject` are returned by the next poll; a poll with no events waits for `wake()` or
// an injection, up to its timeout.
import Synchronization

final class FakeBackend: ReactorBackend, Sendable {
    private struct State {
        var registered: [Int32: UInt64] = [:]
        var pending: [(UInt64, Readiness)] = []
        var woken = false
        var polls = 0
    }
    /// guarded by lock
    private let state = Lock(State())
    private let parker = Parker()

    init() {}

    func register(fd: Int32, token: UInt64) throws(SysError) {
        state.withLock { $0.registered[fd] = token }
    }

    func deregister(fd: Int32) {
        _ = state.withLock { $0.registered.removeValue(forKey: fd) }
    }

    func poll(timeoutNanos: Int64?, _ body: (UInt64, Readiness) -> Void) {
        let deadline = timeoutNanos.map { Sys.nowNanos() + $0 }
        while true {
            let got = state.withLock { s -> [(UInt64, Readiness)]? in
                s.polls += 1
                if !s.pending.isEmpty || s.woken {
                    s.woken = false
                    defer { s.pending = [] }
                    return s.pending
                }
                return nil
            }
            if let got { for (t, r) in got { body(t, r) }; return }
            let now = Sys.nowNanos()
            if let d = deadline, now >= d { return }
            parker.park(timeoutNanos: deadline.map { $0 - now })
        }
    }

    func wake() {
        state.withLock { $0.woken = true }
        parker.unpark()
    }

    func close() {}

    // test hooks
    func inject(token: UInt64, _ r: Readiness) {
        state.withLock { $0.pending.append((token, r)) }
        parker.unpark()
    }
    func token(of fd: Int32) -> UInt64? { state.withLock { $0.registered[fd] } }
    var pollCount: Int { state.withLock { $0.polls } }
}

import Synchronization

/// A one-slot hand-off between two tasks: `signal` resumes the waiter, or leaves a token
/// for the next `wait`. The ping-pong benchmark bounces one of these each way.
final class Baton: Sendable {
    private struct State {
        var waiter: UnsafeContinuation<Void, Never>?
        var token = false
    }
    private let state = Mutex(State())

    func wait() async {
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.token { s.token = false; return true }
                s.waiter = c
                return false
            }
            if ready { c.resume() }
        }
    }

    func signal() {
        let w = state.withLock { s -> UnsafeContinuation<Void, Never>? in
            if let w = s.waiter { s.waiter = nil; return w }
            s.token = true
            return nil
        }
        w?.resume()
    }
}

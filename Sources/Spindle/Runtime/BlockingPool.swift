// BlockingPool: threads for work that blocks (file I/O, DNS, CPU-heavy or legacy blocking
// calls), so that it never occupies a worker.
//
// State (guarded by lock): a FIFO of closures, the number of threads, and the parkers of
// idle threads (LIFO, so the most recently used, cache-warm thread takes the next job and
// the others time out and exit). Submitting decides under the lock: hand the job to an
// idle thread, start a new thread if under the limit, or leave it queued for a busy
// thread to pick up; the wake-up or the thread start happens after unlocking.
// Idle threads exit after `keepAlive`; shutdown wakes them all so they exit once the
// queue is empty.
import DequeModule
import Synchronization

final class BlockingPool: Sendable {
    private struct State {
        var queue: Deque<@Sendable () -> Void> = []
        var threads = 0
        var idle: [Parker] = []
        var shutdown = false
    }

    private let state = Lock(State())
    let name: String
    let limit: Int
    let keepAlive: Int64

    init(name: String, limit: Int, keepAlive: Duration) {
        self.name = name
        self.limit = limit
        self.keepAlive = keepAlive.nanosecondsClamped
    }

    private enum Action { case none, wake(Parker), spawn }

    /// Queues `work`. Throws only if a new thread was needed and none could be started
    /// while no other thread exists to run the work.
    func submit(_ work: @escaping @Sendable () -> Void) throws(RuntimeError) {
        let action = state.withLock { s -> Action in
            s.queue.append(work)
            if let p = s.idle.popLast() { return .wake(p) }
            if s.threads < limit { s.threads += 1; return .spawn }
            return .none
        }
        switch action {
        case .none: break
        case .wake(let p): p.unpark()
        case .spawn:
            do {
                try OSThread.spawn(name: "\(name)-blk") { [self] in threadLoop() }
            } catch {
                let stranded = state.withLock { s -> (@Sendable () -> Void)? in
                    s.threads -= 1
                    // Others will pick the job up; if there are none, give it back.
                    return s.threads == 0 ? s.queue.popLast() : nil
                }
                if stranded != nil { throw .threadSpawnFailed(error) }
            }
        }
    }

    /// Threads currently alive (busy or idle).
    var threadCount: Int { state.withLock { $0.threads } }

    private enum Next { case run(@Sendable () -> Void), wait, exit }

    private func threadLoop() {
        let me = Parker()
        var idleSince: Int64 = 0
        while true {
            let next = state.withLock { s -> Next in
                if let w = s.queue.popFirst() {
                    s.idle.removeAll { $0 === me }
                    return .run(w)
                }
                let listed = s.idle.contains { $0 === me }
                if s.shutdown || (listed && Sys.nowNanos() - idleSince >= keepAlive) {
                    s.idle.removeAll { $0 === me }
                    s.threads -= 1
                    return .exit
                }
                if !listed { s.idle.append(me); idleSince = Sys.nowNanos() }
                return .wait
            }
            switch next {
            case .run(let w):
                if _slowPath(Trace.isOn) {
                    Trace.emit(.blockingStart, 0)
                    w()
                    Trace.emit(.blockingEnd, 0)
                } else {
                    w()
                }
            case .exit: return
            case .wait: me.park(timeoutNanos: max(0, idleSince + keepAlive - Sys.nowNanos()))
            }
        }
    }

    /// Lets idle threads exit; queued work still runs first.
    func shutdown() {
        let idle = state.withLock { s -> [Parker] in
            s.shutdown = true
            let l = s.idle
            s.idle.removeAll()
            return l
        }
        for p in idle { p.unpark() }
    }
}

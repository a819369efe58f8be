// EpollBackend: the Linux reactor backend. UNSAFE FILE: raw descriptors and a raw event
// buffer.
//
// One epoll instance per runtime, and one per worker (Reactor.swift), edge-triggered (EPOLLET): each descriptor is added once
// with IN | OUT | RDHUP and never modified, so a read or write never costs an epoll_ctl
// (Tokio's choice). An eventfd, also in the set, is the wake-up: `wake()` writes to it,
// which ends a poll in progress; the poller reads it back (in edge-triggered mode every
// write is a new edge, reading just keeps the counter small).
//
// Guarded state: none mutable besides the event buffer, which only the single poller
// touches (the reactor's driver token; a worker's own backend: that worker's thread).
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

final class EpollBackend: ReactorBackend, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `epfd`/`wakeFD` are immutable; `events` is used only
    // by the one thread holding the reactor's driver token (see the contract).
    let epfd: Int32
    let wakeFD: Int32
    private let events: UnsafeMutablePointer<epoll_event>

    init() throws(SysError) {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        if ep < 0 { throw SysError(errno: spindle_errno(), call: "epoll_create1") }
        let ev = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if ev < 0 {
            let e = spindle_errno()
            Glibc.close(ep)
            throw SysError(errno: e, call: "eventfd")
        }
        epfd = ep
        wakeFD = ev
        // SAFETY: a private buffer, freed in close().
        events = .allocate(capacity: Tuning.epollBatch)
        if spindle_epoll_ctl(ep, EPOLL_CTL_ADD, ev, EPOLLIN.rawValue | EPOLLET.rawValue, ReactorToken.wake) != 0 {
            let e = spindle_errno()
            Glibc.close(ep)
            Glibc.close(ev)
            events.deallocate()
            throw SysError(errno: e, call: "epoll_ctl")
        }
    }

    func register(fd: Int32, token: UInt64) throws(SysError) {
        let bits = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        _ = try Sys.call("epoll_ctl") { spindle_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, bits, token) }
    }

    func deregister(fd: Int32) {
        // Failure means the descriptor was not registered: nothing to undo.
        _ = spindle_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0, 0)
    }

    func poll(timeoutNanos: Int64?, _ body: (UInt64, Readiness) -> Void) {
        let n = spindle_epoll_wait(epfd, events, Int32(Tuning.epollBatch), timeoutNanos ?? -1)
        if n < 0 {
            let e = spindle_errno()
            if e == EINTR { return }
            spindleFatal("epoll_wait failed with errno \(e)")
        }
        for i in 0..<Int(n) {
            let token = spindle_epoll_event_token(events + i)
            if token == ReactorToken.wake {
                var count: UInt64 = 0
                _ = read(wakeFD, &count, 8)
                continue
            }
            let bits = spindle_epoll_event_bits(events + i)
            var r: Readiness = []
            if bits & (EPOLLIN.rawValue | EPOLLPRI.rawValue) != 0 { r.insert(.readable) }
            if bits & EPOLLOUT.rawValue != 0 { r.insert(.writable) }
            if bits & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { r.insert(.closed) }
            body(token, r)
        }
    }

    func wake() {
        var one: UInt64 = 1
        // EAGAIN (counter full) still leaves the descriptor readable: the wake is not lost.
        _ = write(wakeFD, &one, 8)
    }

    func close() {
        Glibc.close(epfd)
        Glibc.close(wakeFD)
        events.deallocate()
    }
}

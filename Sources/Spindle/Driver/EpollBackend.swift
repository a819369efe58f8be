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
        let ep = try Sys.epollCreate()
        let ev: Int32
        do { ev = try Sys.eventFD() } catch {
            Sys.closeDescriptor(ep)
            throw error
        }
        do {
            try Sys.epollAdd(ep, ev, events: EPOLLIN.rawValue | EPOLLET.rawValue, token: ReactorToken.wake)
        } catch {
            Sys.closeDescriptor(ep)
            Sys.closeDescriptor(ev)
            throw error
        }
        epfd = ep
        wakeFD = ev
        // SAFETY: a private buffer, freed in close().
        events = .allocate(capacity: Tuning.epollBatch)
    }

    func register(fd: Int32, token: UInt64) throws(SysError) {
        let bits = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        try Sys.epollAdd(epfd, fd, events: bits, token: token)
    }

    func deregister(fd: Int32) {
        Sys.epollDelete(epfd, fd)
    }

    func poll(timeoutNanos: Int64?, _ body: (UInt64, Readiness) -> Void) {
        let n = Sys.epollWait(epfd, events, capacity: Int32(Tuning.epollBatch), timeoutNanos: timeoutNanos ?? -1)
        for i in 0..<n {
            let token = spindle_epoll_event_token(events + i)
            if token == ReactorToken.wake {
                Sys.eventFDDrain(wakeFD)
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

    func wake() { Sys.eventFDSignal(wakeFD) }

    func close() {
        Sys.closeDescriptor(epfd)
        Sys.closeDescriptor(wakeFD)
        events.deallocate()
    }
}

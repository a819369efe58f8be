// FiberJoin: who waits for a fiber to finish (another fiber, a task, a plain thread). The
// list itself is a lock-free stack in FiberCore.joiners, closed when the fiber ends.
// UNSAFE FILE: see JoinWaiter's SAFETY note.

enum JoinList {
    static let closed: UInt = 1
}

/// Someone waiting for a fiber to finish: another fiber, a task, or a plain thread.
final class JoinWaiter: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `next` is written only before the waiter is published
    // by the CAS in addJoiner, and read only by closeJoiners after the list is closed.
    enum Kind {
        case fiber(FiberCore)
        case continuation(UnsafeContinuation<Void, Never>)
        case thread(Parker)
    }
    let kind: Kind
    var next: UInt = 0

    init(fiber: FiberCore) { kind = .fiber(fiber) }
    init(continuation: UnsafeContinuation<Void, Never>) { kind = .continuation(continuation) }
    init(parker: Parker) { kind = .thread(parker) }

    func fire() {
        switch kind {
        case .fiber(let f): f.wakeIfParked()
        case .continuation(let c): c.resume()
        case .thread(let p): p.unpark()
        }
    }
}

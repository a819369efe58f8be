// FiberJoin: who waits for a fiber to finish (another fiber, a task, a plain thread). The
// list itself is a lock-free stack in FiberCore.joiners, closed when the fiber ends.
// UNSAFE FILE: see JoinWaiter's SAFETY notes.
import Synchronization

enum JoinList {
    static let closed: UInt = 1
}

/// Someone waiting for a fiber to finish: another fiber, a task, or a plain thread.
///
/// A joining fiber is held through `fiberBits` (a retained reference, or 0), not the enum,
/// so that a joiner cancelled before its target ends can let go of itself at once
/// (`withdraw`): the node stays in the target's list until the target ends, but the
/// joining fiber, its stack and what its frames hold are freed when it ends.
final class JoinWaiter: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `next` is written only before the waiter is published
    // by the CAS in addJoiner, and read only by closeJoiners after the list is closed;
    // `fiberBits` is atomic and taken (exchanged to 0) exactly once.
    enum Kind {
        case fiber
        case continuation(UnsafeContinuation<Void, Never>)
        case thread(Parker)
    }
    let kind: Kind
    @exclusivity(unchecked) var next: UInt = 0
    /// The joining fiber, retained (Unmanaged), until fired, withdrawn or deinit.
    private let fiberBits = Atomic<UInt>(0)

    init(fiber: FiberCore) {
        kind = .fiber
        // Ownership: retained here, released by whichever of fire/withdraw/deinit takes it.
        // SAFETY: the bit pattern of a retained object pointer; taken back exactly once.
        fiberBits.store(UInt(bitPattern: Unmanaged.passRetained(fiber).toOpaque()), ordering: .relaxed)
    }
    /// A fiber's own waiter (`FiberCore.ownJoinWaiter`) made ready for its next join.
    /// Only when no list holds it any more (the caller checked it is uniquely referenced):
    /// its last list read `next` and took `fiberBits` before waking the fiber, which is
    /// what ordered those reads before this.
    func rearm(for fiber: FiberCore) {
        next = 0
        // SAFETY: as in init; `fiberBits` is 0 here (taken by fire or withdraw).
        fiberBits.store(UInt(bitPattern: Unmanaged.passRetained(fiber).toOpaque()), ordering: .relaxed)
    }

    init(continuation: UnsafeContinuation<Void, Never>) { kind = .continuation(continuation) }
    init(parker: Parker) { kind = .thread(parker) }

    deinit { _ = takeFiber() }

    private func takeFiber() -> FiberCore? {
        let bits = fiberBits.exchange(0, ordering: .acquiringAndReleasing)
        // SAFETY: a non-zero `bits` is the pointer init retained (nothing else is ever
        // stored); this takes back that retain, and the exchange makes this the only taker.
        guard bits != 0, let p = UnsafeMutableRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged<FiberCore>.fromOpaque(p).takeRetainedValue()
    }

    func fire() {
        switch kind {
        case .fiber: takeFiber()?.wakeIfParked()
        case .continuation(let c): c.resume()
        case .thread(let p): p.unpark()
        }
    }

    /// The joining fiber gave up (cancelled): drop the reference to it now.
    func withdraw() { _ = takeFiber() }
}

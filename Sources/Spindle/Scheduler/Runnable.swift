// Runnable: one word that names a unit of work in the run queues. UNSAFE FILE: bit casts
// and unretained object pointers.
//
// The queues hold machine words so that a slot can be an `Atomic<UInt>` (stealers read
// slots the owner may be writing next lap; atomics make that race-free for TSan and the
// memory model). The low two bits say what the rest of the word points to; every pointee
// is at least 16-byte aligned (Swift jobs and Swift objects), so those bits are free:
//   0  a Swift job (`UnownedJob`);
//   1  a fiber (`FiberCore`, unretained: a live fiber keeps itself alive until it ends,
//      and at most one word naming it is ever queued, see FiberCore's wake protocol);
//   2  a wake-up (`Wakeup`, retained by the word: whoever takes the word out of a queue
//      or the timer store owns that reference and must fire or release it).
import CSpindle

package struct Runnable: Sendable, Equatable {
    /// The tagged word.
    let bits: UInt

    static let kindMask: UInt = 3

    enum Kind { case swiftJob, fiber, wakeup }

    package init(bits: UInt) { self.bits = bits }

    init(_ job: UnownedJob) {
        // SAFETY: UnownedJob is a frozen single-pointer struct (Builtin.Job); its bit
        // pattern is the job's address, which is 16-byte aligned, so the tag bits are free.
        bits = unsafeBitCast(job, to: UInt.self)
    }

    init(fiber: FiberCore) {
        // SAFETY: unretained (see the kind table above); Swift objects are 16-byte aligned.
        bits = UInt(bitPattern: Unmanaged.passUnretained(fiber).toOpaque()) | 1
    }

    /// Takes a +1 reference to `wakeup`, owned by the word from now on.
    init(retaining wakeup: Wakeup) {
        // SAFETY: balanced by `takeWakeup()` exactly once (the word is consumed there).
        bits = UInt(bitPattern: Unmanaged.passRetained(wakeup).toOpaque()) | 2
    }

    @inline(__always)
    var kind: Kind {
        switch bits & Runnable.kindMask {
        case 0: return .swiftJob
        case 1: return .fiber
        default: return .wakeup
        }
    }

    var isSwiftJob: Bool { bits & Runnable.kindMask == 0 }

    var swiftJob: UnownedJob {
        // SAFETY: only called when isSwiftJob, so bits is exactly what init(_: UnownedJob)
        // stored; the job is still owned by the queue that handed us this word.
        unsafeBitCast(bits, to: UnownedJob.self)
    }

    /// The fiber's address (kind == .fiber).
    var fiberPointer: UnsafeRawPointer {
        UnsafeRawPointer(bitPattern: bits & ~Runnable.kindMask).unsafelyUnwrapped
    }

    var fiber: FiberCore {
        // SAFETY: kind == .fiber; the fiber is alive (it holds itself until it ends, and
        // it cannot end while a word naming it is queued).
        Unmanaged<FiberCore>.fromOpaque(UnsafeRawPointer(bitPattern: bits & ~Runnable.kindMask)!)
            .takeUnretainedValue()
    }

    /// Consumes the word's reference to its wake-up.
    func takeWakeup() -> Wakeup {
        // SAFETY: kind == .wakeup; balances the retain of init(retaining:).
        Unmanaged<Wakeup>.fromOpaque(UnsafeRawPointer(bitPattern: bits & ~Runnable.kindMask)!)
            .takeRetainedValue()
    }
}

/// Something to do when a timer fires, without running user code: it wakes a coroutine.
class Wakeup: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): subclasses hold only atomics and references to
    // thread-safe objects.
    func fire() {}

    /// The runtime stopped with this wake-up armed (`deadline`, monotonic ns) or about to
    /// fire: a task's wake-up must still happen, at its deadline, elsewhere (nothing is
    /// dropped); a fiber's cannot (its worker is gone), and a socket timeout's waiter was
    /// already failed by the reactor's shutdown. Default: drop it.
    func forwardAfterStop(deadline: Int64?) {}

    /// True if firing it resumes a task (which may then enqueue on its runtime).
    var resumesATask: Bool { false }
}

// Runnable: one word that names a unit of work in the run queues. UNSAFE FILE: bit casts.
//
// The queues hold machine words so that a slot can be an `Atomic<UInt>` (stealers read
// slots the owner may be writing next lap; atomics make that race-free for TSan and the
// memory model). Today a runnable is a Swift job (an `UnownedJob`, a pointer to the
// runtime's job object, at least 16-byte aligned). Bit 0 is reserved as a kind tag for the
// fiber work item that the fibers module adds, so the worker loop can tell them apart
// without a second queue.
import CSpindle

struct Runnable: Sendable, Equatable {
    /// The tagged word. Bit 0 clear: a Swift job pointer.
    let bits: UInt

    static let kindMask: UInt = 1

    init(bits: UInt) { self.bits = bits }

    init(_ job: UnownedJob) {
        // SAFETY: UnownedJob is a frozen single-pointer struct (Builtin.Job); its bit
        // pattern is the job's address, which is 16-byte aligned, so bit 0 is free.
        bits = unsafeBitCast(job, to: UInt.self)
    }

    var isSwiftJob: Bool { bits & Runnable.kindMask == 0 }

    var swiftJob: UnownedJob {
        // SAFETY: only called when isSwiftJob, so bits is exactly what init(_: UnownedJob)
        // stored; the job is still owned by the queue that handed us this word.
        unsafeBitCast(bits, to: UnownedJob.self)
    }
}

// FiberStack: memory for fiber stacks. UNSAFE FILE: raw pointers into mappings (the
// mapping calls themselves go through Sys).
//
// Each stack is one private anonymous mapping, MAP_NORESERVE (pages are committed only when
// touched: an idle fiber costs the pages its frames touched, typically one), with a guard
// region at its low end so an overflow faults instead of overwriting the neighbour. The
// guard is four pages, not one: it costs address space only, and a frame larger than a
// page (a big local buffer) can step over a one-page guard into the stack mapped below.
// The guard is installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which does not
// split the mapping: vm.max_map_count (65530 here) would otherwise cap us at ~32,700
// guarded stacks, because an mprotect'ed guard splits one mapping into two. On older kernels
// madvise fails with EINVAL and we fall back to mprotect(PROT_NONE).
import CSpindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// SAFETY (@unchecked Sendable): a plain description of a mapping; whoever holds the
// FiberStack owns the memory, and ownership moves with the value (pool → fiber → pool).
struct FiberStack: @unchecked Sendable {

    /// The whole mapping, guard page included.
    let mapping: UnsafeMutableRawPointer
    let mappingSize: Int
    /// Usable stack memory, above the guard.
    var base: UnsafeMutableRawPointer { mapping + FiberStack.guardSize }
    var size: Int { mappingSize - FiberStack.guardSize }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// Bytes of guard below every stack.
    static let guardSize = Tuning.fiberGuardPages * pageSize
    /// Linux's MADV_GUARD_INSTALL; not in Debian 12's headers.
    static let madvGuardInstall: Int32 = 102

    enum GuardKind: Equatable { case madvise, mprotect }

    /// Set once madvise(MADV_GUARD_INSTALL) has been refused (kernel older than 6.13); from
    /// then on guards are installed with mprotect. An atomic, since stacks are mapped from
    /// any thread; a racing allocation that still sees false just tries madvise once more.
    private static let madviseRefused = Atomic<Bool>(false)

    /// How guard pages are being installed in this process.
    static var guardKind: GuardKind {
        madviseRefused.load(ordering: .relaxed) ? .mprotect : .madvise
    }

    /// Maps a stack with `size` usable bytes (rounded up to pages) plus the guard.
    static func allocate(size: Int) throws(SysError) -> FiberStack {
        let usable = (max(size, pageSize) + pageSize - 1) / pageSize * pageSize
        let total = usable + guardSize
        let p = try Sys.mapStack(size: total)
        if guardKind == .madvise {
            do {
                try Sys.advise(p, size: guardSize, madvGuardInstall)
                return FiberStack(mapping: p, mappingSize: total)
            } catch where error.errno == EINVAL {
                madviseRefused.store(true, ordering: .relaxed)
            } catch {
                Sys.unmap(p, size: total)
                throw error
            }
        }
        do {
            try Sys.protectNone(p, size: guardSize)
        } catch {
            Sys.unmap(p, size: total)
            throw error
        }
        return FiberStack(mapping: p, mappingSize: total)
    }

    /// Unmaps the stack. The caller must own it and nothing may run on it.
    func release() {
        Sys.unmap(mapping, size: mappingSize)
    }
}

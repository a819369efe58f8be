// FiberStack: memory for fiber stacks, carved from large arenas. UNSAFE FILE: raw
// pointers into mappings (the mapping calls themselves go through Sys).
//
// Why arenas. A stack that is its own mapping (one VMA) works only while the kernel
// merges neighbouring mappings: it does when they are created next to each other, but
// unmapping stacks out of order splits the merged mapping at every hole, and once the
// process has vm.max_map_count (65530 here) mappings munmap itself fails with ENOMEM.
// 400,000 parked fibers released in random order got there within seconds. So stacks
// never depend on merging: the number of mappings grows with the number of chunks below,
// not with the number of stacks or the order they come back in.
//
// Layout. Every stack is a slot: a guard region at its low end, then `size` usable bytes
// (the context lives in the top bytes, Worker+Fibers.swift). The guard is four pages, not
// one: it costs address space only, and a frame larger than a page (a big local buffer)
// can step over a one-page guard into the slot below. Slots of one usable size form a
// size class (`StackClass`, one per distinct size, process-wide, created on first use);
// a class maps chunks of `Tuning.fiberStackChunkBytes` (one mmap each, MAP_NORESERVE:
// address space only, pages are committed when touched) and cuts them into slots. A slot's
// guard is installed the first time the slot is lent, with madvise(MADV_GUARD_INSTALL)
// (Linux 6.13+), which does not split the mapping, and stays for the chunk's lifetime.
// Kernels that refuse it (EINVAL) get mprotect(PROT_NONE) guards instead, as before
// arenas; each splits its chunk's mapping, so with that fallback the process holds at
// most about vm.max_map_count / 2 (~32,700) guarded stacks however they are carved, and
// past that a spawn fails with FiberError.stackUnavailable.
//
// Free lists, and who keeps pages. A fiber's stack goes back first to its worker's pool
// (Worker+Fibers.swift, owner-only, at most `Tuning.fiberStackPoolLimit`), which keeps
// the pages its fiber touched so the next fiber on that worker runs on warm memory with no
// syscall. Past that, or when the worker goes away, the stack goes back to its class: its
// pages are given back with madvise(MADV_DONTNEED) (one syscall, ~1.9 µs here, versus
// ~9 µs for the munmap of a single-stack mapping) and the slot joins its chunk's free list
// (under the class's lock, which is also held for the first-use guard and for mapping a
// chunk). A class lends from the chunk most recently given a slot back, so a fiber that
// ends and one that starts reuse the same slot.
//
// Sizes. Stacks up to `Tuning.fiberStackArenaMaxSize` (1 MiB usable) come from classes:
// every default-size stack, every generator's, and the usual explicit sizes. A bigger
// stack (spawnFiber(stackSize:) for deep recursion) is rare and costs megabytes of
// address space each, so it keeps a dedicated mapping (mmap + guard, munmap when
// released): such mappings can split only by their own holes, so their number stays below
// the number of big stacks alive. Size classes were rejected for them: a chunk holding a
// few 16 MiB slots saves no mapping and pins a lot of address space.
//
// What is freed when. A stack's pages: when it reaches its class (see above). A chunk:
// unmapped as soon as its last slot comes back, unless its class already keeps
// `Tuning.fiberStackSpareChunks` empty chunks (those stay mapped: address space, and the
// page tables holding their slots' guard markers, ~128 KiB per 64 MiB chunk). A slot
// resting in a worker's pool is lent, so it keeps its chunk mapped: after 1M fibers ended
// in random order on two workers, their 256 pooled stacks held ~200 chunks (~31 MiB of
// page tables, versus ~158 MiB with the fibers alive) until those stacks were reused
// or the runtime ended, which gave everything back (within 20 mappings of before). A class
// object: never (a few hundred bytes, one per distinct size used). Classes are shared by
// every runtime, generator and test in the process, so what one runtime gave back the
// next reuses; a runtime's lifetime frees its workers' pools (Worker.deinit) into them.
//
// Failures. None on a path a workload can reach is fatal: a failed mmap or guard throws
// (the spawn fails with stackUnavailable); a failed MADV_DONTNEED leaves the slot its
// pages (counted in `Stats.adviseFailures`, the slot is still reused); a chunk whose
// munmap fails (ENOMEM: the process is at vm.max_map_count, possible only with mprotect
// guards) stays mapped and empty, still lendable (counted); a dedicated stack whose munmap
// fails has its pages given back and its address range leaked on purpose (counted). Only
// a stack given back to a class that did not lend it, or twice, stops the process: the
// runtime's ownership of stacks (pool → fiber → pool) would be broken.
import CSpindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// SAFETY (@unchecked Sendable): a plain description of a slot or mapping; whoever holds
// the FiberStack owns the memory, and ownership moves with the value (class or pool →
// fiber → pool or class). Copies are not owners: exactly one is given back.
struct FiberStack: @unchecked Sendable {

    /// The whole slot or mapping, guard included.
    let mapping: UnsafeMutableRawPointer
    var mappingSize: Int { Int(mappingPages) &* FiberStack.pageSize }
    /// The size in pages and the chunk index: 8 bytes for both, so a stack is two words
    /// as it was with a mapping each (every FiberCore holds one: fiber.memory sees it).
    private let mappingPages: UInt32
    /// The chunk that holds it, in the class of its size (an index into that class's
    /// chunk table); -1 for a dedicated mapping.
    let chunk: Int32

    init(mapping: UnsafeMutableRawPointer, mappingSize: Int, chunk: Int32) {
        self.mapping = mapping
        self.mappingPages = UInt32(mappingSize / FiberStack.pageSize)
        self.chunk = chunk
    }

    /// The class that lent it, nil for a dedicated mapping.
    var home: StackClass? { chunk < 0 ? nil : StackClass.forUsableSize(size) }

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
    /// then on guards are installed with mprotect. An atomic, since stacks are lent from
    /// any thread; a racing allocation that still sees false just tries madvise once more.
    private static let madviseRefused = Atomic<Bool>(false)

    /// How guard pages are being installed in this process.
    static var guardKind: GuardKind {
        madviseRefused.load(ordering: .relaxed) ? .mprotect : .madvise
    }

    /// Dedicated mappings whose munmap failed: their pages were given back, their address
    /// ranges leaked on purpose.
    static let leakedMappings = Atomic<Int>(0)

    /// A stack with at least `size` usable bytes (rounded up to pages) above its guard: a
    /// slot of its size class, or a dedicated mapping for sizes above
    /// `Tuning.fiberStackArenaMaxSize`. Its memory reads as zero where nothing has run on
    /// it since its pages were last given back; a slot reused without that may hold old
    /// bytes (the caller initializes what it reads).
    static func allocate(size: Int) throws(SysError) -> FiberStack {
        // Past 2^31 pages (8 TiB) no mapping could succeed anyway; refusing keeps the page
        // count in 32 bits and the rounding below from overflowing.
        guard size <= Int(UInt32.max / 2) * pageSize else { throw SysError(errno: ENOMEM, call: "mmap") }
        let usable = (max(size, pageSize) + pageSize - 1) / pageSize * pageSize
        if let c = StackClass.forUsableSize(usable) { return try c.take() }
        let total = usable + guardSize
        let p = try Sys.mapStack(size: total)
        do {
            try installGuard(at: p)
        } catch {
            unmapOrLeak(p, size: total)
            throw error
        }
        return FiberStack(mapping: p, mappingSize: total, chunk: -1)
    }

    /// Gives the stack back. The caller must own it and nothing may run on it.
    func release() {
        if let home {
            home.give(self)
        } else {
            FiberStack.unmapOrLeak(mapping, size: mappingSize)
        }
    }

    /// Guard pages at `p` (`guardSize` bytes): MADV_GUARD_INSTALL, or mprotect once the
    /// kernel has refused that (see the header for what the fallback costs).
    static func installGuard(at p: UnsafeMutableRawPointer) throws(SysError) {
        if guardKind == .madvise {
            do {
                try Sys.advise(p, size: guardSize, madvGuardInstall)
                return
            } catch {
                if error.errno != EINVAL { throw error }
                madviseRefused.store(true, ordering: .relaxed)
            }
        }
        try Sys.protectNone(p, size: guardSize)
    }

    /// Unmaps a dedicated mapping; if the kernel refuses (ENOMEM: the unmap would split a
    /// mapping and the process is at vm.max_map_count), gives its pages back and leaks the
    /// address range on purpose: it is not reused, and it costs no memory.
    static func unmapOrLeak(_ p: UnsafeMutableRawPointer, size: Int) {
        do {
            try Sys.unmap(p, size: size)
        } catch {
            _ = try? Sys.advise(p, size: size, MADV_DONTNEED)
            leakedMappings.add(1, ordering: .relaxed)
        }
    }
}

/// All the stacks of one usable size: chunks of slots, and which slots are free. See the
/// file header. Everything mutable is under `state`'s lock.
final class StackClass: Sendable {
    /// Usable bytes of every stack in this class.
    let usableSize: Int
    /// Guard plus usable bytes.
    let slotSize: Int
    let slotsPerChunk: Int
    var chunkBytes: Int { slotsPerChunk * slotSize }

    struct Chunk {
        let base: UnsafeMutableRawPointer
        /// Slots [0, carved) have their guard; the others have never been lent.
        var carved = 0
        /// Carved slots given back, most recent last.
        var free: [Int32] = []
        /// One bit per slot: lent out now (catches a stack given back twice).
        var lent: [UInt64]
        /// Slots lent out now (in a pool or on a fiber).
        var outstanding = 0
        /// Position in `State.available`, or -1 while every slot is lent.
        var listed = -1

        init(base: UnsafeMutableRawPointer, slots: Int) {
            self.base = base
            lent = Array(repeating: 0, count: (slots + 63) / 64)
        }
    }

    /// What `Stats` reports, plus the bookkeeping.
    struct State {
        /// Index → chunk; nil entries are vacant (an unmapped chunk's index, reused).
        var chunks: [Chunk?] = []
        var vacant: [Int32] = []
        /// Chunks with a slot to lend (free or never carved); lending takes the last.
        var available: [Int32] = []
        /// Mapped chunks with no slot lent.
        var emptyChunks = 0
        var stats = Stats()
    }

    struct Stats: Equatable {
        /// Chunks mapped now.
        var chunks = 0
        /// Slots lent out now.
        var lent = 0
        /// Chunks unmapped so far (their last slot came back and a spare was kept).
        var chunksUnmapped = 0
        /// MADV_DONTNEED calls that failed (those slots kept their pages).
        var adviseFailures = 0
        /// Chunk unmaps that failed (those chunks stayed, empty and lendable).
        var unmapFailures = 0
    }

    private let state = Lock(State())

    private init(usableSize: Int) {
        self.usableSize = usableSize
        slotSize = usableSize + FiberStack.guardSize
        slotsPerChunk = max(1, Tuning.fiberStackChunkBytes / slotSize)
    }

    /// Every class, by usable size; entries are never removed (a stack finds its class by
    /// its size, FiberStack.home).
    private static let registry = Lock<[Int: StackClass]>([:])

    /// The class for stacks of `usable` bytes (page-rounded), or nil when that size gets
    /// a dedicated mapping.
    static func forUsableSize(_ usable: Int) -> StackClass? {
        if usable > Tuning.fiberStackArenaMaxSize { return nil }
        return registry.withLock { r in
            if let c = r[usable] { return c }
            let c = StackClass(usableSize: usable)
            r[usable] = c
            return c
        }
    }

    var stats: Stats { state.withLock { $0.stats } }

    /// Lends a slot: a free one of the chunk most recently given one back, else the next
    /// never-used slot (its guard installed now), else a slot of a new chunk.
    func take() throws(SysError) -> FiberStack {
        try state.withLock { (s: inout State) throws(SysError) -> FiberStack in
            if s.available.isEmpty { try mapChunk(&s) }
            let ci = Int(s.available[s.available.count - 1])
            let base = s.chunks[ci]!.base   // listed chunks are mapped (unlisted first)
            let slot: Int
            if let f = s.chunks[ci]!.free.popLast() {
                slot = Int(f)
            } else {
                slot = s.chunks[ci]!.carved
                // SAFETY: slot < slotsPerChunk (the chunk is listed and has no free slot,
                // so it has an uncarved one): its guard lies inside the chunk. If this
                // throws nothing has changed: the slot stays uncarved, tried again later.
                try FiberStack.installGuard(at: base + slot * slotSize)
                s.chunks[ci]!.carved += 1
            }
            if s.chunks[ci]!.outstanding == 0 { s.emptyChunks -= 1 }
            s.chunks[ci]!.outstanding += 1
            s.chunks[ci]!.lent[slot >> 6] |= 1 << UInt64(slot & 63)
            s.stats.lent += 1
            if s.chunks[ci]!.free.isEmpty && s.chunks[ci]!.carved == slotsPerChunk { unlist(ci, &s) }
            // SAFETY: slot < slotsPerChunk: the slot lies inside the chunk's mapping.
            return FiberStack(mapping: base + slot * slotSize, mappingSize: slotSize, chunk: Int32(ci))
        }
    }

    /// Takes a slot back: its pages go back to the kernel, the slot to its chunk's free
    /// list; an empty chunk is unmapped unless it is one of the spares.
    func give(_ stack: FiberStack) {
        // Pages first: once listed, the slot may be lent to another thread at once.
        // SAFETY: the caller owns the stack and nothing runs on it (FiberStack.release).
        spindle_stack_recycled(stack.base, stack.size)
        let pagesReturned = (try? Sys.advise(stack.base, size: stack.size, MADV_DONTNEED)) != nil
        state.withLock { s in
            if !pagesReturned { s.stats.adviseFailures += 1 }
            let ci = Int(stack.chunk)
            guard stack.mappingSize == slotSize, ci >= 0, ci < s.chunks.count,
                  let base = s.chunks[ci]?.base, stack.mapping >= base, stack.mapping < base + chunkBytes else {
                spindleFatal("a fiber stack was given back to an arena that did not lend it")
            }
            let slot = (stack.mapping - base) / slotSize
            let bit: UInt64 = 1 << UInt64(slot & 63)
            if s.chunks[ci]!.lent[slot >> 6] & bit == 0 {
                spindleFatal("a fiber stack was given back twice")
            }
            s.chunks[ci]!.lent[slot >> 6] &= ~bit
            s.chunks[ci]!.free.append(Int32(slot))
            s.chunks[ci]!.outstanding -= 1
            s.stats.lent -= 1
            if s.chunks[ci]!.listed < 0 {
                list(ci, &s)
            } else if s.available[s.available.count - 1] != Int32(ci) {
                // Most recently given back lends first (warm slots, and chunks that stay
                // unused drain towards empty).
                unlist(ci, &s)
                list(ci, &s)
            }
            if s.chunks[ci]!.outstanding == 0 {
                s.emptyChunks += 1
                if s.emptyChunks > Tuning.fiberStackSpareChunks { unmapChunk(ci, &s) }
            }
        }
    }

    private func mapChunk(_ s: inout State) throws(SysError) {
        let p = try Sys.mapStack(size: chunkBytes)
        let chunk = Chunk(base: p, slots: slotsPerChunk)
        let ci: Int
        if let v = s.vacant.popLast() {
            ci = Int(v)
            s.chunks[ci] = chunk
        } else {
            ci = s.chunks.count
            s.chunks.append(chunk)
        }
        list(ci, &s)
        s.emptyChunks += 1
        s.stats.chunks += 1
    }

    private func unmapChunk(_ ci: Int, _ s: inout State) {
        let base = s.chunks[ci]!.base
        do {
            // SAFETY: a mapped chunk with nothing lent: no stack points into it, and it
            // is unlisted below, so nothing can lend from it again.
            try Sys.unmap(base, size: chunkBytes)
        } catch {
            // ENOMEM (at vm.max_map_count, mprotect guards only): keep it, empty and
            // listed; it is lent from again like any other chunk.
            s.stats.unmapFailures += 1
            return
        }
        unlist(ci, &s)
        s.chunks[ci] = nil
        s.vacant.append(Int32(ci))
        s.emptyChunks -= 1
        s.stats.chunks -= 1
        s.stats.chunksUnmapped += 1
    }

    private func list(_ ci: Int, _ s: inout State) {
        s.chunks[ci]!.listed = s.available.count
        s.available.append(Int32(ci))
    }

    private func unlist(_ ci: Int, _ s: inout State) {
        let at = s.chunks[ci]!.listed
        let last = s.available.removeLast()
        if Int(last) != ci {
            s.available[at] = last
            s.chunks[Int(last)]!.listed = at
        }
        s.chunks[ci]!.listed = -1
    }
}

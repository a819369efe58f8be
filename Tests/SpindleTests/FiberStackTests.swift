// Fiber stacks at scale: many fibers alive at once and released in any order must not
// cost the process a memory mapping each (vm.max_map_count is 65530 here, and running
// out makes munmap and mmap fail). The mapping count is read from /proc/self/maps.
@testable import Spindle
import CSpindleTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Counts arrivals and opens a latch when `target` is reached, so a test thread can wait
/// for "all fibers got here" without sleeping.
final class Countdown: Sendable {
    private let count = Atomic<Int>(0)
    private let target: Int
    let reached = Latch()

    init(target: Int) {
        self.target = target
        if target == 0 { reached.open() }
    }

    func arrive() {
        if count.add(1, ordering: .acquiringAndReleasing).newValue == target { reached.open() }
    }

    var value: Int { count.load(ordering: .acquiring) }
}

/// A small seeded generator (SplitMix64), so a failing order can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite(.serialized) struct FiberStackTests {
    /// Lines of /proc/self/maps: one per mapping (VMA). Reads the whole file (it can be
    /// several MiB near the limit; Sys.readSmallFile stops at 1 MiB).
    static func mappingCount() -> Int {
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        if fd < 0 { return -1 }
        defer { close(fd) }
        var lines = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            // SAFETY: the buffer is live and `count` bytes long for the duration of the call.
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            for i in 0..<n where buffer[i] == 0x0A { lines += 1 }
        }
        return lines
    }

    /// The most mappings a test may add above its baseline. Arenas: a chunk per few
    /// hundred stacks at most, so a few thousand covers 1M fibers. mprotect guards (kernels
    /// without MADV_GUARD_INSTALL) split a mapping per stack: two per stack. ASan with fake
    /// stacks (its default) maps a fake stack per fiber and unmaps it as the fiber ends, so
    /// its own mappings fragment as ours used to, up to one per live fiber (measured at
    /// 100k fibers: a peak of 25,608 mappings with them, 357 with
    /// detect_stack_use_after_return=0); the arena's own chunk count is checked apart.
    static func allowance(fibers: Int) -> Int {
        var a = 4_000
        if guardKind == .mprotect { a += 2 * fibers }
        if spindle_test_asan_fake_stacks() != 0 { a += fibers }
        return a
    }

    /// How many fibers a test may keep alive: with mprotect guards every stack costs two
    /// mappings, so stay well under vm.max_map_count.
    static func cap(_ n: Int) -> Int {
        guardKind == .madvise ? n : min(n, 10_000)
    }

    /// How this process installs guards: known only once a guard has been installed (the
    /// first refusal of MADV_GUARD_INSTALL switches to mprotect), so lend one stack first.
    static let guardKind: FiberStack.GuardKind = {
        if let s = try? FiberStack.allocate(size: 64 * 1024) { s.release() }
        return FiberStack.guardKind
    }()

    /// Waits until `latch` opens (at most `seconds`), sampling the mapping count into
    /// `peak` every 20 ms meanwhile. Returns whether it opened.
    static func wait(_ latch: Latch, seconds: Int64, peak: inout Int) -> Bool {
        let giveUp = Sys.nowNanos() + seconds * 1_000_000_000
        while true {
            if latch.wait(deadline: min(giveUp, Sys.nowNanos() + 20_000_000)) { return true }
            peak = max(peak, mappingCount())
            if Sys.nowNanos() >= giveUp { return false }
        }
    }

    /// Waits for every fiber of `rt` to have ended (its stack given back).
    static func waitForNoLiveFibers(_ rt: Runtime, seconds: Int64) -> Bool {
        let giveUp = Sys.nowNanos() + seconds * 1_000_000_000
        while rt.liveFiberCount.load(ordering: .acquiring) != 0 {
            if Sys.nowNanos() >= giveUp { return false }
            sched_yield()
        }
        return true
    }

    /// "VmPTE" (page tables) and "VmRSS" from /proc/self/status, in KiB, for the log line.
    static func status(_ key: String) -> Int {
        let text = Sys.readSmallFile("/proc/self/status") ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return -1 }
        return Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? -1
    }

    @Test func millionParkedFibersReleasedInRandomOrderKeepTheMappingCountBounded() throws {
        let n = Self.cap(1_000_000 / testScale)
        let baseline = Self.mappingCount()
        let bound = baseline + Self.allowance(fibers: n)
        let arena = try #require(StackClass.forUsableSize(FiberStack.usableSize(for: Runtime.Configuration().fiberStackSize)))
        let lentBefore = arena.stats.lent
        let chunksBefore = arena.stats.chunks
        var peak = baseline
        var log = "FiberStackTests: \(n) fibers: mappings baseline \(baseline)"
        do {
            let rt = try Runtime(flavor: .multiThread, workers: 2)
            defer { rt.shutdown() }
            let t0 = Sys.nowNanos()
            // Each fiber waits on its own oneshot, so the test decides the order they end in.
            let gates = (0..<n).map { _ in Oneshot<Void>() }
            let parked = Countdown(target: n), ended = Countdown(target: n)
            for i in 0..<n {
                rt.spawnFiber {
                    parked.arrive()
                    try gates[i].receive()
                    ended.arrive()
                }
            }
            let allParked = Self.wait(parked.reached, seconds: 300, peak: &peak)
            #expect(allParked, "\(parked.value) of \(n) fibers started")
            let whileParked = Self.mappingCount()
            #expect(whileParked <= bound, "\(whileParked) mappings with \(n) fibers parked (baseline \(baseline))")
            // The arena itself: one chunk per slotsPerChunk stacks, whatever else maps.
            let chunks = arena.stats.chunks - chunksBefore
            #expect(chunks <= (n + arena.slotsPerChunk - 1) / arena.slotsPerChunk + 1, "\(chunks) chunks for \(n) stacks")
            log += ", parked \(whileParked) (VmPTE \(Self.status("VmPTE")) KiB, VmRSS \(Self.status("VmRSS")) KiB)"
            let t1 = Sys.nowNanos()

            var order = Array(0..<n)
            var rng = SplitMix64(state: 0x5EED)
            order.shuffle(using: &rng)
            for (k, i) in order.enumerated() {
                try gates[i].send(())
                if k % 20_000 == 0 { peak = max(peak, Self.mappingCount()) }
            }
            let allEnded = Self.wait(ended.reached, seconds: 300, peak: &peak)
            #expect(allEnded, "\(ended.value) of \(n) fibers ended")
            #expect(Self.waitForNoLiveFibers(rt, seconds: 60))
            let afterRelease = Self.mappingCount()
            peak = max(peak, whileParked, afterRelease)
            #expect(afterRelease <= bound, "\(afterRelease) mappings after release (baseline \(baseline))")
            let t2 = Sys.nowNanos()
            log += ", released \(afterRelease) (VmPTE \(Self.status("VmPTE")) KiB), peak \(peak); "
                + "spawn+park \((t1 - t0) / 1_000_000) ms, release \((t2 - t1) / 1_000_000) ms"
        }
        #expect(peak <= bound, "peak of \(peak) mappings (baseline \(baseline)) while \(n) fibers were released in random order")
        // The runtime is gone: its workers' pools went back to the arena, whose empty
        // chunks were unmapped (one spare per size class stays). The slack is for what
        // the runtime's threads leave behind (malloc keeps their arenas: ~20 measured).
        // The pools are given back as the runtime's last reference goes, which may be on
        // one of its threads as it exits: wait for the arena to have them.
        let giveUp = Sys.nowNanos() + 10_000_000_000
        while arena.stats.lent > lentBefore && Sys.nowNanos() < giveUp { sched_yield() }
        #expect(arena.stats.lent <= lentBefore)
        let afterRuntime = Self.mappingCount()
        // With mprotect guards the spare chunk keeps its guards' splits: two per slot.
        let spares = Self.guardKind == .mprotect ? 2 * arena.slotsPerChunk * Tuning.fiberStackSpareChunks : 0
        #expect(afterRuntime <= baseline + 64 + spares, "\(afterRuntime) mappings once the runtime is gone (baseline \(baseline))")
        print(log + "; runtime gone: \(afterRuntime) (VmPTE \(Self.status("VmPTE")) KiB)")
    }

    @Test func churnedFibersEndingOutOfOrderKeepTheMappingCountBounded() throws {
        let population = Self.cap(200_000 / testScale)
        let rounds = 3
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let t0 = Sys.nowNanos()
        let baseline = Self.mappingCount()
        let bound = baseline + Self.allowance(fibers: population)
        var rng = SplitMix64(state: 0xC0FFEE)
        var peak = baseline

        // Starts a fiber parked on its own oneshot; what is sent there is the countdown it
        // arrives at as it ends.
        func spawnParked(_ parked: Countdown) -> Oneshot<Countdown> {
            let gate = Oneshot<Countdown>()
            rt.spawnFiber {
                parked.arrive()
                try gate.receive().arrive()
            }
            return gate
        }

        var parked = Countdown(target: population)
        var gates = (0..<population).map { _ in spawnParked(parked) }
        #expect(Self.wait(parked.reached, seconds: 120, peak: &peak), "\(parked.value) of \(population) started")
        for round in 0..<rounds {
            // Half the fibers, picked at random, end (their stacks come back in no
            // particular address order, far more than a worker's pool keeps); then as
            // many new ones start, reusing whatever the ends left.
            let victims = (0..<population).shuffled(using: &rng).prefix(population / 2)
            let ended = Countdown(target: victims.count)
            for (k, v) in victims.enumerated() {
                try gates[v].send(ended)
                if k % 20_000 == 0 { peak = max(peak, Self.mappingCount()) }
            }
            #expect(Self.wait(ended.reached, seconds: 120, peak: &peak), "round \(round): \(ended.value) of \(victims.count) ended")
            peak = max(peak, Self.mappingCount())
            parked = Countdown(target: victims.count)
            for (k, v) in victims.enumerated() {
                gates[v] = spawnParked(parked)
                if k % 20_000 == 0 { peak = max(peak, Self.mappingCount()) }
            }
            #expect(Self.wait(parked.reached, seconds: 120, peak: &peak), "round \(round): \(parked.value) of \(victims.count) replacements started")
            peak = max(peak, Self.mappingCount())
        }
        let ended = Countdown(target: population)
        for g in gates { try g.send(ended) }
        #expect(Self.wait(ended.reached, seconds: 120, peak: &peak))
        #expect(Self.waitForNoLiveFibers(rt, seconds: 60))
        let after = Self.mappingCount()
        peak = max(peak, after)
        #expect(peak <= bound, "peak of \(peak) mappings (baseline \(baseline)) while \(population) fibers churned")
        #expect(after <= bound, "\(after) mappings after the churn (baseline \(baseline))")
        print("FiberStackTests: churn of \(population) fibers × \(rounds) rounds: mappings baseline \(baseline), peak \(peak), after \(after); "
              + "VmPTE/VmRSS KiB \(Self.status("VmPTE"))/\(Self.status("VmRSS")); \((Sys.nowNanos() - t0) / 1_000_000) ms")
    }

    /// Whether the page at `p` is resident (mincore).
    static func isResident(_ p: UnsafeMutableRawPointer) -> Bool {
        var v: UInt8 = 0
        // SAFETY: mincore only inspects the address range; `p` lies in a mapping we own.
        let page = UnsafeMutableRawPointer(bitPattern: UInt(bitPattern: p) & ~UInt(FiberStack.pageSize - 1))!
        return mincore(page, FiberStack.pageSize, &v) == 0 && v & 1 == 1
    }

    @Test func arenaSlotsKeepTheirGuardGiveTheirPagesBackAndEmptyChunksAreUnmapped() throws {
        // A size no other test uses, so this test owns the class.
        let usable = 20 * 1024
        let c = try #require(StackClass.forUsableSize(usable))
        #expect(c.stats == StackClass.Stats())
        let count = c.slotsPerChunk * 3 + 7
        var stacks: [FiberStack] = []
        for _ in 0..<count { stacks.append(try FiberStack.allocate(size: usable)) }
        #expect(c.stats.chunks == 4 && c.stats.lent == count)
        #expect(Set(stacks.map { UInt(bitPattern: $0.mapping) }).count == count)
        for s in stacks {
            #expect(s.size == usable)
            #expect(s.home === c)
        }
        // Touch one, give it back: its page is no longer resident, and the next stack lent
        // is that slot, guard still in place, reading zero.
        // SAFETY: the stacks are this test's (its own size class, nothing else lends from
        // it); the probe is read after release only through mincore, and again once lent.
        let probe = stacks.removeLast()
        probe.base.storeBytes(of: 0xAB, as: UInt8.self)
        #expect(Self.isResident(probe.base))
        probe.release()
        #expect(!Self.isResident(probe.base))
        let again = try FiberStack.allocate(size: usable)
        #expect(again.mapping == probe.mapping)
        #expect(again.base.load(as: UInt8.self) == 0)
        #expect(FiberSwitchTests.isReadable(again.mapping) == false)
        #expect(FiberSwitchTests.isReadable(again.mapping + FiberStack.guardSize - 1) == false)
        #expect(FiberSwitchTests.isReadable(again.base))
        stacks.append(again)

        // Everything back in random order: all chunks but one spare are unmapped.
        var rng = SplitMix64(state: 7)
        stacks.shuffle(using: &rng)
        for s in stacks { s.release() }
        let st = c.stats
        #expect(st.lent == 0)
        #expect(st.chunks == Tuning.fiberStackSpareChunks, "\(st)")
        #expect(st.chunksUnmapped == 4 - Tuning.fiberStackSpareChunks)
        #expect(st.adviseFailures == 0 && st.unmapFailures == 0)
        // And the arena lends again, from the spare first.
        let last = try FiberStack.allocate(size: usable)
        #expect(c.stats.chunks == Tuning.fiberStackSpareChunks && c.stats.lent == 1)
        last.release()
    }

    @Test func aStackDescriptionStaysTwoWords() {
        // Every FiberCore holds one: the fiber.memory figure sees each extra word.
        #expect(MemoryLayout<FiberStack?>.size <= 2 * MemoryLayout<Int>.size)
    }

    @Test func bigStacksGetTheirOwnMapping() throws {
        let big = Tuning.fiberStackArenaMaxSize + FiberStack.pageSize
        #expect(StackClass.forUsableSize(big) == nil)
        let before = Self.mappingCount()
        let s = try FiberStack.allocate(size: big)
        #expect(s.home == nil && s.size == big)
        #expect(FiberSwitchTests.isReadable(s.mapping) == false)
        #expect(FiberSwitchTests.isReadable(s.base + big - 1))
        s.release()
        #expect(Self.mappingCount() <= before)
        #expect(FiberStack.leakedMappings.load(ordering: .relaxed) == 0)
    }
}

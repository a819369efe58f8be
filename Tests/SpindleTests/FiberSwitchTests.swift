// The lowest fiber layer: the assembly context switch, its C wrapper, guarded stacks.
@testable import Spindle
import CSpindle
import CSpindleTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One fiber context on a fresh guarded stack, freed at the end.
final class TestFiber {
    // SAFETY: allocated here, freed in deinit after the fiber's sanitizer state.
    let ctx = UnsafeMutablePointer<spindle_fiber_context>.allocate(capacity: 1)
    let stack: FiberStack
    init(entry: spindle_fiber_entry, arg: UnsafeMutableRawPointer?) throws {
        // SAFETY: ctx is a fresh allocation, zeroed before init reads its sanitizer field.
        ctx.initialize(to: spindle_fiber_context())
        stack = try FiberStack.allocate(size: 64 * 1024)
        spindle_fiber_init(ctx, stack.base, stack.size, entry, arg)
    }
    deinit {
        spindle_fiber_destroy(ctx)
        ctx.deallocate()
        stack.release()
    }
}

@Suite(.serialized) struct FiberSwitchTests {
    @Test func resumeAndSuspendAlternate() throws {
        // SAFETY: a word the C fiber body writes; freed by the defer after the fiber is done.
        let rounds = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { rounds.deallocate() }
        rounds.pointee = 5
        let f = try TestFiber(entry: spindle_test_counting_fiber, arg: UnsafeMutableRawPointer(rounds))
        spindle_test_set_current(f.ctx)
        spindle_test_set_counter(0)
        var seen: [Int32] = []
        for _ in 0..<6 {
            spindle_fiber_resume(f.ctx)
            seen.append(spindle_test_get_counter())
        }
        // Five suspends, then the final exit (+1000) hands control back for good.
        #expect(seen == [1, 2, 3, 4, 5, 1005])
    }

    @Test func switchPreservesCalleeSavedRegistersAndFPControl() throws {
        // SAFETY: a word the C fiber body writes; freed by the defer after the fiber is done.
        let rounds = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { rounds.deallocate() }
        rounds.pointee = 0
        let f = try TestFiber(entry: spindle_test_clobbering_fiber, arg: UnsafeMutableRawPointer(rounds))
        spindle_test_set_current(f.ctx)
        let saved = spindle_test_get_round()
        defer { spindle_test_set_round(saved) }
        spindle_test_set_round(spindle_test_round_upward())
        var preserved = 0
        for _ in 0..<1_000 {
            // The fiber zeroes rbx, r12–r15 and sets round-toward-zero before suspending.
            preserved += Int(spindle_test_resume_preserves_callee_saved(f.ctx))
            #expect(spindle_test_get_round() == spindle_test_round_upward())
        }
        #expect(preserved == 1_000)
        // The fiber saw its own rounding mode every time it came back (999 returns).
        #expect(rounds.pointee == 999)
    }

    @Test func directHandOffBetweenFibers() throws {
        let a = try FiberStack.allocate(size: 64 * 1024), b = try FiberStack.allocate(size: 64 * 1024)
        defer { a.release(); b.release() }
        #expect(spindle_test_direct_handoff(a.base, b.base, a.size) == 1)
    }

    @Test func manyFibersInterleave() throws {
        // 100 fibers, resumed round-robin, each keeps its own stack and position.
        let n = 100, steps: Int32 = 20
        // SAFETY: one word per fiber, read by the C bodies; freed by the defer at the end.
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { counts.deallocate() }
        var fibers: [TestFiber] = []
        for i in 0..<n {
            counts[i] = steps
            fibers.append(try TestFiber(entry: spindle_test_counting_fiber, arg: UnsafeMutableRawPointer(counts + i)))
        }
        spindle_test_set_counter(0)
        for _ in 0...Int(steps) {
            for f in fibers {
                spindle_test_set_current(f.ctx)
                spindle_fiber_resume(f.ctx)
            }
        }
        #expect(spindle_test_get_counter() == Int32(n) * (steps + 1000))
    }

    @Test func stacksHaveAGuardPageAndFitThe1MFiberBudget() throws {
        let before = Self.mappingCount()
        var stacks: [FiberStack] = []
        for _ in 0..<2_000 { stacks.append(try FiberStack.allocate(size: 16 * 1024)) }
        let after = Self.mappingCount()
        // The guard page is really there: probing it is refused by the kernel.
        let guardPage = stacks[0].mapping
        #expect(Self.isReadable(guardPage) == false)
        #expect(Self.isReadable(stacks[0].base))
        if FiberStack.guardKind == .madvise {
            // MADV_GUARD_INSTALL splits nothing: 2,000 stacks cost at most 2,000 mappings
            // (and adjacent ones may merge), not 4,000.
            #expect(after - before <= 2_000)
        }
        for s in stacks { s.release() }
    }

    static func mappingCount() -> Int {
        (Sys.readSmallFile("/proc/self/maps") ?? "").split(separator: "\n").count
    }

    /// Asks the kernel to copy one byte from `p` into a pipe: on an unreadable page
    /// write(2) fails with EFAULT instead of crashing the test process.
    static func isReadable(_ p: UnsafeMutableRawPointer) -> Bool {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return false }
        defer { close(fds[0]); close(fds[1]) }
        return write(fds[1], p, 1) == 1
    }
}

// FaultInjection: makes chosen system calls fail on purpose, with chosen errors, at a
// chosen rate or on chosen calls, deterministically from a seed. Debug and test builds only
// (`#if DEBUG`): a release build has no trace of it, not even the flag check.
//
// The hooks sit in the one syscall layer (Sys.call, Sys.epollWait, Sys.futexWait,
// Sys.mapStack: "mmap", ENOMEM), so an
// injected failure takes exactly the path a real one would: EINTR is retried, EAGAIN becomes
// `.wouldBlock`, anything else a `SysError` that the layers above turn into typed errors.
// The call is not made: the kernel's state is as if the call had failed before doing
// anything, which is what these errors mean. Inject only what the call can really return
// (recv: EINTR, ECONNRESET; send: EINTR, EPIPE, ECONNRESET; accept4: EINTR, EMFILE,
// ENFILE, ECONNABORTED; socket: EMFILE, ENFILE; epoll_wait and futex: EINTR). Not EAGAIN:
// the kernel never says EAGAIN with data queued, and with edge-triggered readiness a fake
// one loses the edge that announced the data, so the waiter would wait for good (tried:
// the echo test hung). EBADF/EFAULT are the runtime's own bugs and stay fatal.
//
// SwiftNIO tests its syscall layer the same way; the tests (FaultInjectionTests) print the
// seed with every failure, and SPINDLE_FAULT_SEED replays a run: the same seed gives the
// same choices for the same sequence of calls (with several threads the interleaving of
// calls varies, so a replay is close, not exact).
#if DEBUG
import Synchronization

package enum FaultInjection {
    /// One kind of failure for one call name (the name Sys passes: "recv", "send",
    /// "accept4", "socket", "epoll_wait", "futex_wait", "mmap", ...).
    package struct Rule: Sendable {
        package var call: String
        package var errno: Int32
        /// Probability per call, 0...1 (used when `calls` is nil).
        package var rate: Double
        /// Fail exactly these calls of that name (1-based, counted from `enable`).
        package var calls: ClosedRange<Int>?

        package init(_ call: String, errno: Int32, rate: Double = 0, calls: ClosedRange<Int>? = nil) {
            self.call = call
            self.errno = errno
            self.rate = rate
            self.calls = calls
        }
    }

    private struct State {
        var rules: [Rule] = []
        var rng: UInt64 = 1
        var seen: [String: Int] = [:]
        var injected: [String: Int] = [:]
    }

    /// Set while rules are installed: the only cost on a hooked call when off.
    private static let active = Atomic<Bool>(false)
    /// guarded by lock
    private static let state = Lock(State())

    /// Installs `rules`; choices are drawn from a generator seeded with `seed`.
    package static func enable(seed: UInt64, rules: [Rule]) {
        state.withLock { s in
            s = State(rules: rules, rng: seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed)
        }
        active.store(true, ordering: .releasing)
    }

    /// Removes every rule; returns how many failures were injected per call name.
    @discardableResult
    package static func disable() -> [String: Int] {
        active.store(false, ordering: .releasing)
        return state.withLock { s in
            let out = s.injected
            s = State()
            return out
        }
    }

    /// The hook: an errno to fail `call` with, or nil to make the call for real.
    @inline(__always)
    static func fault(_ call: StaticString) -> Int32? {
        guard active.load(ordering: .relaxed) else { return nil }
        return decide(call.description)
    }

    private static func decide(_ call: String) -> Int32? {
        state.withLock { s -> Int32? in
            let n = (s.seen[call] ?? 0) + 1
            s.seen[call] = n
            for rule in s.rules where rule.call == call {
                let hit: Bool
                if let calls = rule.calls {
                    hit = calls.contains(n)
                } else {
                    // xorshift64*: deterministic for a seed and a sequence of calls.
                    s.rng ^= s.rng >> 12
                    s.rng ^= s.rng << 25
                    s.rng ^= s.rng >> 27
                    let x = s.rng &* 0x2545_F491_4F6C_DD1D
                    hit = Double(x >> 11) / Double(1 << 53) < rule.rate
                }
                if hit {
                    s.injected[call, default: 0] += 1
                    return rule.errno
                }
            }
            return nil
        }
    }
}
#endif

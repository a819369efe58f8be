@testable import Spindle
import Synchronization

/// Counts how often each of `count` ids was marked, without locks.
final class SeenSet: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the slots are atomics in a fixed allocation, freed in
    // deinit when no thread holds the set any more.
    private let slots: UnsafeMutablePointer<Atomic<UInt8>>
    let count: Int

    init(count: Int) {
        self.count = count
        // SAFETY: allocated and initialised here, deinitialised and freed in deinit.
        slots = .allocate(capacity: count)
        for i in 0..<count { (slots + i).initialize(to: Atomic<UInt8>(0)) }
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    func mark(_ i: Int) { slots[i].add(1, ordering: .relaxed) }

    func wasMarked(_ i: Int) -> Bool { slots[i].load(ordering: .relaxed) > 0 }
    func count(of i: Int) -> Int { Int(slots[i].load(ordering: .relaxed)) }

    var duplicates: Int { (0..<count).filter { slots[$0].load(ordering: .relaxed) > 1 }.count }
    var missing: Int { (0..<count).filter { slots[$0].load(ordering: .relaxed) == 0 }.count }
}

/// A boolean shared between threads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Runs `body` on a fresh OS thread that runs no Swift task, blocks the caller until it
/// ends, and returns its value or rethrows its error.
///
/// Why it exists: Spindle's blocking forms (`FiberHandle.join`, `Fiber.sleep`, the blocking
/// `Channel.send`/`receive`, `Select.run()`, the primitives' waits, the sockets' blocking
/// calls, ...) refuse with `FiberError.blockingOnWorker` when called inside any Swift task
/// (BlockingPolicy.swift): they block only on plain threads and park only in fibers. Swift
/// Testing runs even a synchronous `@Test func` inside a task on Swift's cooperative pool,
/// so a test that exercises the blocking forms from a thread makes those calls here.
/// Waiting for the thread blocks the test's own pool thread on a `Latch`, which the rule
/// allows: only Spindle's blocking API refuses.
///
/// When it returns, the thread holds nothing of `body` or its result any more (as after a
/// call made inline): a runtime or socket they kept alive is released by the caller, not
/// later by a thread that has not yet exited (tests count open descriptors).
///
/// Keep `#expect` and `#require` out of `body` where possible: an issue recorded on this
/// thread has no current test, so Swift Testing attributes it to an unknown test (it
/// still fails the run, but loses the test's name). Return what to check and check it on
/// the test's task.
func onPlainThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let handoff = PlainThreadHandoff(body)
    try OSThread.spawn(name: "plain") { handoff.run() }
    return try handoff.wait()
}

/// onPlainThread's state: the body goes in, its result comes out, and the thread lets go
/// of both before the caller resumes.
private final class PlainThreadHandoff<T: Sendable>: Sendable {
    private let body: Lock<(@Sendable () throws -> T)?>
    private let result = Lock<Result<T, any Error>?>(nil)
    private let done = Latch()

    init(_ body: @escaping @Sendable () throws -> T) { self.body = Lock(body) }

    /// On the plain thread.
    func run() {
        do {
            let f = body.withLock { $0.take() }!
            let r = Result { try f() }
            result.withLock { $0 = r }
        } // f and r, and what they hold, are released here: before the caller resumes
        done.open()
    }

    /// On the caller's thread: the result, taken out of the handoff.
    func wait() throws -> T {
        done.wait()
        return try result.withLock { $0.take() }!.get()
    }
}

/// Every runtime shape the shared suite runs against.
struct Shape: Sendable, CustomStringConvertible {
    let flavor: Runtime.Flavor
    let workers: Int

    var description: String { flavor == .currentThread ? "current-thread" : "multi-thread×\(workers)" }

    func make() throws -> Runtime {
        try Runtime(Runtime.Configuration(flavor: flavor, workerCount: workers, name: "t"))
    }

    static let all: [Shape] = [
        Shape(flavor: .currentThread, workers: 1),
        Shape(flavor: .multiThread, workers: 1),
        Shape(flavor: .multiThread, workers: 2),
        Shape(flavor: .multiThread, workers: 4),
    ]
}

/// Scale for the heaviest loops: full size normally, smaller under sanitizers (which
/// run everything 5–20× slower); set SPINDLE_TEST_SCALE to override.
let testScale: Int = {
    if let s = getenvString("SPINDLE_TEST_SCALE"), let n = Int(s), n > 0 { return n }
    return 1
}()

func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}

#if canImport(Glibc)
import Glibc
#endif

extension ChannelTryReceive where Element == Int {
    /// True when nothing was waiting, or the waiting sender's value was `v` (it is then
    /// consumed).
    func isEmptyOrValue(_ v: Int) -> Bool {
        switch self {
        case .empty: return true
        case .value(let x): return x == v
        case .closed: return false
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes (a bound that only a real hang
/// reaches); returns whether it held. For tests that must wait until something has
/// happened before the next step: wait on the thing itself, not on a sleep that is
/// usually long enough.
@discardableResult
func waitUntil(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = Sys.nowNanos() + timeout.nanosecondsClamped
    while !condition() {
        if Sys.nowNanos() >= deadline { return false }
        usleep(1_000)
    }
    return true
}

/// The same inside a task: yields between polls so the tasks it waits for can run, even
/// on a current-thread runtime.
@discardableResult
func waitUntil(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = Sys.nowNanos() + timeout.nanosecondsClamped
    while !condition() {
        if Sys.nowNanos() >= deadline { return false }
        await Task.yield()
    }
    return true
}

// spindle-probe: runs scenarios that must happen in a fresh process (global executor
// installation is process-wide and must come first; fatal errors end the process), for
// the test suite to run as a subprocess and check its output.
//
// Usage: spindle-probe <scenario>. Prints "check <name> <true|false>" lines, then "done".
import Spindle
import CSpindle
import Glibc
import Synchronization
@_spi(ExperimentalCustomExecutors) import _Concurrency

/// Recurses until the stack runs out.
@inline(never) nonisolated func overflowingRecursion(_ n: Int) -> Int {
    var pad = (n, n, n, n)
    return withUnsafeMutableBytes(of: &pad) { b in Int(b[0]) + overflowingRecursion(n + 1) }
}

let scenario = CommandLine.arguments.dropFirst().first ?? ""

func check(_ name: String, _ ok: Bool) {
    print("check \(name) \(ok)")
}

/// True if the caller runs on a worker of the global Spindle runtime.
func onGlobalWorker() -> Bool {
    guard let g = Runtime.global, let c = Runtime.current else { return false }
    return g === c
}

/// Plain `Task {}` created outside any actor (on the main actor it would inherit it).
@concurrent func plainTaskRunsOnWorker() async -> Bool {
    await Task { onGlobalWorker() }.value
}

@concurrent func sleepThenCheck() async -> Bool {
    await Task { () async -> Bool in
        try? await Task.sleep(for: .milliseconds(20))
        return onGlobalWorker()
    }.value
}

actor Counter {
    var value = 0
    func bump() -> Bool { value += 1; return onGlobalWorker() }
}

/// A flag shared between tasks.
final class ProbeFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Spins without suspending until `flag` is set; false if 10 s passed first (a stall).
func spin(until flag: ProbeFlag) -> Bool {
    let giveUp = ContinuousClock.now + .seconds(10)
    while !flag.isSet {
        if ContinuousClock.now > giveUp { return false }
    }
    return true
}

/// Waits (spinning on the main thread, not a worker) until every worker of the global
/// runtime is parked.
func waitUntilIdle() {
    let rt = Runtime.global!
    let giveUp = ContinuousClock.now + .seconds(10)
    while rt.statistics.parkedWorkers != rt.workerCount && ContinuousClock.now < giveUp {}
}

/// Two `Task.sleep`s: the first wakes on the worker that kept the timers and spins there;
/// the second's deadline must still be kept by the other worker.
@MainActor func secondSleepEndsWhileFirstSpins() async -> Bool {
    let done = ProbeFlag()
    let spinner = Task.detached { () async -> Bool in
        try? await Task.sleep(for: .milliseconds(100))
        return spin(until: done)
    }
    Task.detached {
        try? await Task.sleep(for: .milliseconds(200))
        done.set()
    }
    // Both asleep and both workers parked before the first deadline: one of them keeps
    // the timers, the other sleeps without a timeout.
    waitUntilIdle()
    return await spinner.value
}

final class ContinuationSlot: Sendable {
    private let slot = Mutex<CheckedContinuation<Void, Never>?>(nil)
    func store(_ c: CheckedContinuation<Void, Never>) { slot.withLock { $0 = c } }
    func take() -> CheckedContinuation<Void, Never>? { slot.withLock { $0.take() } }
}

/// A plain `Task {}` resumed by a task that then spins must run on the other worker.
@MainActor func resumedTaskRunsWhileItsWakerSpins() async -> Bool {
    let done = ProbeFlag()
    let ready = ProbeFlag()
    let slot = ContinuationSlot()
    Task.detached {
        await withCheckedContinuation { c in
            slot.store(c)
            ready.set()
        }
        done.set()
    }
    while !ready.isSet { sched_yield() }
    waitUntilIdle()
    return await Task.detached { () async -> Bool in
        // Resume it (into this worker's run-next slot) once the other worker has parked.
        let rt = Runtime.global!
        let giveUp = ContinuousClock.now + .seconds(10)
        while rt.statistics.parkedWorkers != rt.workerCount - 1 && ContinuousClock.now < giveUp {}
        slot.take()?.resume()
        return spin(until: done)
    }.value
}

/// A synchronous `for-in` over a channel (async code cannot write one: it is `noasync`).
nonisolated func drainChannel(_ c: Channel<Int>) -> Int {
    var n = 0
    for _ in c { n += 1 }
    return n
}

/// A small text file (procfs) read in one go, or nil.
func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Every thread of this process and its blocked-signal mask (the SigBlk line of
/// /proc/self/task/<tid>/status), without signals 32 and 33: glibc keeps those for itself
/// and blocks them around its own work (a thread being created shows them blocked).
func threadMasks() -> [Int: UInt64] {
    var out: [Int: UInt64] = [:]
    guard let dir = opendir("/proc/self/task") else { return out }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let tid = Int(name), let text = readText("/proc/self/task/\(tid)/status") else { continue }
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigBlk:") }) {
            let hex = String(line.dropFirst("SigBlk:".count).filter { !$0.isWhitespace })
            out[tid] = UInt64(hex, radix: 16).map { $0 & ~(UInt64(3) << 31) }
        }
    }
    return out
}

/// The next signal of `stream`, or nil if none came within 10 s.
func nextSignal(_ stream: SignalStream, on rt: Runtime) -> UnixSignal? {
    try? rt.run { try await withTimeout(.seconds(10)) { try await stream.next() } }
}

switch scenario {
case "global":
    let value = try Runtime.main { () async throws -> Int in
        check("main-actor-on-main-thread", spindle_gettid() == Int(getpid()))
        check("main-actor-not-a-worker", Runtime.current == nil)
        check("plain-task", await plainTaskRunsOnWorker())
        check("detached-task", await Task.detached { onGlobalWorker() }.value)
        check("default-actor", await Counter().bump())
        let group = await withTaskGroup(of: Bool.self) { g in
            for _ in 0..<8 { g.addTask { onGlobalWorker() } }
            var all = true
            for await ok in g { all = all && ok }
            return all
        }
        check("task-group", group)
        async let a = onGlobalWorker()
        check("async-let", await a)
        check("task-sleep-resumes-on-worker", await sleepThenCheck())
        let t0 = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(30))
        check("main-actor-sleep-duration", ContinuousClock.now - t0 >= .milliseconds(30))
        check("back-on-main-thread", spindle_gettid() == Int(getpid()))
        let blocking = try await Runtime.global!.spawnBlocking { Runtime.current == nil }
        check("spawn-blocking-off-workers", blocking)
        return 42
    }
    check("main-returns-value", value == 42)
    print("done")

case "global-throws":
    struct Boom: Error {}
    do {
        _ = try Runtime.main { () async throws -> Int in throw Boom() }
        check("main-rethrows", false)
    } catch is Boom {
        check("main-rethrows", true)
    }
    print("done")

case "warning-after-shutdown":
    // A job enqueued on a stopped runtime runs elsewhere, and stderr says so.
    let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "probe-warn"))
    _ = rt.shutdown(timeout: .seconds(10))
    let ran = Semaphore(permits: 0)
    Task(executorPreference: rt) { ran.release() }
    try ran.acquire()
    print("done")

case "stall", "no-stall":
    // A task that spins 300 ms three calls deep is reported with those calls; one that
    // spins 10 ms is not (threshold 100 ms).
    let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "probe-stall",
                                               stallThreshold: .milliseconds(100)))
    let ms = scenario == "stall" ? 300 : 10
    // Under TSan a signal's handler runs later, from TSan's own dispatch (frames without
    // frame pointers), which the test needs to know.
    // SAFETY: a null handle is RTLD_DEFAULT (search every loaded object); dlsym only reads.
    check("tsan", dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil)
    try rt.run { probeStallOuter(ms) }
    _ = rt.shutdown(timeout: .seconds(10))
    if scenario == "stall" {
        // The same in a fiber (another runtime: reports are rate-limited per worker).
        let fibers = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "probe-fiber",
                                                       stallThreshold: .milliseconds(100)))
        try fibers.spawnFiber(name: "spinner") { probeStallOuter(ms) }.join()
        _ = fibers.shutdown(timeout: .seconds(10))
    }
    print("done")

case "shutdown-global":
    _ = try Runtime.main { () async -> Int in
        Runtime.global!.shutdown()
        return 0
    }

case "fiber-overflow":
    // Unbounded recursion on a small named fiber stack: must end with the overflow message.
    let rt = try Runtime(flavor: .multiThread, workers: 2)
    let f = rt.spawnFiber(name: "deep-recursion", stackSize: 32 * 1024) { overflowingRecursion(0) }
    _ = try? f.join()
    print("survived")

case "generator-overflow":
    @inline(never) func recurse(_ n: Int, _ y: Yielder<Int>) throws -> Int {
        var pad = (n, n, n, n)
        return try withUnsafeMutableBytes(of: &pad) { b in Int(b[0]) + (try recurse(n + 1, y)) }
    }
    let g = Generator<Int>(stackSize: 32 * 1024) { y in _ = try recurse(0, y) }
    _ = g.next()
    print("survived")

case "global-fibers":
    let value = try Runtime.main { () async throws -> Int in
        let f = try Fiber.spawn { () throws -> Bool in
            try Fiber.sleep(for: .milliseconds(5))
            return onGlobalWorker() && Fiber.isInFiber
        }
        check("fiber-on-global-runtime", try await f.value)
        // Fiber.wait from a plain thread runs its task on the global runtime.
        let onPlainThread = try await Runtime.global!.spawnBlocking {
            try Fiber.wait { onGlobalWorker() }
        }
        check("wait-from-plain-thread", onPlainThread)
        return 1
    }
    check("main-returns-value", value == 1)
    print("done")

case "plain-thread-wait":
    // No Spindle installed: Fiber.wait on a plain thread runs its task on Swift's default
    // executor and blocks the thread until it finishes.
    let v = try Fiber.wait { () async throws -> Int in
        try await Task.sleep(for: .milliseconds(5))
        return Runtime.current == nil ? 7 : -1
    }
    check("wait-on-default-executor", v == 7)
    print("done")

case "global-liveness":
    // Spindle as Swift's global executor with two workers: Task.sleep deadlines and woken
    // tasks are served by the idle worker while the other stays inside one job.
    let config = Runtime.Configuration(flavor: .multiThread, workerCount: 2)
    _ = try Runtime.main(configuration: config) { () async -> Int in
        check("task-sleep-while-spinning", await secondSleepEndsWhileFirstSpins())
        check("resumed-task-while-waker-spins", await resumedTaskRunsWhileItsWakerSpins())
        return 0
    }
    print("done")

// Misuse that cannot throw: each must end the process with a `Spindle fatal:` message
// naming the misuse and the fix (GlobalInstallTests / MisuseTests match on it).
case "misuse-mutex-unlock":
    AsyncMutex().unlock()
    print("survived")

case "misuse-waitgroup-done":
    let wg = WaitGroup()
    wg.add(1)
    wg.done()
    wg.done()
    print("survived")

case "misuse-channel-capacity":
    _ = Channel<Int>(capacity: -1)
    print("survived")

case "misuse-channel-sequence-in-task":
    let rt = try Runtime(flavor: .multiThread, workers: 1)
    let ch = Channel<Int>(capacity: 1)
    let n = try rt.run { drainChannel(ch) }
    print("survived with \(n) values")

case "misuse-install-twice":
    Runtime.installGlobalExecutors()
    Runtime.installGlobalExecutors()
    print("survived")

case "misuse-install-current-thread":
    Runtime.installGlobalExecutors(configuration: Runtime.Configuration(flavor: .currentThread))
    print("survived")

case "install-late":
    // Swift concurrency starts on its own executors first (a task ran, the main actor's
    // executor exists). Swift 6.3.1 still takes the factory afterwards: install checks
    // that it did (and stops the process if not), and new tasks run on Spindle.
    let ran = ProbeFlag()
    Task.detached { ran.set() }
    while !ran.isSet { sched_yield() }
    _ = MainActor.executor
    Runtime.installGlobalExecutors()
    let onSpindle = ProbeFlag()
    let checked = ProbeFlag()
    Task.detached {
        if onGlobalWorker() { onSpindle.set() }
        checked.set()
    }
    while !checked.isSet { sched_yield() }
    check("late-install-takes-new-tasks", onSpindle.isSet)
case "signal-blocked-mask":
    // A process whose threads all block every signal (as a child started from a Swift
    // concurrency thread does): the runtime's threads inherit the mask.
    var all = sigset_t()
    sigfillset(&all)
    pthread_sigmask(SIG_SETMASK, &all, nil)
    let rt = try Runtime(flavor: .multiThread, workers: 2)
    let before = threadMasks()
    let stream = try SignalStream([.user1], on: rt)
    kill(getpid(), SIGUSR1)
    check("blocked-signal-delivered", nextSignal(stream, on: rt) == .user1)
    stream.stop()
    let after = threadMasks()
    check("masks-restored", before.count >= 3 && before.allSatisfy { after[$0.key] == $0.value })
    // Blocked everywhere again: a new SIGUSR1 stays pending instead of taking its default
    // action (ending the process) on a thread that still lets it through.
    kill(getpid(), SIGUSR1)
    var pending = sigset_t()
    sigpending(&pending)
    check("blocked-again-after-stop", sigismember(&pending, SIGUSR1) == 1)
    print("done")

case "signal-fd-zero":
    let rt = try Runtime(flavor: .multiThread, workers: 2)
    // A first stream opens whatever signal watching keeps for good, so after close(0) the
    // next stream's eventfd is descriptor 0.
    try SignalStream([.user2], on: rt).stop()
    close(0)
    let stream = try SignalStream([.user1], on: rt)
    var link = [UInt8](repeating: 0, count: 256)
    let n = readlink("/proc/self/fd/0", &link, link.count)
    check("stream-owns-fd-0", n > 0 && String(decoding: link[0..<n], as: UTF8.self).contains("eventfd"))
    kill(getpid(), SIGUSR1)
    var p = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
    check("wakeup-written-to-fd-0", poll(&p, 1, 10_000) == 1)
    check("signal-received", nextSignal(stream, on: rt) == .user1)
    stream.stop()
    print("done")

case "trace-env":
    // SPINDLE_TRACE=path (set by the test): a traced fiber, and the file written at exit.
    let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "probe-trace"))
    check("traced", try rt.spawnFiber(name: "traced") { () throws -> Int in try Fiber.yield(); return 1 }.join() == 1)
    rt.shutdown()
    print("done")

case "dump-signal":
    // SPINDLE_DUMP_SIGNAL=USR1 (set by the test): a fiber parked three calls deep, then the
    // signal; this process's stderr goes to a pipe it reads until the dump names all three
    // calls, and copies what it read to stdout for the test.
    let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "probe-dump"))
    let ball = Channel<Int>(capacity: 0)
    let parked = Semaphore(permits: 0)
    let sleeper = rt.spawnFiber(name: "sleeper") { parked.release(); return try probeDumpOuter(ball) }
    try parked.acquire()
    var fds: [Int32] = [0, 0]
    check("pipe", pipe(&fds) == 0)
    let savedStderr = dup(2)
    check("dup2", dup2(fds[1], 2) == 2)
    var text = ""
    // The fiber may still be on its way into the receive when the first signal lands: the
    // dump then shows it running or ready; signal again until it shows parked.
    let deadline = probeNowNanos() + 20_000_000_000
    while !(text.contains("probeDumpOuter") && text.contains("parked (channel)")) && probeNowNanos() < deadline {
        kill(getpid(), SIGUSR1)
        var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, 1000) == 1 {
            var buf = [UInt8](repeating: 0, count: 65536)
            let n = read(fds[0], &buf, buf.count)
            if n > 0 { text += String(decoding: buf[0..<n], as: UTF8.self) }
        }
    }
    dup2(savedStderr, 2)
    print(text)
    try ball.send(1)
    check("fiber-result", try sleeper.join() == 1)
    rt.shutdown()
    print("done")

default:
    print("unknown scenario \(scenario)")
    exit(2)
}

@inline(never) func probeStallOuter(_ ms: Int) { probeStallMiddle(ms) }
@inline(never) func probeDumpOuter(_ c: Channel<Int>) throws -> Int { try probeDumpMiddle(c) }
@inline(never) func probeDumpMiddle(_ c: Channel<Int>) throws -> Int { try probeDumpInner(c) }
@inline(never) func probeDumpInner(_ c: Channel<Int>) throws -> Int { try c.receive() ?? -1 }
func probeNowNanos() -> Int64 { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec) }
@inline(never) func probeStallMiddle(_ ms: Int) { probeStallSpin(ms) }
@inline(never) func probeStallSpin(_ ms: Int) {
    let until = ContinuousClock.now + .milliseconds(ms)
    var x = 0
    while ContinuousClock.now < until { x &+= 1 }
    if x == -1 { print(x) }
}

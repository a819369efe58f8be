// spindle-probe: runs scenarios that must happen in a fresh process (global executor
// installation is process-wide and must come first; fatal errors end the process), for
// the test suite to run as a subprocess and check its output.
//
// Usage: spindle-probe <scenario>. Prints "check <name> <true|false>" lines, then "done".
import Spindle
import CSpindle
import Glibc

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

default:
    print("unknown scenario \(scenario)")
    exit(2)
}

// The measurements behind `spindle bench`. Each runs inside a child process configured
// for one system (see BenchChild) and returns one value per repetition.
import CSpindleBench
import Spindle
import SpindleBenchCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

enum Clock {
    static func nanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// The measured window of a measurement: where it starts its clock, `Window.begin()`
/// also reads the process's context switches (getrusage: every thread's, voluntary and
/// involuntary) and heap allocations (AllocCounter.c; only when the parent asked for
/// counting); `end` reads them again and keeps both per operation for the child to print.
/// A measurement that runs twice (a warm-up round, then the real one) keeps the last window.
enum Window {
    private static let state = Mutex<(ctxsw: Int64, allocs: Int64, perOp: (allocs: Double?, ctxsw: Double?)?)>((0, 0, nil))

    static func contextSwitches() -> Int64 {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int64(u.ru_nvcsw + u.ru_nivcsw)
    }

    /// Starts the window and returns the clock's reading.
    static func begin() -> Int64 {
        beginCounting()
        return Clock.nanos()
    }

    /// Ends the window over `ops` operations; returns ns since `t0`.
    static func end(_ t0: Int64, ops: Int) -> Int64 {
        let dt = Clock.nanos() - t0
        endCounting(ops: ops)
        return dt
    }

    /// A window without a clock (memory rows: per item held).
    /// Reads the counters inside the lock: the first `withLock` instantiates the lock's
    /// type metadata (a malloc), which must fall before the window, not in it.
    static func beginCounting() {
        state.withLock { s in
            s.allocs = spindle_bench_alloc_count()
            s.ctxsw = contextSwitches()
        }
    }

    static func endCounting(ops: Int) {
        state.withLock { s in
            let a = spindle_bench_alloc_count(), c = contextSwitches()
            s.perOp = (Stats.perOp(before: s.allocs, after: a, ops: ops), Stats.perOp(before: s.ctxsw, after: c, ops: ops))
        }
    }

    /// What the last window counted, per operation; nils before any window.
    static var perOp: (allocs: Double?, ctxsw: Double?) {
        state.withLock { $0.perOp ?? (nil, nil) }
    }
}

/// How a measurement starts its top-level task: plainly (global executor, whatever it
/// is), or with a preference for a given runtime.
struct Spawner: Sendable {
    let preference: Runtime?

    func task<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> Task<T, Never> {
        if let rt = preference { return Task(executorPreference: rt, operation: body) }
        return Task.detached(operation: body)
    }
}

enum Measurements {
    /// ns per `await Task.yield()` of one task looping.
    static func yield(_ s: Spawner, iterations: Int) async -> Double {
        await s.task {
            for _ in 0..<10_000 { await Task.yield() }
            let t0 = Window.begin()
            for _ in 0..<iterations { await Task.yield() }
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }.value
    }

    /// ns per one-way hand-off between two tasks.
    static func pingpong(_ s: Spawner, iterations: Int) async -> Double {
        let toB = Baton(), toA = Baton()
        let rounds = iterations / 2
        let b = s.task {
            for _ in 0..<(rounds + 1_000) { await toB.wait(); toA.signal() }
            return 0
        }
        let a = s.task { () -> Double in
            for _ in 0..<1_000 { toB.signal(); await toA.wait() }
            let t0 = Window.begin()
            for _ in 0..<rounds { toB.signal(); await toA.wait() }
            return Double(Window.end(t0, ops: rounds * 2)) / Double(rounds * 2)
        }
        let r = await a.value
        _ = await b.value
        return r
    }

    /// ns per child spawned and completed: a task group gets `iterations` empty children,
    /// in waves of 1,000 that are awaited before the next wave (bounded memory).
    static func spawn(_ s: Spawner, iterations: Int) async -> Double {
        await s.task {
            func wave(_ n: Int) async {
                await withTaskGroup(of: Void.self) { g in
                    for _ in 0..<n { g.addTask {} }
                    for await _ in g {}
                }
            }
            await wave(10_000)
            let t0 = Window.begin()
            var left = iterations
            while left > 0 {
                let n = min(1_000, left)
                await wave(n)
                left -= n
            }
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }.value
    }

    /// ns per task: one spawner task adds `iterations` tiny tasks (each mixes a few
    /// numbers into a shared atomic) to a discarding task group, while every worker runs
    /// them as they come.
    static func fanout(_ s: Spawner, iterations: Int) async -> Double {
        await s.task {
            let sink = AtomicCounter()
            let t0 = Window.begin()
            await withDiscardingTaskGroup { g in
                for i in 0..<iterations {
                    g.addTask {
                        var x = i
                        for j in 0..<8 { x = x &* 31 &+ j }
                        sink.add(x & 1)
                    }
                }
            }
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }.value
    }

    /// RSS bytes per suspended task, with `count` tasks suspended on continuations.
    static func memory(_ s: Spawner, count: Int) async -> Double {
        await s.task { await memoryBody(s, count: count) }.value
    }

    private static func memoryBody(_ s: Spawner, count: Int) async -> Double {
        let parked = ContinuationList()
        let waiting = AtomicCounter()
        // Warm up the allocator with one round of the same shape.
        for round in 0..<2 {
            let n = round == 0 ? count / 10 : count
            Window.beginCounting()
            let before = ProcessStats.residentBytes()
            var tasks: [Task<Void, Never>] = []
            tasks.reserveCapacity(n)
            for _ in 0..<n {
                tasks.append(s.task {
                    await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                        parked.append(c)
                        waiting.add(1)
                    }
                })
            }
            // Wait without blocking a worker (the tasks need the workers to start).
            while waiting.value < n { try? await Task.sleep(for: .milliseconds(1)) }
            let after = ProcessStats.residentBytes()
            Window.endCounting(ops: n)
            for c in parked.takeAll() { c.resume() }
            for t in tasks { await t.value }
            waiting.reset()
            if round == 1 { return Double(after - before) / Double(n) }
        }
        return 0
    }

    /// ns per element pulled from a `Generator` whose body yields in a loop (two stack
    /// switches per element).
    static func generatorNext(iterations: Int) -> Double {
        let g = Generator<Int> { yield in
            var i = 0
            while true { try yield(i); i &+= 1 }
        }
        for _ in 0..<10_000 { _ = g.next() }
        var sum = 0
        let t0 = Window.begin()
        for _ in 0..<iterations { sum &+= g.next()! }
        let dt = Window.end(t0, ops: iterations)
        precondition(sum != 42, "keeps the loop alive")
        return Double(dt) / Double(iterations)
    }

    /// The same sequence as a hand-written stackless iterator (`AnyIterator` over a
    /// closure): what a generator's convenience costs in comparison.
    static func closureIteratorNext(iterations: Int) -> Double {
        var i = 0
        let it = AnyIterator<Int> { defer { i &+= 1 }; return i }
        for _ in 0..<10_000 { _ = it.next() }
        var sum = 0
        let t0 = Window.begin()
        for _ in 0..<iterations { sum &+= it.next()! }
        let dt = Window.end(t0, ops: iterations)
        precondition(sum != 42, "keeps the loop alive")
        return Double(dt) / Double(iterations)
    }

    /// A truly idle runtime over `seconds`: Spindle installed globally, every worker
    /// parked, a listener registered and a timer armed an hour ahead; the measuring thread
    /// (the main thread, not a worker) sleeps. Returns (percent of one CPU used by the whole
    /// process, context switches per second summed over its threads).
    static func idleRuntime(seconds: Int) throws -> (cpuPercent: Double, wakeupsPerSecond: Double) {
        try Runtime.main(configuration: .init(flavor: .multiThread)) { () async throws -> (Double, Double) in
            let rt = Runtime.global!
            let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"))
            let sleeper = Task.detached { try? await Spindle.sleep(for: .seconds(3600)) }
            // Wait (from the main thread) until every worker is parked.
            let giveUp = Clock.nanos() + 10_000_000_000
            while rt.statistics.parkedWorkers < rt.workerCount && Clock.nanos() < giveUp { usleep(1_000) }
            usleep(100_000) // let the monitor reach its deep sleep (10 checks, ~63 ms)
            let c0 = ProcessStats.cpuNanos(), s0 = contextSwitches(), t0 = Clock.nanos()
            sleep(UInt32(seconds)) // the main thread, not a worker
            let c1 = ProcessStats.cpuNanos(), s1 = contextSwitches(), t1 = Clock.nanos()
            sleeper.cancel()
            listener.close()
            let elapsed = Double(t1 - t0)
            return (100 * Double(c1 - c0) / elapsed, Double(s1 - s0) / (elapsed / 1e9))
        }
    }

    /// Voluntary and involuntary context switches of every thread of this process, minus
    /// the main thread's (it is the one measuring).
    static func contextSwitches() -> Int {
        var total = 0
        let me = Int(getpid())
        guard let dir = opendir("/proc/self/task") else { return 0 }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let tid = Int(name), tid != me,
                  let text = try? String(contentsOfFile: "/proc/self/task/\(tid)/status", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches") || line.hasPrefix("nonvoluntary_ctxt_switches") {
                total += Int(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return total
    }
}

final class AtomicCounter: Sendable {
    private let v = Atomic<Int>(0)
    func add(_ n: Int) { v.add(n, ordering: .acquiringAndReleasing) }
    var value: Int { v.load(ordering: .acquiring) }
    func reset() { v.store(0, ordering: .releasing) }
}

final class ContinuationList: Sendable {
    private let list = Mutex<[UnsafeContinuation<Void, Never>]>([])
    func append(_ c: UnsafeContinuation<Void, Never>) { list.withLock { $0.append(c) } }
    func takeAll() -> [UnsafeContinuation<Void, Never>] {
        list.withLock { l in let a = l; l.removeAll(keepingCapacity: true); return a }
    }
}

// MARK: fibers

enum FiberMeasurements {
    /// ns per one-way switch: two fibers on a one-worker runtime, each looping
    /// `Fiber.yield()`, so every yield hands the worker to the other fiber.
    static func fiberSwitch(iterations: Int) throws -> Double {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let rounds = iterations / 2
        let outer = rt.spawnFiber { () throws -> Double in
            let loop: @Sendable (Int) throws -> Void = { n in for _ in 0..<n { try Fiber.yield() } }
            // Warm-up, then the measured pair.
            let wa = try Fiber.spawn { try loop(1_000) }, wb = try Fiber.spawn { try loop(1_000) }
            try wa.join(); try wb.join()
            let t0 = Window.begin()
            let a = try Fiber.spawn { try loop(rounds) }, b = try Fiber.spawn { try loop(rounds) }
            try a.join(); try b.join()
            return Double(Window.end(t0, ops: rounds * 2)) / Double(rounds * 2)
        }
        return try outer.join()
    }

    /// ns per fiber created, run to its end and joined, with a warm stack pool: a driver
    /// fiber spawns waves of 100 empty fibers and joins each wave.
    static func fiberSpawn(iterations: Int) throws -> Double {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let outer = rt.spawnFiber { () throws -> Double in
            var wave: [FiberHandle<Int>] = []
            wave.reserveCapacity(100)
            func run(_ n: Int) throws {
                var left = n
                while left > 0 {
                    let k = min(100, left)
                    for i in 0..<k { wave.append(try Fiber.spawn { i }) }
                    for h in wave { _ = try h.join() }
                    wave.removeAll(keepingCapacity: true)
                    left -= k
                }
            }
            try run(10_000)
            let t0 = Window.begin()
            try run(iterations)
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }
        return try outer.join()
    }

    /// RSS bytes per suspended fiber with `count` fibers alive at once, each parked
    /// joining a gate fiber; on one worker (so the figure includes no per-worker pools).
    static func fiberMemory(count: Int) throws -> Double {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let parked = AtomicCounter()
        var handles: [FiberHandle<Int>] = []
        handles.reserveCapacity(count)
        // Warm-up round at a tenth of the size, so allocator arenas exist before measuring.
        for round in 0..<2 {
            let n = round == 0 ? count / 10 : count
            let release = Channel<Int>(capacity: 0)
            let gate = rt.spawnFiber { () throws -> Int in
                _ = try release.receive()
                return 0
            }
            Window.beginCounting()
            let before = ProcessStats.residentBytes()
            for _ in 0..<n {
                handles.append(rt.spawnFiber { () throws -> Int in
                    parked.add(1)
                    return try gate.join()
                })
            }
            // Every fiber has started, and the one worker has parked: it has nothing left to
            // run, so every fiber is suspended in its join (no sleep standing in for that).
            while parked.value < n || rt.statistics.parkedWorkers < rt.workerCount { usleep(1_000) }
            let after = ProcessStats.residentBytes()
            Window.endCounting(ops: n)
            release.close()
            for h in handles { _ = try h.join() }
            handles.removeAll(keepingCapacity: true)
            parked.reset()
            if round == 1 { return Double(after - before) / Double(n) }
        }
        return 0
    }
}

// `spindle bench-child ROW SYSTEM`: one measurement in a fresh process, printed as
// numbers on stdout. Not for people; `spindle bench` runs it.
import ArgumentParser
import CSpindleBench
import Spindle
import SpindleBenchCore

struct BenchChild: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-child", shouldDisplay: false)

    @Argument var row: String
    @Argument var system: String
    @Option var scale: Double = 1.0

    func run() throws {
        let scale = self.scale
        let n: @Sendable (Int) -> Int = { base in max(1_000, Int(Double(base) * scale)) }
        let row = self.row
        let system = self.system
        let measure: @Sendable (Spawner, Int) async -> Double = { s, workers in
            switch row {
            case "task.yield": return await Measurements.yield(s, iterations: n(1_000_000))
            case "task.pingpong": return await Measurements.pingpong(s, iterations: n(1_000_000))
            case "task.spawn": return await Measurements.spawn(s, iterations: n(1_000_000))
            case "task.fanout": return await Measurements.fanout(s, iterations: n(1_000_000))
            case "task.memory": return await Measurements.memory(s, count: n(100_000))
            case "timer.late.1ms": return await IOMeasurements.sleepLateness(spindle: system != "swift-default")
            case "timer.sleeping.memory", "timer.cancelled.memory":
                // Always 1M (the "millions of coroutines" claim), whatever the scale.
                return await IOMeasurements.sleepMemory(count: 1_000_000, spindle: system != "swift-default",
                                                        afterCancel: row == "timer.cancelled.memory")
            case "timer.sleep": return await IOMeasurements.timerCost(count: n(100_000), spindle: system != "swift-default")
            case "channel.rtt.task":
                switch system {
                case "asyncstream", "asyncstream-spindle": return await ChannelMeasurements.rttAsyncStream(iterations: n(200_000))
                case "asyncchannel", "asyncchannel-spindle": return await ChannelMeasurements.rttAsyncChannel(iterations: n(200_000))
                default: return await ChannelMeasurements.rttSpindleTasks(iterations: n(200_000))
                }
            case "channel.throughput.1p", "channel.throughput.4p",
                 "channel.throughput.buffered.1p", "channel.throughput.buffered.4p":
                // Equal buffering: rendezvous rows against AsyncChannel (rendezvous), buffered
                // rows (1,024 slots) against AsyncStream, whose only policies are unbounded or
                // dropping, so it runs unbounded (its producers never wait: an advantage).
                let producers = row.hasSuffix("4p") ? 4 : 1
                // Rendezvous rows move fewer messages: AsyncChannel does ~0.3-0.8 M/s here.
                let buffered = row.contains("buffered")
                let messages = n(buffered ? 2_000_000 : 500_000)
                switch system {
                case "asyncstream", "asyncstream-spindle": return await ChannelMeasurements.throughputAsyncStream(producers: producers, messages: messages)
                case "asyncchannel", "asyncchannel-spindle": return await ChannelMeasurements.throughputAsyncChannel(producers: producers, messages: messages)
                default: return await ChannelMeasurements.throughputSpindle(producers: producers, messages: messages, capacity: buffered ? 1_024 : 0)
                }
            default: fatalError("unknown row \(row)")
            }
        }
        // One line out: the value, then allocations and context switches per operation
        // from the measurement's last window (see Window).
        func report(_ v: Double) {
            let c = Window.perOp
            print(ChildOutput(value: v, allocs: c.allocs, ctxsw: c.ctxsw).line)
        }
        let cpus = ProcessStats.availableCPUs
        if row == "runtime.idle.cpu" || row == "runtime.idle.wakeups" {
            let r = try Measurements.idleRuntime(seconds: 3)
            print(ChildOutput(value: row == "runtime.idle.cpu" ? r.cpuPercent : r.wakeupsPerSecond, allocs: nil, ctxsw: nil).line)
            return
        }
        if row == "selftest.allocs" {
            // The allocation counter's self-test: exactly 1,000 mallocs per operation.
            Window.beginCounting()
            spindle_bench_allocate_for_test(Int64(n(1_000)) * 1_000)
            Window.endCounting(ops: n(1_000))
            report(1)
            return
        }
        if let v = try ioRow(row: row, system: system, n: n) {
            report(v)
            return
        }
        if let v = try fiberRow(row: row, system: system, n: n) {
            report(v)
            return
        }
        if row == "generator.next" {
            switch system {
            case "spindle": report(Measurements.generatorNext(iterations: n(10_000_000)))
            case "swift-iterator": report(Measurements.closureIteratorNext(iterations: n(10_000_000)))
            default: throw ValidationError("unknown system \(system) for \(row)")
            }
            return
        }
        switch system {
        case "task.floor":
            // Swift's floor: the cheapest one-thread executor (FloorExecutor.swift).
            guard ["task.yield", "task.pingpong", "task.spawn"].contains(row) else {
                throw ValidationError("task.floor runs task.yield, task.pingpong and task.spawn only")
            }
            report(Floor.run { await measure(Spawner(preference: nil), 1) })
        case "spindle", "spindle-1worker", "asyncstream-spindle", "asyncchannel-spindle":
            // The -spindle peers: the same peer code with Spindle as Swift's executor, so the
            // comparison with Spindle's channel is like for like.
            let workers = system == "spindle-1worker" ? 1 : cpus
            let v = try Runtime.main(configuration: .init(flavor: .multiThread, workerCount: workers)) { () async -> Double in
                // Measure off the main actor, on a worker.
                await Task.detached { () async -> Double in
                    precondition(Runtime.current === Runtime.global, "the benchmark is not running on Spindle")
                    return await measure(Spawner(preference: nil), workers)
                }.value
            }
            report(v)
        case "spindle-preference":
            let rt = try Runtime(.init(flavor: .multiThread, workerCount: cpus))
            let v = try rt.run { await measure(Spawner(preference: rt), cpus) }
            report(v)
            rt.shutdown()
        case "swift-default", "asyncstream", "asyncchannel":
            let box = ResultBox()
            let sem = PosixSemaphore()
            Task.detached {
                box.value = await measure(Spawner(preference: nil), cpus)
                sem.signal()
            }
            sem.wait()
            report(box.value)
        default:
            throw ValidationError("unknown system \(system)")
        }
    }
}

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class ResultBox: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): written once by the measuring task before the
    // semaphore is signalled, read once after waiting on it.
    var value: Double = 0
}

/// A POSIX semaphore for the swift-default child's main thread to wait on.
final class PosixSemaphore: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): sem_t is designed for use across threads; the pointer
    // is allocated in init and never freed (one per process).
    private let sem = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    init() { sem_init(sem, 0, 0) }
    func signal() { sem_post(sem) }
    func wait() { while sem_wait(sem) != 0 {} }
}

/// The I/O rows that manage their own runtime; nil if `row` is not one of them.
func ioRow(row: String, system: String, n: (Int) -> Int) throws -> Double? {
    switch (row, system) {
    case ("tcp.rtt.task", "spindle"): return try IOMeasurements.tcpRTTTasksGlobal(iterations: n(50_000), workers: nil)
    case ("tcp.rtt.task", "spindle-1worker"): return try IOMeasurements.tcpRTTTasksGlobal(iterations: n(50_000), workers: 1)
    case ("tcp.rtt.task", "spindle-preference"): return try IOMeasurements.tcpRTTTasks(iterations: n(50_000), workers: nil)
    case ("tcp.rtt.fiber", "spindle"): return try IOMeasurements.tcpRTTFibersGlobal(iterations: n(50_000), workers: nil)
    case ("tcp.rtt.fiber", "spindle-1worker"): return try IOMeasurements.tcpRTTFibersGlobal(iterations: n(50_000), workers: 1)
    case ("tcp.rtt.task", "threads"), ("tcp.rtt.fiber", "threads"):
        return IOMeasurements.tcpRTTThreads(iterations: n(50_000))
    case ("timer.store.cancel", _): return TimerStoreBenchmark.run(wheel: system == "wheel", count: n(1_000_000), spreadNanos: 10_000_000_000, fire: false)
    case ("timer.store.fire", _): return TimerStoreBenchmark.run(wheel: system == "wheel", count: n(1_000_000), spreadNanos: 10_000_000_000, fire: true)
    case ("timer.store.fire.10k", _): return TimerStoreBenchmark.run(wheel: system == "wheel", count: n(10_000), spreadNanos: 10_000_000, fire: true)
    case ("tcp.idle.memory", "spindle"): return try IOMeasurements.idleConnectionMemory(count: 5_000, fibers: false)
    case ("tcp.idle.memory", "fibers"): return try IOMeasurements.idleConnectionMemory(count: 5_000, fibers: true)
    case ("tcp.idle.10k", "spindle"): return try IOMeasurements.idleConnectionsHeld(count: 10_000)
    case ("tcp.rtt.task", _), ("tcp.rtt.fiber", _), ("tcp.idle.memory", _), ("tcp.idle.10k", _):
        throw ValidationError("unknown system \(system) for \(row)")
    default: return nil
    }
}

/// The fiber and generator rows; nil if `row` is not one of them.
func fiberRow(row: String, system: String, n: (Int) -> Int) throws -> Double? {
    switch (row, system) {
    case ("fiber.switch", "spindle"): return try FiberMeasurements.fiberSwitch(iterations: n(10_000_000))
    case ("fiber.switch", "context"): return counted(n(10_000_000)) { spindle_bench_wrapped_switch(Int64($0)) }
    case ("fiber.switch", "asm"): return counted(n(10_000_000)) { spindle_bench_raw_switch(Int64($0)) }
    case ("fiber.spawn", "spindle"): return try FiberMeasurements.fiberSpawn(iterations: n(1_000_000))
    case ("fiber.memory.100k", "spindle"): return try FiberMeasurements.fiberMemory(count: 100_000)
    case ("fiber.memory.1m", "spindle"): return try FiberMeasurements.fiberMemory(count: 1_000_000)
    case ("channel.rtt.fiber", "spindle"): return try ChannelMeasurements.rttSpindleFibers(iterations: n(1_000_000))
    case ("thread.switch", "threads"): return counted(n(200_000)) { spindle_bench_thread_switch(Int64($0), 0) }
    case ("thread.switch", "threads-1cpu"): return counted(n(200_000)) { spindle_bench_thread_switch(Int64($0), 1) }
    case ("fiber.switch", _), ("fiber.spawn", _), ("fiber.memory.100k", _), ("fiber.memory.1m", _), ("thread.switch", _),
         ("channel.rtt.fiber", _):
        throw ValidationError("unknown system \(system) for \(row)")
    default: return nil
    }
}

/// A C loop's window: the whole call (its short warm-up included), over `ops` operations.
func counted(_ ops: Int, _ body: (Int) -> Double) -> Double {
    Window.beginCounting()
    let v = body(ops)
    Window.endCounting(ops: ops)
    return v
}

// `spindle bench-child ROW SYSTEM`: one measurement in a fresh process, printed as
// numbers on stdout. Not for people; `spindle bench` runs it.
import ArgumentParser
import Spindle

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
                return await IOMeasurements.sleepMemory(count: n(1_000_000), spindle: system != "swift-default",
                                                        afterCancel: row == "timer.cancelled.memory")
            case "timer.sleep": return await IOMeasurements.timerCost(count: n(100_000), spindle: system != "swift-default")
            case "channel.rtt.task":
                switch system {
                case "asyncstream", "asyncstream-spindle": return await ChannelMeasurements.rttAsyncStream(iterations: n(200_000))
                case "asyncchannel", "asyncchannel-spindle": return await ChannelMeasurements.rttAsyncChannel(iterations: n(200_000))
                default: return await ChannelMeasurements.rttSpindleTasks(iterations: n(200_000))
                }
            case "channel.throughput.1p", "channel.throughput.4p":
                let producers = row.hasSuffix("4p") ? 4 : 1
                let messages = n(2_000_000)
                switch system {
                case "asyncstream": return await ChannelMeasurements.throughputAsyncStream(producers: producers, messages: messages)
                case "asyncchannel": return await ChannelMeasurements.throughputAsyncChannel(producers: producers, messages: messages)
                default: return await ChannelMeasurements.throughputSpindle(producers: producers, messages: messages)
                }
            default: fatalError("unknown row \(row)")
            }
        }
        let cpus = ProcessStats.availableCPUs
        if row == "runtime.idle.cpu" || row == "runtime.idle.wakeups" {
            let r = try Measurements.idleRuntime(seconds: 5)
            print(row == "runtime.idle.cpu" ? r.cpuPercent : r.wakeupsPerSecond)
            return
        }
        if let v = try ioRow(row: row, system: system, n: n) {
            print(v)
            return
        }
        if let v = try fiberRow(row: row, system: system, n: n) {
            print(v)
            return
        }
        if row == "generator.next" {
            switch system {
            case "spindle": print(Measurements.generatorNext(iterations: n(10_000_000)))
            case "swift-iterator": print(Measurements.closureIteratorNext(iterations: n(10_000_000)))
            default: throw ValidationError("unknown system \(system) for \(row)")
            }
            return
        }
        switch system {
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
            print(v)
        case "spindle-preference":
            let rt = try Runtime(.init(flavor: .multiThread, workerCount: cpus))
            let v = try rt.run { await measure(Spawner(preference: rt), cpus) }
            print(v)
            rt.shutdown()
        case "swift-default", "asyncstream", "asyncchannel":
            let box = ResultBox()
            let sem = PosixSemaphore()
            Task.detached {
                box.value = await measure(Spawner(preference: nil), cpus)
                sem.signal()
            }
            sem.wait()
            print(box.value)
        default:
            throw ValidationError("unknown system \(system)")
        }
    }
}

import CSpindleBench
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
    case ("tcp.rtt.task", "spindle"): return try IOMeasurements.tcpRTTTasksGlobal(iterations: n(100_000), workers: nil)
    case ("tcp.rtt.task", "spindle-1worker"): return try IOMeasurements.tcpRTTTasksGlobal(iterations: n(100_000), workers: 1)
    case ("tcp.rtt.task", "spindle-preference"): return try IOMeasurements.tcpRTTTasks(iterations: n(100_000), workers: nil)
    case ("tcp.rtt.fiber", "spindle"): return try IOMeasurements.tcpRTTFibersGlobal(iterations: n(100_000), workers: nil)
    case ("tcp.rtt.fiber", "spindle-1worker"): return try IOMeasurements.tcpRTTFibersGlobal(iterations: n(100_000), workers: 1)
    case ("tcp.rtt", "threads"), ("tcp.rtt.task", "threads"), ("tcp.rtt.fiber", "threads"):
        return IOMeasurements.tcpRTTThreads(iterations: n(100_000))
    case ("timer.store.cancel", _): return TimerStoreBenchmark.run(wheel: system == "wheel", count: n(1_000_000), spreadNanos: 10_000_000_000, fire: false)
    case ("timer.store.fire", _): return TimerStoreBenchmark.run(wheel: system == "wheel", count: n(1_000_000), spreadNanos: 10_000_000_000, fire: true)
    case ("timer.store.fire.10k", _): return TimerStoreBenchmark.run(wheel: system == "wheel", count: n(10_000), spreadNanos: 10_000_000, fire: true)
    case ("tcp.idle.memory", "spindle"): return try IOMeasurements.idleConnectionMemory(count: 5_000, fibers: false)
    case ("tcp.idle.memory", "fibers"): return try IOMeasurements.idleConnectionMemory(count: 5_000, fibers: true)
    case ("tcp.idle.10k", "spindle"): return try IOMeasurements.idleConnectionsHeld(count: 10_000)
    case ("tcp.rtt.task", _), ("tcp.rtt.fiber", _), ("tcp.rtt", _), ("tcp.idle.memory", _), ("tcp.idle.10k", _):
        throw ValidationError("unknown system \(system) for \(row)")
    default: return nil
    }
}

/// The fiber and generator rows; nil if `row` is not one of them.
func fiberRow(row: String, system: String, n: (Int) -> Int) throws -> Double? {
    switch (row, system) {
    case ("fiber.switch", "spindle"): return try FiberMeasurements.fiberSwitch(iterations: n(10_000_000))
    case ("fiber.switch", "context"): return spindle_bench_wrapped_switch(Int64(n(10_000_000)))
    case ("fiber.switch", "asm"): return spindle_bench_raw_switch(Int64(n(10_000_000)))
    case ("fiber.spawn", "spindle"): return try FiberMeasurements.fiberSpawn(iterations: n(1_000_000))
    case ("fiber.memory.100k", "spindle"): return try FiberMeasurements.fiberMemory(count: 100_000)
    case ("fiber.memory.1m", "spindle"): return try FiberMeasurements.fiberMemory(count: 1_000_000)
    case ("channel.rtt.fiber", "spindle"): return try ChannelMeasurements.rttSpindleFibers(iterations: n(1_000_000))
    case ("thread.switch", "threads"): return spindle_bench_thread_switch(Int64(n(200_000)), 0)
    case ("thread.switch", "threads-1cpu"): return spindle_bench_thread_switch(Int64(n(200_000)), 1)
    case ("fiber.switch", _), ("fiber.spawn", _), ("fiber.memory.100k", _), ("fiber.memory.1m", _), ("thread.switch", _),
         ("channel.rtt.fiber", _):
        throw ValidationError("unknown system \(system) for \(row)")
    default: return nil
    }
}

// `spindle bench`: runs every benchmark row for every system, each (row, system) pair in a
// fresh child process (`spindle bench-child`), interleaving systems so that machine noise
// hits them alike, and prints medians as a table or JSON.
import ArgumentParser
import Foundation

struct Row {
    let name: String
    let unit: String
    let systems: [String]
    let summary: String
}

/// Systems:
/// - `spindle`: Spindle installed as Swift's global executors (`Runtime.main`), the way a
///   program opts in; plain `Task`s run on it.
/// Every row's `spindle` is that global install (tcp.rtt.fiber: fibers on the global
/// runtime); other shapes carry their own names.
/// - `spindle-preference`: a `Runtime` reached through `Task(executorPreference:)`, with
///   Swift's default executor still installed. Swift reads the preference on every
///   enqueue, which costs extra (see README).
/// - `spindle-1worker`: like `spindle`, with one worker.
/// - `swift-default`: Swift's own default executor (Dispatch), no Spindle.
/// - `swift-iterator`: plain Swift with no runtime (for rows that need none).
/// - `context`, `asm`: the fiber switch's layers alone (C loops, CSpindleBench).
/// - `threads`, `threads-1cpu`: two OS threads, free to use any CPU or pinned to one.
/// - `asyncstream`, `asyncchannel`: the standard library's AsyncStream and
///   swift-async-algorithms' AsyncChannel, on Swift's default executor;
///   `asyncstream-spindle`, `asyncchannel-spindle`: the same code with Spindle installed as
///   Swift's executor (like for like with Spindle's channel).
let allRows: [Row] = [
    Row(name: "task.yield", unit: "ns", systems: ["spindle", "spindle-1worker", "spindle-preference", "swift-default"],
        summary: "ns per await Task.yield() of one task looping"),
    Row(name: "task.pingpong", unit: "ns", systems: ["spindle", "spindle-preference", "swift-default"],
        summary: "ns per one-way hand-off between two tasks"),
    Row(name: "task.spawn", unit: "ns", systems: ["spindle", "spindle-preference", "swift-default"],
        summary: "ns per child task spawned and completed (1M children, task group)"),
    Row(name: "task.fanout", unit: "ns", systems: ["spindle", "spindle-1worker", "spindle-preference", "swift-default"],
        summary: "ns per task, 1M tiny tasks spread over all workers"),
    Row(name: "task.memory", unit: "bytes", systems: ["spindle", "swift-default"],
        summary: "RSS bytes per suspended task (100k tasks)"),
    Row(name: "generator.next", unit: "ns", systems: ["spindle", "swift-iterator"],
        summary: "ns per element from a Generator (fiber) vs an AnyIterator closure"),
    Row(name: "fiber.switch", unit: "ns", systems: ["spindle", "context", "asm"],
        summary: "ns per one-way switch: two fibers yielding on one worker; the bare resume/suspend; the bare assembly"),
    Row(name: "fiber.spawn", unit: "ns", systems: ["spindle"],
        summary: "ns per fiber spawned, run and joined (warm stack pool, one worker)"),
    Row(name: "fiber.memory.100k", unit: "bytes", systems: ["spindle"],
        summary: "RSS bytes per suspended fiber, 100k alive"),
    Row(name: "fiber.memory.1m", unit: "bytes", systems: ["spindle"],
        summary: "RSS bytes per suspended fiber, 1M alive"),
    Row(name: "thread.switch", unit: "ns", systems: ["threads", "threads-1cpu"],
        summary: "ns per one-way hand-off between two OS threads through futexes (any CPUs; one CPU)"),
    Row(name: "channel.rtt.task", unit: "ns", systems: ["spindle", "asyncstream", "asyncchannel", "asyncstream-spindle", "asyncchannel-spindle"],
        summary: "ns per round trip between two tasks through two channels"),
    Row(name: "channel.rtt.fiber", unit: "ns", systems: ["spindle"],
        summary: "ns per round trip between two fibers through two channels (one worker)"),
    Row(name: "channel.throughput.1p", unit: "msg/s", systems: ["spindle", "asyncstream", "asyncchannel"],
        summary: "messages per second from one producer task into one consumer task"),
    Row(name: "channel.throughput.4p", unit: "msg/s", systems: ["spindle", "asyncstream", "asyncchannel"],
        summary: "messages per second from four producer tasks into one consumer task"),
    Row(name: "tcp.rtt.task", unit: "ns", systems: ["spindle", "spindle-1worker", "spindle-preference", "threads"],
        summary: "ns per 1-byte loopback TCP round trip, client and server tasks (threads: blocking calls, the baseline)"),
    Row(name: "tcp.rtt.fiber", unit: "ns", systems: ["spindle", "spindle-1worker", "threads"],
        summary: "ns per 1-byte loopback TCP round trip, client and server fibers (threads: blocking calls, the baseline)"),
    Row(name: "tcp.rtt", unit: "ns", systems: ["threads"],
        summary: "ns per 1-byte loopback TCP round trip, two threads with blocking calls"),
    Row(name: "timer.sleep", unit: "ns", systems: ["spindle", "swift-default"],
        summary: "extra ns per timer armed and fired (100k tasks sleeping 1 ms at once)"),
    Row(name: "timer.late.1ms", unit: "ns", systems: ["spindle", "swift-default"],
        summary: "median ns a 1 ms sleep ends late (200 sleeps in a row, idle machine)"),
    Row(name: "timer.store.cancel", unit: "ns", systems: ["wheel", "heap"],
        summary: "ns per timer inserted and cancelled (1M timers over 10 s, cancelled in random order)"),
    Row(name: "timer.store.fire", unit: "ns", systems: ["wheel", "heap"],
        summary: "ns per timer inserted and fired (1M timers over 10 s, clock advanced 1 ms at a time)"),
    Row(name: "timer.store.fire.10k", unit: "ns", systems: ["wheel", "heap"],
        summary: "ns per timer inserted and fired (10k timers over 10 ms)"),
    Row(name: "timer.sleeping.memory", unit: "bytes", systems: ["spindle", "swift-default"],
        summary: "RSS bytes per sleeping task (1M tasks sleeping 1 hour)"),
    Row(name: "timer.cancelled.memory", unit: "bytes", systems: ["spindle", "swift-default"],
        summary: "RSS bytes per task still held after 1M sleeping tasks are cancelled and done"),
    Row(name: "tcp.idle.memory", unit: "bytes", systems: ["spindle", "fibers"],
        summary: "RSS bytes per idle open connection (5,000 connections, a waiting reader each)"),
    Row(name: "tcp.idle.10k", unit: "bytes", systems: ["spindle"],
        summary: "RSS bytes per idle connection, 10,000 held in one process (clients in another)"),
    Row(name: "runtime.idle.cpu", unit: "%", systems: ["spindle"],
        summary: "CPU used over 5 s by a truly idle runtime (every worker parked, a listener registered, a timer an hour ahead), percent of one core"),
    Row(name: "runtime.idle.wakeups", unit: "/s", systems: ["spindle"],
        summary: "context switches per second of that idle runtime's threads (the measuring main thread excluded)"),
]

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Spindle against Swift's default executor on this machine.")

    @Flag(help: "Print a JSON array of {name, system, value, unit} instead of a table.")
    var json = false

    @Option(help: "Comma-separated row names or prefixes to run (default: all).")
    var rows: String?

    @Option(help: "Child processes per (row, system); the median is reported.")
    var runs: Int = 5

    @Option(help: "Scale the iteration counts (e.g. 0.1 for a quick look).")
    var scale: Double = 1.0

    func run() throws {
        let wanted = rows?.split(separator: ",").map(String.init)
        let selected = allRows.filter { r in wanted.map { $0.contains { r.name.hasPrefix($0) } } ?? true }
        if selected.isEmpty { throw ValidationError("no row matches \(rows ?? "")") }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var results: [(row: Row, system: String, value: Double, samples: [Double])] = []
        let total = selected.reduce(0) { $0 + $1.systems.count }
        var done = 0
        for row in selected {
            var samples: [String: [Double]] = [:]
            for run in 0..<runs {
                // Interleave systems; alternate their order between runs.
                let order = run % 2 == 0 ? row.systems : row.systems.reversed()
                for system in order {
                    progress("  \(row.name) \(system) run \(run + 1)/\(runs)…")
                    samples[system, default: []] += try runChild(exe: exe, row: row.name, system: system)
                }
            }
            for system in row.systems {
                let s = samples[system] ?? []
                results.append((row, system, median(s), s))
                done += 1
            }
            progress("[\(done)/\(total)] \(row.name) done\n")
        }
        if json {
            let items = results.map { r in
                "{\"name\": \"\(r.row.name)\", \"system\": \"\(r.system)\", \"value\": \(format(r.value)), \"unit\": \"\(r.row.unit)\"}"
            }
            print("[\n  " + items.joined(separator: ",\n  ") + "\n]")
        } else {
            printTable(results.map { ($0.row, $0.system, $0.value) })
        }
    }

    private func runChild(exe: URL, row: String, system: String) throws -> [Double] {
        let p = Process()
        p.executableURL = exe
        p.arguments = ["bench-child", row, system, "--scale", String(scale)]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ValidationError("bench child \(row) \(system) failed with status \(p.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).compactMap { Double($0) }
    }

    private func printTable(_ results: [(Row, String, Double)]) {
        print("")
        print(pad("row", 22) + pad("system", 20) + pad("median", 12) + pad("unit", 7) + "vs baseline")
        print(String(repeating: "-", count: 80))
        for (row, system, value) in results {
            // The baseline is Swift's own executor, or for channel rows AsyncStream on it.
            let baseline = row.systems.first { $0 == "swift-default" || $0 == "asyncstream" || ($0 == "threads" && row.systems.count > 1) }
            var ratio = ""
            if let b = baseline, system != b,
               let base = results.first(where: { $0.0.name == row.name && $0.1 == b })?.2, base > 0 {
                ratio = String(format: "%.2f×", value / base) + " " + b
            }
            print(pad(row.name, 22) + pad(system, 20) + pad(format(value), 12) + pad(row.unit, 7) + ratio)
        }
    }
}

func progress(_ s: String) {
    FileHandle.standardError.write(Data((s.hasSuffix("\n") ? s : s + "\r").utf8))
}

func median(_ xs: [Double]) -> Double {
    if xs.isEmpty { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func format(_ v: Double) -> String {
    v >= 100 ? String(format: "%.0f", v) : String(format: "%.2f", v)
}

func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
}

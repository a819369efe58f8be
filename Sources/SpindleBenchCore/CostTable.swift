// The headline of `spindle bench`: the cost table of the defining document (what a coroutine
// costs, as the field quotes it) beside what this machine measures, for Spindle's tasks and
// fibers, OS threads, and (with --peers) Go, Tokio, Boost.Context and C threads.
import Foundation

public enum CostTable {
    /// Where one cell's figure comes from.
    public enum Source: Sendable {
        /// A (row, system) median, printed in the row's unit.
        case figure(row: String, system: String)
        /// How many times cheaper a switch is than an OS thread's: thread.switch/threads
        /// divided by the (row, system) figure.
        case cheaperThanThread(row: String, system: String)
    }

    public struct Claim: Sendable {
        public let claim: String
        public let quoted: String
        public let tasks: Source?
        public let fibers: Source?
        public let threads: Source?
        /// Peer systems (from --peers) and where their figure is.
        public let peers: [(label: String, source: Source)]
    }

    public static let threadRow = "thread.switch", threadSystem = "threads"

    public static let claims: [Claim] = [
        Claim(claim: "stackless coroutine switch", quoted: "~50 ns",
              tasks: .figure(row: "task.pingpong", system: "spindle"), fibers: nil, threads: nil,
              peers: [("tokio", .figure(row: "task.pingpong", system: "tokio")),
                      ("go", .figure(row: "task.pingpong", system: "go"))]),
        Claim(claim: "stackful coroutine (goroutine) switch", quoted: "~200 ns",
              tasks: nil, fibers: .figure(row: "fiber.switch", system: "spindle"), threads: nil,
              peers: [("go", .figure(row: "fiber.switch", system: "go-1proc")),
                      ("boost", .figure(row: "fiber.switch", system: "boost"))]),
        Claim(claim: "OS thread switch", quoted: "1-5 µs",
              tasks: nil, fibers: nil, threads: .figure(row: threadRow, system: threadSystem),
              peers: [("c", .figure(row: threadRow, system: "c-futex"))]),
        Claim(claim: "coroutine switch vs thread switch", quoted: "20-100× cheaper",
              tasks: .cheaperThanThread(row: "task.pingpong", system: "spindle"),
              fibers: .cheaperThanThread(row: "fiber.switch", system: "spindle"), threads: nil,
              peers: [("go", .cheaperThanThread(row: "fiber.switch", system: "go-1proc")),
                      ("tokio", .cheaperThanThread(row: "task.pingpong", system: "tokio"))]),
        Claim(claim: "memory per coroutine", quoted: "~hundreds of bytes",
              tasks: .figure(row: "task.memory", system: "spindle"),
              fibers: .figure(row: "fiber.memory.100k", system: "spindle"), threads: nil,
              peers: [("go", .figure(row: "task.memory", system: "go")),
                      ("tokio", .figure(row: "task.memory", system: "tokio"))]),
        Claim(claim: "coroutines per process (1M alive, bytes each)", quoted: "millions",
              tasks: .figure(row: "timer.sleeping.memory", system: "spindle"),
              fibers: .figure(row: "fiber.memory.1m", system: "spindle"), threads: nil,
              peers: [("go", .figure(row: "fiber.memory.1m", system: "go"))]),
    ]

    /// The rows the table reads (what `--quick` runs).
    public static var rowsNeeded: [String] {
        var names: [String] = []
        func add(_ s: Source?) {
            switch s {
            case .figure(let r, _)?: if !names.contains(r) { names.append(r) }
            case .cheaperThanThread(let r, _)?:
                for n in [r, threadRow] where !names.contains(n) { names.append(n) }
            case nil: break
            }
        }
        for c in claims { add(c.tasks); add(c.fibers); add(c.threads); c.peers.forEach { add($0.source) } }
        return names
    }

    /// The text of one cell, nil if its figure was not measured.
    public static func cell(_ source: Source?, in results: [BenchResult]) -> String? {
        func find(_ row: String, _ system: String) -> BenchResult? {
            results.first { $0.name == row && $0.system == system && !$0.value.isNaN }
        }
        switch source {
        case .figure(let row, let system)?:
            guard let r = find(row, system) else { return nil }
            var text = "\(Format.figure(r.value)) \(r.unit)"
            // A thread switch depends on placement: show both where both ran.
            if row == threadRow, let one = find(row, system + "-1cpu") {
                text += " (1 CPU: \(Format.figure(one.value)))"
            }
            return text
        case .cheaperThanThread(let row, let system)?:
            // The thread's switch is the cheaper of its two placements (any CPU, one CPU),
            // so the ratio never flatters the coroutine.
            let threads = [threadSystem, threadSystem + "-1cpu"].compactMap { find(threadRow, $0)?.value }
            guard let t = threads.min(), let s = find(row, system),
                  let x = Stats.ratio(t, to: s.value) else { return nil }
            return String(format: "%.0f×", x)
        case nil:
            return nil
        }
    }

    /// The table as aligned text (or a Markdown table), one line per claim.
    public static func render(_ results: [BenchResult], markdown: Bool = false) -> String {
        let header = ["claim", "quoted", "Spindle tasks", "Spindle fibers", "OS threads", "peers (same run)"]
        var rows: [[String]] = []
        for c in claims {
            let peers = c.peers.compactMap { p in cell(p.source, in: results).map { "\(p.label) \($0)" } }
            rows.append([c.claim, c.quoted, cell(c.tasks, in: results) ?? "-", cell(c.fibers, in: results) ?? "-",
                         cell(c.threads, in: results) ?? "-", peers.isEmpty ? "-" : peers.joined(separator: ", ")])
        }
        if markdown {
            var s = "| " + header.joined(separator: " | ") + " |\n"
            s += "|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
            for r in rows { s += "| " + r.joined(separator: " | ") + " |\n" }
            return s
        }
        let widths = header.indices.map { i in max(header[i].count, rows.map { $0[i].count }.max() ?? 0) + 2 }
        var s = zip(header, widths).map { Format.pad($0, $1) }.joined() + "\n"
        s += String(repeating: "-", count: widths.reduce(0, +)) + "\n"
        for r in rows { s += zip(r, widths).map { Format.pad($0, $1) }.joined() + "\n" }
        return s
    }
}

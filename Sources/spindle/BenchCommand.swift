// `spindle bench`: the runner. Plans (row, system) child processes, runs them interleaved
// (the order of systems alternates between runs, so drift hits them alike), adds one run per
// Spindle system with the allocation counter on, and prints the results.
import ArgumentParser
import Foundation
import SpindleBenchCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure what a coroutine costs on this machine: Spindle against Swift's executor, OS threads and (with --peers) Go, Tokio, Boost.Context and C.",
        discussion: "Rows (each runs every listed system in its own processes; `--rows` takes names or prefixes):\n\n"
            + allRows.map { "  \($0.name) [\($0.unit)]: \($0.summary).\n    systems: \($0.systems.joined(separator: ", "))" }.joined(separator: "\n")
    )

    @Flag(help: "Print a JSON array of {name, system, value, unit, allocs, ctxsw, samples} instead of tables.")
    var json = false

    @Flag(help: "Print the tables as Markdown (what README's tables are made from).")
    var markdown = false

    @Option(help: "Comma-separated row names or prefixes to run (default: all; with --quick: the cost table's rows).")
    var rows: String?

    @Option(help: "Child processes per (row, system), timed; the median is reported (default 5; 3 with --quick).")
    var runs: Int?

    @Option(help: "Scale the iteration counts (default 1; 0.1 with --quick). Memory rows keep their counts.")
    var scale: Double?

    @Flag(help: "About a minute: the cost table's rows only, 3 runs at a tenth of the iterations.")
    var quick = false

    @Flag(help: "Also build and run the peer programs in Benchmarks/peers (Go, Tokio, Boost.Context, C threads) whose toolchains are installed (Benchmarks/peers/install.sh installs them).")
    var peers = false

    @Option(help: "Where the peer programs are (default: Benchmarks/peers under the current directory).")
    var peersDir: String = "Benchmarks/peers"

    @Option(help: "Measure nothing: print the tables of a run saved with --json (with --markdown for README).")
    var fromJSON: String?

    @Option(help: "An A/B in one run: another build of this tool (e.g. a copy of .build/release/spindle made before a change); each Spindle system also runs on it, as SYSTEM@baseline, interleaved.")
    var baseline: String?

    func validate() throws {
        if let r = runs, r < 1 { throw ValidationError("--runs must be at least 1") }
        if let s = scale, !(s > 0) { throw ValidationError("--scale must be positive") }
        if json && markdown { throw ValidationError("choose one of --json and --markdown") }
    }

    func run() throws {
        if let path = fromJSON {
            let results = try BenchJSON.decode(String(contentsOfFile: path, encoding: .utf8))
            print(Report.render(results, rows: Report.rows(of: results, known: allRows), runs: nil, scale: nil, markdown: markdown))
            return
        }
        let runs = self.runs ?? (quick ? 3 : 5)
        let scale = self.scale ?? (quick ? 0.1 : 1.0)
        let wanted = rows.map { $0.split(separator: ",").map(String.init) } ?? (quick ? CostTable.rowsNeeded : nil)
        var selected = allRows.filter { r in wanted.map { $0.contains { r.name.hasPrefix($0) } } ?? true }
        if selected.isEmpty { throw ValidationError("no row matches \(rows ?? "")") }

        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var measurers: [String: [Measurer]] = [:]
        for row in selected {
            measurers[row.name] = row.systems.map { Measurer.spindle(exe: exe, row: row.name, system: $0, scale: scale) }
        }
        if let base = baseline {
            guard FileManager.default.isExecutableFile(atPath: base) else { throw ValidationError("--baseline \(base) is not an executable") }
            for (i, r) in selected.enumerated() {
                // Each system's twin right after it, so the ratio to the row's first
                // system reads both, and "SYSTEM@baseline" sits beside "SYSTEM".
                var systems: [String] = [], ms: [Measurer] = []
                for (system, m) in zip(r.systems, measurers[r.name] ?? []) {
                    systems += [system, system + "@baseline"]
                    ms += [m, Measurer.spindle(exe: base, row: r.name, system: system, scale: scale, label: system + "@baseline")]
                }
                selected[i] = Row(name: r.name, unit: r.unit, systems: systems, summary: r.summary, maxRuns: r.maxRuns)
                measurers[r.name] = ms
            }
        }
        if peers {
            for peer in try PeerPrograms.build(dir: peersDir) {
                for (rowName, system) in peer.list {
                    guard let i = selected.firstIndex(where: { $0.name == rowName }) else { continue }
                    let r = selected[i]
                    selected[i] = Row(name: r.name, unit: r.unit, systems: r.systems + [system], summary: r.summary, maxRuns: r.maxRuns)
                    measurers[rowName, default: []].append(Measurer.peer(binary: peer.binary, row: rowName, system: system, scale: scale))
                }
            }
        }

        func runsOf(_ r: Row) -> Int { min(runs, r.maxRuns ?? runs) }
        let plan = selected.reduce(0) { n, r in n + (measurers[r.name] ?? []).reduce(0) { $0 + runsOf(r) + ($1.countsAllocations(r.name) ? 1 : 0) } }
        let clock = Progress(total: plan)
        var results: [BenchResult] = []
        var failures: [String] = []
        for row in selected {
            let ms = measurers[row.name] ?? []
            var outputs: [String: [ChildOutput]] = [:]
            let rowRuns = runsOf(row)
            for run in 0..<rowRuns {
                for m in (run % 2 == 0 ? ms : ms.reversed()) {
                    clock.step("\(row.name) \(m.system) run \(run + 1)/\(rowRuns)")
                    switch m.measure(countAllocations: false) {
                    case .success(let o): outputs[m.system, default: []].append(o)
                    case .failure(let e): failures.append(e.message)
                    }
                }
            }
            for m in ms {
                let out = outputs[m.system] ?? []
                var allocs = Stats.median(out.map(\.allocs))
                if m.countsAllocations(row.name) {
                    clock.step("\(row.name) \(m.system) counting allocations")
                    switch m.measure(countAllocations: true) {
                    case .success(let o): allocs = o.allocs
                    case .failure(let e): failures.append(e.message)
                    }
                }
                results.append(BenchResult(name: row.name, system: m.system, value: Stats.median(out.map(\.value)),
                                           unit: row.unit, allocs: allocs, ctxsw: Stats.median(out.map(\.ctxsw)),
                                           samples: out.map(\.value)))
            }
        }
        clock.finish()
        for f in failures { FileHandle.standardError.write(Data("warning: \(f)\n".utf8)) }

        if json {
            print(try BenchJSON.encode(results))
        } else {
            print(Report.render(results, rows: selected, runs: runs, scale: scale, markdown: markdown))
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// One system's way of measuring a row: a command line that prints a `ChildOutput` line.
struct Measurer {
    let system: String
    let executable: String
    let arguments: [String]
    /// Spindle's own children count allocations in one extra run; peers count their own.
    let isSpindle: Bool

    static func spindle(exe: String, row: String, system: String, scale: Double, label: String? = nil) -> Measurer {
        Measurer(system: label ?? system, executable: exe, arguments: ["bench-child", row, system, "--scale", String(scale)], isSpindle: true)
    }

    static func peer(binary: String, row: String, system: String, scale: Double) -> Measurer {
        Measurer(system: system, executable: binary, arguments: [row, system, "--scale", String(scale)], isSpindle: false)
    }

    func countsAllocations(_ row: String) -> Bool {
        isSpindle && !row.hasPrefix("runtime.idle")
    }

    struct Failure: Error { let message: String }

    func measure(countAllocations: Bool) -> Result<ChildOutput, Failure> {
        let what = ([executable.split(separator: "/").last.map(String.init) ?? executable] + arguments).joined(separator: " ")
        let text: String
        do {
            text = try runCapturing(executable, arguments, environment: ["SPINDLE_BENCH_COUNT_ALLOCS": countAllocations ? "1" : "0"])
        } catch {
            return .failure(Failure(message: "\(what): \(error)"))
        }
        guard let o = ChildOutput.parse(text) else {
            return .failure(Failure(message: "\(what) printed no figure: \(text.prefix(200))"))
        }
        return .success(o)
    }
}

/// The progress line on stderr: step k of n, elapsed, and an estimate of what is left.
final class Progress {
    private let total: Int
    private var done = 0
    private let start = Date()

    init(total: Int) { self.total = total }

    func step(_ what: String) {
        let elapsed = Date().timeIntervalSince(start)
        var line = "[\(done + 1)/\(total)] \(what) · \(Progress.clock(elapsed))"
        if done > 0 { line += " · ~\(Progress.clock(elapsed / Double(done) * Double(total - done))) left" }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        done += 1
    }

    func finish() {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(total) measurements in \(Progress.clock(Date().timeIntervalSince(start)))\n".utf8))
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return "\(t / 60):" + (t % 60 < 10 ? "0" : "") + "\(t % 60)"
    }
}

/// The peer programs of Benchmarks/peers: built by its build.sh, each lists its rows.
enum PeerPrograms {
    struct Peer {
        let name: String
        let binary: String
        let list: [(row: String, system: String)]
    }

    static func build(dir: String) throws -> [Peer] {
        let script = URL(fileURLWithPath: dir).appendingPathComponent("build.sh").path
        guard FileManager.default.fileExists(atPath: script) else {
            throw ValidationError("--peers needs \(script) (run spindle bench from the package's root, or pass --peers-dir)")
        }
        let outDir = URL(fileURLWithPath: ".build-peers").standardizedFileURL.path
        FileHandle.standardError.write(Data("building the peers (\(script) \(outDir))…\n".utf8))
        let built = try runCapturing("/bin/bash", [script, outDir])
        var peers: [Peer] = []
        for line in built.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard f.count == 2 else { continue }
            let listing = try runCapturing(f[1], ["--list"])
            let list = listing.split(separator: "\n").compactMap { l -> (String, String)? in
                let p = l.split(separator: " ").map(String.init)
                return p.count == 2 ? (p[0], p[1]) : nil
            }
            peers.append(Peer(name: f[0], binary: f[1], list: list))
        }
        if peers.isEmpty {
            FileHandle.standardError.write(Data("no peer was built: run \(dir)/install.sh to install their toolchains\n".utf8))
        }
        return peers
    }
}

/// Runs a program to its end and returns its standard output (standard error passes
/// through); throws if it cannot start or exits with a non-zero status.
func runCapturing(_ exe: String, _ args: [String], environment extra: [String: String] = [:]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if !extra.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 } }
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw ValidationError("\(exe) \(args.joined(separator: " ")) failed with status \(p.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}

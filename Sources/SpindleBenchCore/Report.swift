// The printed form of a `spindle bench` run: a header line, the cost table, then every row
// with its median, its ratio to the row's first system, and allocations and context
// switches per operation.
import Foundation

public enum Report {
    /// "1.52× spindle": `value` over the row's first system's value, nil for that system
    /// itself or when either is unknown.
    public static func ratioText(_ r: BenchResult, in results: [BenchResult], row: Row) -> String? {
        guard let first = row.systems.first, r.system != first,
              let ref = results.first(where: { $0.name == row.name && $0.system == first }),
              let x = Stats.ratio(r.value, to: ref.value) else { return nil }
        return String(format: "%.2f× %@", x, first)
    }

    /// The rows of a saved run, in the order it ran, each with the systems it measured;
    /// summaries and run caps from `known` where the name matches.
    public static func rows(of results: [BenchResult], known: [Row]) -> [Row] {
        var names: [String] = []
        for r in results where !names.contains(r.name) { names.append(r.name) }
        return names.map { name in
            let systems = results.filter { $0.name == name }.map(\.system)
            let k = known.first { $0.name == name }
            return Row(name: name, unit: results.first { $0.name == name }!.unit, systems: systems,
                       summary: k?.summary ?? "", maxRuns: k?.maxRuns)
        }
    }

    /// `runs` and `scale` are nil for a run read back from JSON (the header then says so).
    public static func render(_ results: [BenchResult], rows: [Row], runs: Int?, scale: Double?, markdown: Bool) -> String {
        var s = ""
        if let runs, let scale {
            let cpus = ProcessInfo.processInfo.activeProcessorCount
            s += "spindle bench · \(ISO8601DateFormatter().string(from: Date())) · \(cpus) CPUs · median of \(runs) runs · scale \(scale)\n\n"
        } else {
            s += "spindle bench · a saved run (\(results.count) results)\n\n"
        }
        if CostTable.claims.contains(where: { c in [c.tasks, c.fibers, c.threads].contains { CostTable.cell($0, in: results) != nil } }) {
            s += markdown ? "### What a coroutine costs: the defining document's table, measured here\n\n" : "What a coroutine costs: the defining document's table, measured here\n\n"
            s += CostTable.render(results, markdown: markdown) + "\n"
        }
        let header = ["row", "system", "median", "unit", "vs first", "allocs/op", "ctxsw/op"]
        var lines: [[String]] = []
        for row in rows {
            for r in results where r.name == row.name {
                lines.append([row.name, r.system, r.value.isNaN ? "failed" : Format.figure(r.value), row.unit,
                              ratioText(r, in: results, row: row) ?? "", Format.perOp(r.allocs), Format.perOp(r.ctxsw)])
            }
        }
        if markdown {
            s += "### Every row\n\n| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---" }.joined(separator: "|") + "|\n"
            for l in lines { s += "| " + l.joined(separator: " | ") + " |\n" }
        } else {
            let widths = header.indices.map { i in max(header[i].count, lines.map { $0[i].count }.max() ?? 0) + 2 }
            s += zip(header, widths).map { Format.pad($0, $1) }.joined() + "\n"
            s += String(repeating: "-", count: widths.reduce(0, +)) + "\n"
            for l in lines { s += zip(l, widths).map { Format.pad($0, $1) }.joined() + "\n" }
        }
        s += "\nvs first: this system's median over the row's first system's (for msg/s, higher is better; for every other unit, lower). allocs/op from one extra run with the allocation counter on; ctxsw/op: voluntary + involuntary context switches of the whole process per operation, median of the timed runs. Rows of a million coroutines run at most 3 times (their figure moves well under 1% between runs).\n"
        return s
    }
}

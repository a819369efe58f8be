// What `spindle bench` computes, apart from measuring: medians, ratios, the per-row result
// and its JSON form, the line a measuring child prints, and the cost-table headline. Kept
// out of the executable so unit tests can check it (Tests/SpindleBenchTests).
import Foundation

/// One benchmark row: a quantity measured for several systems, each in its own processes.
public struct Row: Sendable {
    public let name: String
    public let unit: String
    public let systems: [String]
    public let summary: String
    /// At most this many timed runs (rows of a million coroutines: their figure moves by
    /// well under 1% between runs, and each run takes seconds).
    public let maxRuns: Int?

    public init(name: String, unit: String, systems: [String], summary: String, maxRuns: Int? = nil) {
        self.name = name
        self.unit = unit
        self.systems = systems
        self.summary = summary
        self.maxRuns = maxRuns
    }

    /// Units where a larger figure is better (rates); every other unit is a cost.
    public var higherIsBetter: Bool { unit.hasSuffix("/s") && unit != "/s" }
}

/// The median of one (row, system) over its runs, with allocations and context switches
/// per operation. `allocs` comes from a separate run with the allocation counter on (the
/// counter's atomic would disturb the timings); `ctxsw` is the median over the timed runs.
/// nil where unknown (a sanitizer build, a peer that cannot count).
public struct BenchResult: Codable, Equatable, Sendable {
    public var name: String
    public var system: String
    public var value: Double
    public var unit: String
    public var allocs: Double?
    public var ctxsw: Double?
    /// The timed runs' values, in the order they ran.
    public var samples: [Double]

    public init(name: String, system: String, value: Double, unit: String, allocs: Double?, ctxsw: Double?, samples: [Double]) {
        self.name = name
        self.system = system
        self.value = value
        self.unit = unit
        self.allocs = allocs
        self.ctxsw = ctxsw
        self.samples = samples
    }

    private enum CodingKeys: String, CodingKey { case name, system, value, unit, allocs, ctxsw, samples }

    /// Every key is always present; an unknown figure is `null` (not left out).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(system, forKey: .system)
        try c.encode(value, forKey: .value)
        try c.encode(unit, forKey: .unit)
        try c.encode(allocs, forKey: .allocs)
        try c.encode(ctxsw, forKey: .ctxsw)
        try c.encode(samples, forKey: .samples)
    }
}

/// The line a measuring process (`spindle bench-child`, or a peer program) prints:
/// `VALUE ALLOCS_PER_OP CTXSW_PER_OP`, where an unknown figure is `nan` or negative.
public struct ChildOutput: Equatable, Sendable {
    public var value: Double
    public var allocs: Double?
    public var ctxsw: Double?

    public init(value: Double, allocs: Double?, ctxsw: Double?) {
        self.value = value
        self.allocs = allocs
        self.ctxsw = ctxsw
    }

    public var line: String {
        "\(value) \(allocs.map { "\($0)" } ?? "nan") \(ctxsw.map { "\($0)" } ?? "nan")"
    }

    /// Parses the last non-empty line of `text`; nil if it is not three numbers (or one:
    /// a value alone, from a measurement that counts nothing).
    public static func parse(_ text: String) -> ChildOutput? {
        guard let last = text.split(whereSeparator: \.isNewline).last(where: { !$0.allSatisfy(\.isWhitespace) }) else { return nil }
        let fields = last.split(whereSeparator: \.isWhitespace).map { Double($0) }
        guard fields.count == 1 || fields.count == 3, fields.allSatisfy({ $0 != nil }), let v = fields[0], !v.isNaN else { return nil }
        func known(_ x: Double?) -> Double? { x.flatMap { $0.isNaN || $0 < 0 ? nil : $0 } }
        return ChildOutput(value: v, allocs: fields.count == 3 ? known(fields[1]) : nil, ctxsw: fields.count == 3 ? known(fields[2]) : nil)
    }
}

public enum Stats {
    /// The median; NaN for no samples.
    public static func median(_ xs: [Double]) -> Double {
        if xs.isEmpty { return .nan }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The median of the known values; nil if none is known.
    public static func median(_ xs: [Double?]) -> Double? {
        let k = xs.compactMap { $0 }
        return k.isEmpty ? nil : median(k)
    }

    /// `value / reference`, nil when the reference is not a positive number.
    public static func ratio(_ value: Double, to reference: Double) -> Double? {
        reference > 0 && reference.isFinite && value.isFinite ? value / reference : nil
    }

    /// A counter's change over a window, per operation; nil when either end is unknown
    /// (a negative reading) or there were no operations.
    public static func perOp(before: Int64, after: Int64, ops: Int) -> Double? {
        guard before >= 0, after >= before, ops > 0 else { return nil }
        return Double(after - before) / Double(ops)
    }
}

public enum BenchJSON {
    public static func encode(_ results: [BenchResult]) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try e.encode(results), as: UTF8.self)
    }

    public static func decode(_ text: String) throws -> [BenchResult] {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try d.decode([BenchResult].self, from: Data(text.utf8))
    }
}

public enum Format {
    /// A figure as the tables print it: whole numbers from 100 up, two decimals below.
    public static func figure(_ v: Double) -> String {
        if v.isNaN { return "-" }
        if abs(v) >= 1e6 { return String(format: "%.3gM", v / 1e6) }
        return abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.2f", v)
    }

    /// Allocations or context switches per operation; "-" when unknown.
    public static func perOp(_ v: Double?) -> String {
        guard let v else { return "-" }
        if v == 0 { return "0" }
        return v >= 10 ? String(format: "%.0f", v) : (v >= 0.01 ? String(format: "%.2f", v) : String(format: "%.1e", v))
    }

    public static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
    }
}

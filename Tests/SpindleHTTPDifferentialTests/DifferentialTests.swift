// Spindle's HTTPParser against llhttp: the corpus at every split point and byte by byte,
// then thousands of seeded mutations of the valid corpus. See Harness.swift for what is
// compared and Allowlist.swift for the differences that are allowed, and why.
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What one comparison found, gathered per test so that a failure prints a few full
/// examples and a count, not thousands of issues.
struct Findings {
    var compared = 0
    var allowed: [String: Int] = [:]
    /// Unexplained differences: a key per class of difference, with the first examples.
    var failures: [(key: String, text: String)] = []
    var failureCount = 0
    /// Unexplained differences per class (the suspected bug, or the kind of difference).
    var classes: [String: Int] = [:]

    mutating func fail(_ key: String, _ text: String) {
        failureCount += 1
        classes[String(key.prefix { $0 != "|" }), default: 0] += 1
        if failures.filter({ $0.key == key }).count < 2 && failures.count < 40 { failures.append((key, text)) }
    }

    func record(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for f in failures { Issue.record(Comment(rawValue: f.text), sourceLocation: sourceLocation) }
        #expect(failureCount == 0, "\(failureCount) unexplained difference(s) in \(compared) comparisons of \(what)",
                sourceLocation: sourceLocation)
    }
}

func cutsDescription(_ cuts: [Int], _ n: Int) -> String {
    if cuts.isEmpty { return "in one piece" }
    if cuts.count == n - 1 && n > 2 { return "byte by byte" }
    if cuts.count <= 4 { return "split at \(cuts)" }
    return "split at \(cuts.count) points \(cuts.prefix(6))..."
}

/// Each side's outcome on the input in one piece.
struct Wholes {
    var spindle: Outcome
    var llhttp: Outcome
    init(_ input: Input) {
        spindle = spindleParse(input)
        llhttp = nioParse(input)
    }
}

/// Compares the two parsers on `input` cut at `cuts`, and each with itself in one piece
/// (`whole`): neither outcome may depend on where the input is cut.
func compare(_ input: Input, cuts: [Int], whole: Wholes, into findings: inout Findings) {
    findings.compared += 1
    let s = cuts.isEmpty ? whole.spindle : spindleParse(input, splitAt: cuts)
    let n = cuts.isEmpty ? whole.llhttp : nioParse(input, splitAt: cuts)
    let how = cutsDescription(cuts, input.bytes.count)
    if !cuts.isEmpty, let d = difference(s, whole.spindle) {
        findings.fail("Spindle depends on the split|\(escaped(Array(input.bytes.prefix(24))))", """
            SPINDLE DEPENDS ON THE SPLIT (split vs whole: \(d)): \(input), \(how)
              Spindle split: \(s)
              Spindle whole: \(whole.spindle)
            """)
    }
    if !cuts.isEmpty, let d = difference(n, whole.llhttp) {
        findings.fail("llhttp depends on the split|\(escaped(Array(input.bytes.prefix(24))))", """
            NIO/LLHTTP DEPENDS ON THE SPLIT (split vs whole: \(d); the comparison is unreliable here): \(input), \(how)
              llhttp split: \(n)
              llhttp whole: \(whole.llhttp)
            """)
    }
    guard let d = difference(s, n) else { return }
    if let known = knownDivergences(input, s, n) {
        for k in known { findings.allowed[k.name, default: 0] += 1 }
        return
    }
    let bug = suspectedBug(input, s, n)
    let label = bug.map { "SUSPECTED SPINDLE BUG: \($0.name) (\($0.rfc))" } ?? "UNEXPLAINED DIFFERENCE"
    let key = bug?.name ?? "\(d)|\(s.failure.map { "\($0)" } ?? "")|\(n.failure.map { "\($0)" } ?? "")"
    findings.fail(key, """
        \(label) (\(d)): \(input), \(how)
          Spindle: \(s)
          llhttp:  \(n)
        """)
}

/// Every split into two pieces, and byte by byte. For inputs over 4096 bytes (the limit
/// cases), the first and last 1024 points, a stride of 97 between, and every point within
/// 4 bytes of a line end (where the limits bite); under SPINDLE_TEST_SCALE, 1024/scale and
/// 97*scale.
func everySplit(_ bytes: [UInt8]) -> [[Int]] {
    let count = bytes.count
    guard count > 1 else { return [[]] }
    let points: [Int]
    if count <= 4096 {
        points = Array(1..<count)
    } else {
        let edge = max(64, 1024 / testScale)
        let lineEnds = bytes.indices.filter { bytes[$0] == 0x0A }.flatMap { ($0 - 3)...($0 + 4) }
        let all = Array(1...edge) + Array(stride(from: edge + 1, to: count - edge, by: 97 * testScale))
            + Array((count - edge)..<count) + lineEnds
        points = Set(all).filter { $0 > 0 && $0 < count }.sorted()
    }
    return [[]] + points.map { [$0] } + [Array(1..<count)]
}

@Suite struct CorpusTests {
    @Test(arguments: corpus)
    func againstLLHTTPAtEverySplit(_ c: Case) {
        let whole = Wholes(c.input)
        switch c.expect {
        case .accept: #expect(whole.spindle.accepted, "RFC 9110/9112 ask to accept \(c.input): \(whole.spindle)")
        case .reject: #expect(!whole.spindle.accepted, "RFC 9110/9112 ask to reject \(c.input): \(whole.spindle)")
        case .either: break
        }
        var findings = Findings()
        for cuts in everySplit(c.input.bytes) {
            compare(c.input, cuts: cuts, whole: whole, into: &findings)
        }
        findings.record(c.name)
    }

    @Test func corpusIsLargeAndHasBothKinds() {
        let comparisons = corpus.map { everySplit($0.input.bytes).count }.reduce(0, +)
        print("SpindleHTTPDifferentialTests: \(corpus.count) corpus cases, \(comparisons) comparisons (every split, byte by byte)")
        #expect(corpus.count >= 60)
        #expect(corpus.contains { $0.input.kind == .request } && corpus.contains { $0.input.kind == .response })
        #expect(Set(corpus.map { "\($0.input.kind) \($0.name)" }).count == corpus.count, "names are unique")
    }
}

// MARK: mutations

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and the same sequence everywhere.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}

/// The seed: fixed, so a run is reproducible; SPINDLE_DIFF_SEED overrides it (decimal or 0x hex).
let mutationSeed: UInt64 = {
    if let p = getenv("SPINDLE_DIFF_SEED") {
        let s = String(cString: p)
        if s.hasPrefix("0x"), let v = UInt64(s.dropFirst(2), radix: 16) { return v }
        if let v = UInt64(s) { return v }
    }
    return 0x5EED_D1FF_0000_0001
}()

/// Mutations per kind (requests, responses) at scale 1; SPINDLE_DIFF_MUTATIONS overrides
/// (for longer hunts with other seeds).
let mutationsPerKind: Int = {
    if let p = getenv("SPINDLE_DIFF_MUTATIONS"), let n = Int(String(cString: p)), n > 0 { return n }
    return 3000
}()

enum Mutation: CaseIterable {
    case flipBit, replaceByte, insertByte, deleteByte, deleteRange, insertSpecial, duplicateLine, deleteLine,
         swapLines, changeDigit, insertDigit, toggleCase
}

/// Bytes and sequences a mutation inserts: the ones parsers disagree about.
let specials: [[UInt8]] = [[0x0D], [0x0A], [0x00], [0x20], [0x09], [0x3A], [0x3B], [0x2C], [0x0D, 0x0A],
                           [0x0D, 0x0A, 0x20], [0x22], [0x3D], [0x7F], [0xFF], [0x30], b(", chunked"),
                           b("\r\nContent-Length: 1"), b("\r\nTransfer-Encoding: chunked"), b("\r\n\r\n")]

func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var bytes = input
    for _ in 0...rng.below(3) {
        let n = bytes.count
        if n == 0 { break }
        let i = rng.below(n)
        switch rng.pick(Mutation.allCases) {
        case .flipBit: bytes[i] ^= UInt8(1) << UInt8(rng.below(8))
        case .replaceByte: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
        case .insertByte: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
        case .deleteByte: bytes.remove(at: i)
        case .deleteRange: bytes.removeSubrange(i..<min(n, i + 1 + rng.below(8)))
        case .insertSpecial: bytes.insert(contentsOf: rng.pick(specials), at: i)
        case .duplicateLine, .deleteLine, .swapLines:
            var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            if lines.count < 2 { break }
            let l = rng.below(lines.count - 1)   // not the last (it has no LF)
            switch rng.below(3) {
            case 0: lines.insert(lines[l], at: l)
            case 1: lines.remove(at: l)
            default: lines.swapAt(l, rng.below(lines.count - 1))
            }
            bytes = Array(lines.joined(separator: [0x0A]))
        case .changeDigit, .insertDigit:
            let digits = bytes.indices.filter { (0x30...0x39).contains(bytes[$0]) }
            if digits.isEmpty { break }
            let d = rng.pick(digits)
            let new = UInt8(0x30 + rng.below(10))
            if rng.below(2) == 0 { bytes[d] = new } else { bytes.insert(new, at: d) }
        case .toggleCase:
            if (0x41...0x5A).contains(bytes[i]) || (0x61...0x7A).contains(bytes[i]) { bytes[i] ^= 0x20 }
        }
    }
    return bytes
}

/// The splits a mutated input is compared at: whole, byte by byte, one random split into
/// two, and one into up to eight pieces.
func mutationSplits(_ count: Int, _ rng: inout SplitMix64) -> [[Int]] {
    guard count > 1 else { return [[]] }
    let many = (0..<(1 + rng.below(7))).map { _ in 1 + rng.below(count - 1) }
    return [[], Array(1..<count), [1 + rng.below(count - 1)], many]
}

func runMutations(_ kind: Input.Kind) -> Findings {
    let seeds = corpus.filter { $0.input.kind == kind && $0.expect == .accept && $0.input.bytes.count <= 4096 }
    var rng = SplitMix64(state: mutationSeed ^ (kind == .request ? 0 : 0xA5A5_A5A5))
    var findings = Findings()
    let count = max(1, mutationsPerKind / testScale)
    for _ in 0..<count {
        let seed = rng.pick(seeds)
        let input = Input(kind: kind, bytes: mutate(seed.input.bytes, &rng), toHEAD: seed.input.toHEAD)
        let whole = Wholes(input)
        for cuts in mutationSplits(input.bytes.count, &rng) {
            compare(input, cuts: cuts, whole: whole, into: &findings)
        }
    }
    return findings
}

@Suite struct MutationTests {
    @Test(arguments: [Input.Kind.request, .response])
    func mutatedInputsAgainstLLHTTP(_ kind: Input.Kind) {
        let count = max(1, mutationsPerKind / testScale)
        print("SpindleHTTPDifferentialTests: \(count) \(kind) mutations, seed 0x\(String(mutationSeed, radix: 16)) (SPINDLE_DIFF_SEED overrides)")
        let findings = runMutations(kind)
        let allowed = findings.allowed.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        let unexplained = findings.classes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        print("SpindleHTTPDifferentialTests: \(kind) mutations: \(findings.compared) comparisons, allowlisted: [\(allowed)], unexplained: \(findings.failureCount) [\(unexplained)]")
        findings.record("\(count) mutated \(kind)s")
    }
}

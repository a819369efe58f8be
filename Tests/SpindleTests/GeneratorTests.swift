@testable import Spindle
import Synchronization
import Testing

/// Counts live instances, to prove a body's frames released what they held.
final class Tracked: Sendable {
    static let live = Atomic<Int>(0)
    init() { Tracked.live.add(1, ordering: .relaxed) }
    deinit { Tracked.live.subtract(1, ordering: .relaxed) }
}

private struct Tree {
    indirect enum Node { case leaf, node(Node, Int, Node) }
    static func build(_ values: ArraySlice<Int>) -> Node {
        if values.isEmpty { return .leaf }
        let mid = values.startIndex + values.count / 2
        return .node(build(values[..<mid]), values[mid], build(values[(mid + 1)...]))
    }
    /// In-order walk that yields from every level of the recursion.
    static func walk(_ n: Node, _ yield: Yielder<Int>) throws {
        guard case .node(let l, let v, let r) = n else { return }
        try walk(l, yield)
        try yield(v)
        try walk(r, yield)
    }
}

@Suite(.serialized) struct GeneratorTests {
    @Test func yieldsInOrder() {
        let g = Generator<Int> { yield in
            for i in 0..<5 { try yield(i * i) }
        }
        #expect(Array(g) == [0, 1, 4, 9, 16])
        #expect(g.next() == nil) // stays finished
        #expect(g.error == nil)
    }

    @Test func yieldFromNestedRecursion() {
        let values = Array(0..<1_000)
        let tree = Tree.build(values[...])
        let g = Generator<Int> { yield in try Tree.walk(tree, yield) }
        #expect(Array(g) == values)
    }

    @Test func earlyBreakUnwindsTheBody() {
        let before = Tracked.live.load(ordering: .relaxed)
        let unwound = Flag()
        do {
            let g = Generator<Int> { yield in
                let held = Tracked()
                defer { withExtendedLifetime(held) { unwound.set() } }
                for i in 0..<1_000_000 { try yield(i) }
            }
            var taken: [Int] = []
            for v in g {
                taken.append(v)
                if v == 2 { break }
            }
            #expect(taken == [0, 1, 2])
            #expect(Tracked.live.load(ordering: .relaxed) == before + 1) // still suspended, holding it
        }
        // The generator is gone: its body unwound and released what it held.
        #expect(unwound.isSet)
        #expect(Tracked.live.load(ordering: .relaxed) == before)
    }

    @Test func droppedBeforeStartingNeverRuns() {
        let ran = Flag()
        do {
            let g = Generator<Int> { _ in ran.set() }
            _ = g
        }
        #expect(!ran.isSet)
    }

    @Test func errorsReachTheConsumer() throws {
        let g = Generator<Int> { yield in
            try yield(1)
            throw Boom(code: 9)
        }
        #expect(try g.nextOrThrow() == 1)
        #expect(throws: Boom(code: 9)) { try g.nextOrThrow() }
        #expect(try g.nextOrThrow() == nil)
        // for-in stops at the error and leaves it in `error`.
        let h = Generator<Int> { yield in
            try yield(1)
            throw Boom(code: 4)
        }
        #expect(Array(h) == [1])
        #expect((h.error as? Boom) == Boom(code: 4))
    }

    @Test func bodyThatSwallowsGeneratorExitStillEnds() {
        let before = Tracked.live.load(ordering: .relaxed)
        do {
            let g = Generator<Int> { yield in
                let held = Tracked()
                for i in 0..<10 { try? yield(i) } // ignores the exit, keeps "yielding"
                withExtendedLifetime(held) {}
            }
            #expect(g.next() == 0)
        }
        #expect(Tracked.live.load(ordering: .relaxed) == before)
    }

    @Test func manyGeneratorsOneAfterAnother() {
        var total = 0
        for n in 0..<2_000 {
            let g = Generator<Int> { yield in for i in 0..<(n % 7) { try yield(i) } }
            total += g.reduce(0, +)
        }
        // sum over n of (k*(k-1)/2) with k = n % 7
        let expected = (0..<2_000).reduce(0) { acc, n in let k = n % 7; return acc + k * (k - 1) / 2 }
        #expect(total == expected)
    }
}

// What `spindle bench` computes, and the bench run as a user runs it.
import Foundation
import SpindleBenchCore
import Testing

@Suite struct BenchComputationTests {
    @Test func medianOfOddEvenAndNoSamples() {
        #expect(Stats.median([5, 1, 3]) == 3)
        #expect(Stats.median([4, 1, 3, 2]) == 2.5)
        #expect(Stats.median([Double]()).isNaN)
        #expect(Stats.median([nil, 2, 6, nil] as [Double?]) == 4)
        #expect(Stats.median([nil, nil] as [Double?]) == nil)
    }

    @Test func ratiosAndPerOperationCounts() {
        #expect(Stats.ratio(300, to: 150) == 2)
        #expect(Stats.ratio(1, to: 0) == nil)
        #expect(Stats.ratio(.nan, to: 3) == nil)
        #expect(Stats.perOp(before: 10, after: 2_010, ops: 1_000) == 2)
        #expect(Stats.perOp(before: -1, after: -1, ops: 1_000) == nil) // counter off
        #expect(Stats.perOp(before: 5, after: 5, ops: 0) == nil)
    }

    @Test func childOutputLines() {
        #expect(ChildOutput.parse("175.5 0.02 1.5e-05\n") == ChildOutput(value: 175.5, allocs: 0.02, ctxsw: 1.5e-05))
        #expect(ChildOutput.parse("warming up\n42 nan nan\n") == ChildOutput(value: 42, allocs: nil, ctxsw: nil))
        #expect(ChildOutput.parse("42 -1 3") == ChildOutput(value: 42, allocs: nil, ctxsw: 3))
        #expect(ChildOutput.parse("42") == ChildOutput(value: 42, allocs: nil, ctxsw: nil))
        #expect(ChildOutput.parse("") == nil)
        #expect(ChildOutput.parse("nan 1 1") == nil)
        #expect(ChildOutput.parse("12 x 3") == nil)
        let o = ChildOutput(value: 3.25, allocs: nil, ctxsw: 0.5)
        #expect(ChildOutput.parse(o.line) == o)
    }

    @Test func jsonHasEveryFieldAndRoundTrips() throws {
        let rs = [
            BenchResult(name: "task.yield", system: "spindle", value: 60.5, unit: "ns", allocs: 0, ctxsw: 0.001, samples: [60, 61, 60.5]),
            BenchResult(name: "runtime.idle.cpu", system: "spindle", value: 0.02, unit: "%", allocs: nil, ctxsw: nil, samples: [0.02]),
        ]
        let text = try BenchJSON.encode(rs)
        #expect(try BenchJSON.decode(text) == rs)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        #expect(objects.count == 2)
        for o in objects {
            #expect(Set(o.keys) == ["name", "system", "value", "unit", "allocs", "ctxsw", "samples"])
        }
        #expect(objects[1]["allocs"] is NSNull)
    }

    @Test func costTableReadsTheRightRows() {
        let rs = [
            BenchResult(name: "task.pingpong", system: "spindle", value: 200, unit: "ns", allocs: 0, ctxsw: 0, samples: [200]),
            BenchResult(name: "fiber.switch", system: "spindle", value: 40, unit: "ns", allocs: 0, ctxsw: 0, samples: [40]),
            BenchResult(name: "thread.switch", system: "threads", value: 4_000, unit: "ns", allocs: 0, ctxsw: 1, samples: [4_000]),
            BenchResult(name: "fiber.switch", system: "go-1proc", value: 100, unit: "ns", allocs: 0, ctxsw: 0, samples: [100]),
        ]
        #expect(CostTable.cell(.figure(row: "task.pingpong", system: "spindle"), in: rs) == "200 ns")
        #expect(CostTable.cell(.cheaperThanThread(row: "task.pingpong", system: "spindle"), in: rs) == "20×")
        #expect(CostTable.cell(.cheaperThanThread(row: "fiber.switch", system: "spindle"), in: rs) == "100×")
        #expect(CostTable.cell(.figure(row: "task.memory", system: "spindle"), in: rs) == nil)
        // The cheaper thread placement is the one a coroutine is compared with.
        let pinned = rs + [BenchResult(name: "thread.switch", system: "threads-1cpu", value: 2_000, unit: "ns", allocs: 0, ctxsw: 1, samples: [2_000])]
        #expect(CostTable.cell(.cheaperThanThread(row: "task.pingpong", system: "spindle"), in: pinned) == "10×")
        #expect(CostTable.cell(.figure(row: "thread.switch", system: "threads"), in: pinned) == "4000 ns (1 CPU: 2000)")
        let table = CostTable.render(rs)
        #expect(table.contains("go 100 ns"))
        #expect(table.contains("go 40×"))
        for row in ["task.pingpong", "fiber.switch", "thread.switch", "task.memory", "fiber.memory.100k", "fiber.memory.1m", "timer.sleeping.memory"] {
            #expect(CostTable.rowsNeeded.contains(row), "\(row)")
        }
    }

    @Test func aSavedRunGivesBackItsRowsInOrder() {
        let rs = [
            BenchResult(name: "b.row", system: "spindle", value: 1, unit: "ns", allocs: nil, ctxsw: nil, samples: [1]),
            BenchResult(name: "a.row", system: "spindle", value: 2, unit: "bytes", allocs: nil, ctxsw: nil, samples: [2]),
            BenchResult(name: "b.row", system: "go", value: 3, unit: "ns", allocs: nil, ctxsw: nil, samples: [3]),
        ]
        let known = [Row(name: "a.row", unit: "bytes", systems: ["spindle"], summary: "A", maxRuns: 3)]
        let rows = Report.rows(of: rs, known: known)
        #expect(rows.map(\.name) == ["b.row", "a.row"])
        #expect(rows[0].systems == ["spindle", "go"])
        #expect(rows[1].unit == "bytes" && rows[1].summary == "A" && rows[1].maxRuns == 3)
    }

    @Test func ratioIsToTheRowsFirstSystem() {
        let row = Row(name: "task.yield", unit: "ns", systems: ["spindle", "swift-default"], summary: "")
        let a = BenchResult(name: "task.yield", system: "spindle", value: 50, unit: "ns", allocs: 0, ctxsw: 0, samples: [50])
        let b = BenchResult(name: "task.yield", system: "swift-default", value: 125, unit: "ns", allocs: 0, ctxsw: 0, samples: [125])
        #expect(Report.ratioText(b, in: [a, b], row: row) == "2.50× spindle")
        #expect(Report.ratioText(a, in: [a, b], row: row) == nil)
    }
}

/// Runs the `spindle` executable built next to the test bundle.
func runSpindle(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
    let p = Process()
    p.executableURL = dir.appendingPathComponent("spindle")
    p.arguments = args
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read stderr on another thread so neither pipe can fill and stall the child.
    // SAFETY (nonisolated(unsafe)): written only by the reader thread, read only after
    // errRead.wait(), which orders the two.
    nonisolated(unsafe) var errData = Data()
    let errRead = DispatchSemaphore(value: 0)
    Thread {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        errRead.signal()
    }.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    errRead.wait() // stderr read to its end (the child has exited, so it ends)
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

@Suite(.serialized) struct BenchRunTests {
    @Test func theAllocationCounterCountsEveryMalloc() throws {
        let r = try runSpindle(["bench-child", "selftest.allocs", "counter", "--scale", "1"], environment: ["SPINDLE_BENCH_COUNT_ALLOCS": "1"])
        #expect(r.status == 0, "\(r.err)")
        let o = try #require(ChildOutput.parse(r.out), "\(r.out)")
        #expect(o.allocs == 1_000) // exactly the 1,000 mallocs per operation it makes
        let off = try runSpindle(["bench-child", "selftest.allocs", "counter"], environment: ["SPINDLE_BENCH_COUNT_ALLOCS": "0"])
        #expect(ChildOutput.parse(off.out)?.allocs == nil) // counting off: unknown, not zero
    }

    @Test func quickBenchPrintsJSONThatParses() throws {
        let r = try runSpindle(["bench", "--quick", "--rows", "task.yield", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let results = try BenchJSON.decode(r.out)
        #expect(Set(results.map(\.system)) == ["spindle", "spindle-1worker", "spindle-preference", "swift-default", "task.floor"])
        for x in results {
            #expect(x.name == "task.yield")
            #expect(x.value > 0 && x.value.isFinite, "\(x.system)")
            #expect(x.samples.count == 3, "\(x.system)")
            #expect(x.allocs != nil && x.ctxsw != nil, "\(x.system)")
        }
        #expect(r.err.contains("measurements in"), "the progress line ends with a summary")
    }
}

// Runtime.dump(): a fiber parked three calls deep is listed with those three calls; a
// worker stuck in one job is reported with its thread's stack; the dump works from inside
// the runtime; SPINDLE_DUMP_SIGNAL prints it when the signal arrives (subprocess).
import Foundation
import Spindle
import Synchronization
import Testing

@inline(never) func dumpInner(_ c: Channel<Int>) throws -> Int? { try c.receive() }
@inline(never) func dumpMiddle(_ c: Channel<Int>) throws -> Int? { try dumpInner(c) }
@inline(never) func dumpOuter(_ c: Channel<Int>) throws -> Int? { try dumpMiddle(c) }

@Suite(.serialized) struct DumpTests {
    @Test func aParkedFiberIsListedWithTheCallsItParkedIn() async throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "dump-deep"))
        defer { rt.shutdown() }
        let c = Channel<Int>(capacity: 0)
        let f = rt.spawnFiber(name: "deep") { try dumpOuter(c) }
        var found: RuntimeDump.Fiber?
        #expect(await waitUntil {
            found = rt.dump(printing: false).fibers.first { $0.name == "deep" && $0.state == "parked" }
            return found != nil
        })
        let fiber = try #require(found)
        #expect(fiber.parkedOn == "channel")
        #expect(fiber.suspendedFor != nil)
        let frames = fiber.backtrace
        func index(_ name: String) -> Int? { frames.firstIndex { $0.contains("SpindleTests.\(name)(") } }
        let inner = try #require(index("dumpInner"), "no dumpInner in \(frames)")
        let middle = try #require(index("dumpMiddle"), "no dumpMiddle in \(frames)")
        let outer = try #require(index("dumpOuter"), "no dumpOuter in \(frames)")
        #expect(inner < middle && middle < outer, "\(frames)")
        let dump = rt.dump(printing: false)
        #expect(dump.workers.count == 2 && dump.workers.allSatisfy(\.answered))
        #expect(dump.liveFibers == 1)
        #expect(dump.description.contains("fiber 'deep' on worker"))
        try await c.send(1)
        #expect(try await f.value == 1)
        #expect(rt.dump(printing: false).fibers.isEmpty)
    }

    @Test func aWorkerStuckInOneJobIsReportedWithItsStack() async throws {
        // The stall detector stays on: its signal is what takes a busy thread's stack.
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "dump-stuck"))
        defer { rt.shutdown() }
        let spinning = Atomic<Bool>(false), release = Atomic<Bool>(false)
        let job = Task(executorPreference: rt) {
            spinning.store(true, ordering: .releasing)
            let limit = ContinuousClock.now + .seconds(60)  // a hang guard, not a timing
            while !release.load(ordering: .acquiring) && ContinuousClock.now < limit {}
        }
        #expect(await waitUntil { spinning.load(ordering: .acquiring) })
        let dump = rt.dump(printing: false)
        release.store(true, ordering: .releasing)
        await job.value
        let stuck = dump.workers.filter { !$0.answered }
        #expect(stuck.count == 1, "\(dump)")
        #expect(stuck.first?.state.contains("inside one job") == true, "\(dump)")
        // Frames taken by the signal on that thread (not a placeholder saying why none).
        #expect(stuck.first.map { !$0.backtrace.isEmpty && !$0.backtrace[0].hasPrefix("(no backtrace") } == true, "\(dump)")
        #expect(dump.workers.filter(\.answered).count == 1)
    }

    @Test func aFiberCanDumpItsOwnRuntime() async throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "dump-self"))
        defer { rt.shutdown() }
        let dump = try await rt.spawnFiber(name: "asker") { rt.dump(printing: false) }.value
        let me = try #require(dump.fibers.first { $0.name == "asker" })
        #expect(me.state == "running")
        #expect(dump.workers.count == 1 && dump.workers[0].answered)
    }

    @Test func theDumpSignalPrintsEveryFiber() throws {
        let r = try runProbe("dump-signal", environment: ["SPINDLE_DUMP_SIGNAL": "USR1"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("Spindle dump of runtime 'probe-dump'"), "\(r.stdout)")
        #expect(r.stdout.contains("fiber 'sleeper' on worker 0: parked (channel)"), "\(r.stdout)")
        for f in ["probeDumpInner", "probeDumpMiddle", "probeDumpOuter"] {
            #expect(r.stdout.contains("spindle_probe.\(f)("), "no \(f): \(r.stdout)")
        }
    }
}

// The trace recorder: its rings under concurrent writers and a concurrent exporter, the
// wake edges of a known program, and the Chrome JSON's schema with its flows matched.
// The recorder is process-wide, so these run one at a time.
import Foundation
@testable import Spindle
import Synchronization
import Testing

@Suite(.serialized) struct TraceTests {
    /// Writers tag events (subject: writer << 32 | sequence; detail: ~subject) so a torn
    /// or misplaced event would show.
    @Test func ringsStayConsistentUnderConcurrentWritersAndReaders() throws {
        let recorder = TraceRecorder.shared
        recorder.start(megabytesPerThread: 4)  // 131,072 events per ring: nothing wraps
        defer { recorder.stop() }
        let writers = 4, perWriter = 20_000 / testScale
        let done = Atomic<Int>(0)
        var threads: [Thread] = []
        for w in 1...writers {
            let t = Thread {
                for i in 0..<perWriter {
                    let subject = UInt64(w) << 32 | UInt64(i)
                    Spindle.Trace.emit(.blockingStart, subject, ~subject)
                }
                done.add(1, ordering: .releasing)
            }
            threads.append(t)
            t.start()
        }
        func check(_ snapshot: TraceSnapshot) -> [Int: Int] {
            var counts: [Int: Int] = [:]
            for lane in snapshot.lanes {
                var last: (writer: Int, seq: UInt64, time: Int64)?
                for e in lane.events where e.kind == .blockingStart && e.subject >> 32 != 0 {
                    #expect(e.detail == ~e.subject, "torn event \(e)")
                    let writer = Int(e.subject >> 32), seq = e.subject & 0xffff_ffff
                    if let l = last {
                        // A ring passes to a new thread only after its writer ended.
                        if l.writer != writer {
                            #expect(l.seq == UInt64(perWriter - 1) && seq == 0, "two writers at once in one ring")
                        } else {
                            #expect(seq == l.seq + 1, "a gap or reordering in one ring: \(l.seq) then \(seq)")
                        }
                        #expect(e.time >= l.time)
                    }
                    last = (writer, seq, e.time)
                    counts[writer, default: 0] += 1
                }
            }
            return counts
        }
        var snapshots = 0
        while done.load(ordering: .acquiring) < writers || snapshots < 3 {
            _ = check(recorder.snapshot())
            snapshots += 1
        }
        let final = check(recorder.snapshot())
        #expect(final == Dictionary(uniqueKeysWithValues: (1...writers).map { ($0, perWriter) }), "\(final)")
    }

    @Test func aFullRingKeepsTheNewestEventsAndCountsTheRest() throws {
        let recorder = TraceRecorder.shared
        recorder.start(megabytesPerThread: 1)  // 32,768 events of 32 bytes per ring
        defer { recorder.stop() }
        let finished = Atomic<Bool>(false)
        let t = Thread {
            for i in 0..<50_000 { Spindle.Trace.emit(.blockingEnd, 7 << 32 | UInt64(i), 0) }
            finished.store(true, ordering: .releasing)
        }
        t.start()
        while !finished.load(ordering: .acquiring) { sched_yield() }
        let lane = try #require(recorder.snapshot().lanes.first { $0.events.contains { $0.subject >> 32 == 7 } })
        let mine = lane.events.filter { $0.subject >> 32 == 7 }
        // The newest 32,768, less the one slot a reader cannot tell from one being written.
        #expect(mine.count == 32_767)
        // (Unwrapped first: #expect on an optional UInt64 against a literal trips ASan in
        // Swift 6.3.1's AnyHashable conversion thunk, a 9-byte read of an 8-byte value.)
        let first = try #require(mine.first).subject, last = try #require(mine.last).subject
        #expect(last == 7 << 32 | 49_999)
        #expect(first == 7 << 32 | UInt64(50_000 - 32_767))
        #expect(lane.lost >= UInt64(50_000 - 32_767))
    }

    /// Two fibers on one worker bounce a ball over two rendezvous channels: every hand-off
    /// is one fiber waking the other, and nothing else wakes either.
    @Test func aKnownProgramHoldsExactlyItsWakeEdges() async throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "trace-edges"))
        defer { rt.shutdown() }
        let recorder = rt.trace
        let rounds = 20
        let toB = Channel<Int>(capacity: 0), toA = Channel<Int>(capacity: 0)
        recorder.start()
        let a = rt.spawnFiber(name: "ping") {
            for i in 0..<rounds { try toB.send(i); _ = try toA.receive() }
        }
        let b = rt.spawnFiber(name: "pong") {
            for _ in 0..<rounds { let v = try toB.receive()!; try toA.send(v) }
        }
        _ = try await a.value
        _ = try await b.value
        recorder.stop()
        let snapshot = recorder.snapshot()
        let ids = Dictionary(uniqueKeysWithValues: snapshot.names.map { ($1, $0) })
        let ping = try #require(ids["ping"]), pong = try #require(ids["pong"])
        var edges: [String: Int] = [:]
        for e in snapshot.allEvents where e.kind == .wake && (e.detail == ping || e.detail == pong) {
            let from = e.subject == ping ? "ping" : e.subject == pong ? "pong" : "other"
            let to = e.detail == ping ? "ping" : "pong"
            edges["\(from)->\(to)", default: 0] += 1
        }
        // Each round: ping's send finds pong parked in receive (pong ran first and parked, or
        // parked after the previous reply), pong's reply finds ping parked in receive.
        #expect(edges == ["ping->pong": rounds, "pong->ping": rounds], "\(edges)")
        // Every park of either fiber was on a channel, and each fiber's turns are recorded.
        let parks = snapshot.allEvents.filter { $0.kind == .fiberPark && ($0.subject == ping || $0.subject == pong) }
        #expect(!parks.isEmpty && parks.allSatisfy { $0.detail == UInt64(TraceEvent.ParkReason.channel.rawValue) })
        // (The recorder is process-wide: other tests' fibers may be in the trace too.)
        let finished = snapshot.allEvents.filter { $0.kind == .fiberFinish && ($0.subject == ping || $0.subject == pong) }
        #expect(finished.map(\.subject).sorted() == [ping, pong].sorted())
    }

    @Test func theChromeJSONFollowsTheSchemaWithEveryFlowMatched() async throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "trace-json"))
        defer { rt.shutdown() }
        rt.trace.start()
        let toB = Channel<Int>(capacity: 0), toA = Channel<Int>(capacity: 0)
        let a = rt.spawnFiber(name: "a") { for i in 0..<10 { try toB.send(i); _ = try toA.receive() } }
        let b = rt.spawnFiber(name: "b") { for _ in 0..<10 { try toA.send(try toB.receive()!) } }
        let sum = try await Task(executorPreference: rt) {
            try await withThrowingTaskGroup(of: Int.self) { g in
                let c = Channel<Int>(capacity: 0)
                g.addTask(name: "producer") { for i in 0..<10 { try await c.send(i) }; c.close(); return 0 }
                g.addTask(name: "consumer") { var s = 0; for try await v in c { s += v }; return s }
                return try await g.reduce(0, +)
            }
        }.value
        _ = try await a.value
        _ = try await b.value
        rt.trace.stop()
        #expect(sum == 45)
        let path = NSTemporaryDirectory() + "spindle-trace-\(getpid()).json"
        defer { unlink(path) }
        try rt.trace.write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let events = try #require(root["traceEvents"] as? [[String: Any]])
        #expect(root["otherData"] is [String: Any])
        var starts: [Int: Int] = [:], finishes: [Int: Int] = [:]
        var named = Set<String>(), used = Set<String>()
        var slices = 0
        for e in events {
            let ph = try #require(e["ph"] as? String)
            #expect(["X", "B", "E", "i", "s", "f", "M"].contains(ph), "unknown phase \(ph)")
            #expect(e["name"] is String && e["pid"] is Int)
            if ph == "M" {
                if e["name"] as? String == "thread_name" {
                    named.insert("\(e["pid"]!):\(e["tid"]!)")
                    #expect((e["args"] as? [String: Any])?["name"] is String)
                }
                continue
            }
            let ts = try #require(e["ts"] as? Double ?? (e["ts"] as? Int).map(Double.init))
            #expect(ts >= 0)
            let tid = try #require(e["tid"] as? Int)
            used.insert("\(e["pid"]!):\(tid)")
            switch ph {
            case "X":
                slices += 1
                let dur = try #require(e["dur"] as? Double ?? (e["dur"] as? Int).map(Double.init))
                #expect(dur >= 0)
            case "s": starts[try #require(e["id"] as? Int), default: 0] += 1
            case "f":
                finishes[try #require(e["id"] as? Int), default: 0] += 1
                #expect(e["bp"] as? String == "e")
            default: break
            }
        }
        #expect(slices > 40)
        #expect(!starts.isEmpty)
        #expect(starts.values.allSatisfy { $0 == 1 } && finishes.values.allSatisfy { $0 == 1 })
        #expect(Set(starts.keys) == Set(finishes.keys), "unmatched flows: \(Set(starts.keys).symmetricDifference(finishes.keys))")
        #expect(used.isSubset(of: named), "tracks without a name: \(used.subtracting(named))")
        let names = events.compactMap { ($0["ph"] as? String == "M") ? ($0["args"] as? [String: Any])?["name"] as? String : nil }
        #expect(names.contains("Spindle workers") && names.contains("Coroutines"))
        #expect(names.contains { $0.hasSuffix("'a'") } && names.contains { $0.hasSuffix("'b'") })
        #expect(names.contains { $0.hasPrefix("task ") && $0.hasSuffix("'producer'") }, "\(names)")
        #expect(names.contains { $0.hasPrefix("task ") && $0.hasSuffix("'consumer'") }, "\(names)")
    }

    @Test func spindleTraceWritesAFileAtExit() throws {
        let path = NSTemporaryDirectory() + "spindle-env-trace-\(getpid()).json"
        defer { unlink(path) }
        let r = try runProbe("trace-env", environment: ["SPINDLE_TRACE": path])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("Spindle: trace written to \(path)"))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let events = try #require(root["traceEvents"] as? [[String: Any]])
        #expect(events.contains { ($0["args"] as? [String: Any])?["coroutine"] as? String == "fiber 1 'traced'" })
    }
}

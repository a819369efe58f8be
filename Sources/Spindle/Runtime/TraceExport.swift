// TraceExport: a trace snapshot as Chrome trace-event JSON, which Perfetto, chrome://tracing
// and `spindle trace view` open. Plain Swift over decoded events (no unsafe code).
//
// What it writes:
//   - process 1, "Spindle workers": a track per recording thread (workers first); a slice
//     ("X") for each job or fiber turn it ran, named after the coroutine, and "parked"
//     slices while the worker waited for work; instants ("i") for steals, reactor polls,
//     timers fired; blocking-pool jobs on their threads' tracks;
//   - process 2, "Coroutines": a track per job (Swift task) and fiber, numbered in order of
//     appearance: "running" slices, "runnable" from the wake or enqueue to the start, and
//     "parked: <reason>" (fibers) or "suspended" (tasks) in between;
//   - flow arrows ("s" at the wake, inside the waker's slice; "f" binding to the slice
//     where the woken coroutine next starts): who woke whom.
// `otherData` carries the events lost to ring wrap-around, per thread.

enum TraceExport {
    struct Coroutine {
        var number: Int
        var isFiber: Bool
        var label: String
        var state: (name: String, since: Int64)? = nil
    }

    static func chromeJSON(_ snapshot: TraceSnapshot) -> [UInt8] {
        var out = JSONWriter()
        let all = snapshot.lanes.enumerated().flatMap { (laneIndex, lane) in lane.events.map { (laneIndex, $0) } }
            .sorted { $0.1.time < $1.1.time }
        let origin = all.first?.1.time ?? 0
        func us(_ t: Int64) -> Double { Double(t - origin) / 1000 }
        func laneTid(_ i: Int) -> Int { i + 1 }

        // Coroutine numbering, in order of appearance.
        var coroutines: [UInt64: Coroutine] = [:]
        var order: [UInt64] = []
        var fibers = 0, tasks = 0
        func coroutine(_ id: UInt64, fiber: Bool) -> Coroutine {
            if let c = coroutines[id] { return c }
            let label: String
            if fiber {
                fibers += 1
                label = snapshot.names[id].map { "fiber \(fibers) '\($0)'" } ?? "fiber \(fibers)"
            } else {
                tasks += 1
                label = snapshot.names[id].map { "task \(tasks) '\($0)'" } ?? "task \(tasks)"
            }
            let c = Coroutine(number: order.count + 1, isFiber: fiber, label: label)
            coroutines[id] = c
            order.append(id)
            return c
        }
        // Which ids are fibers: anything that had a fiber event.
        var fiberIDs = Set<UInt64>()
        for (_, e) in all {
            switch e.kind {
            case .fiberCreate, .fiberResume, .fiberPark, .fiberFinish: fiberIDs.insert(e.subject)
            case .enqueue where e.detail == TraceEvent.Queue.fiberReady.rawValue || e.detail == TraceEvent.Queue.fiberRemote.rawValue:
                fiberIDs.insert(e.subject)
            default: break
            }
        }
        func label(_ id: UInt64) -> String { coroutine(id, fiber: fiberIDs.contains(id)).label }

        out.open()
        // Per-lane running slices and the coroutine states.
        var running: [Int: (id: UInt64, since: Int64)] = [:]
        // Where each coroutine runs now, and those queued again while still running (a
        // remote waker's enqueue lands before the park it answers; Swift may resume a task
        // on another worker before the job that suspended it has returned on this one).
        var runningOn: [UInt64: Int] = [:]
        var queuedWhileRunning = Set<UInt64>()
        var parkedSince: [Int: Int64] = [:]
        var pendingFlow: [UInt64: Int] = [:]
        var nextFlow = 1
        var lastTime = origin

        func closeRunning(lane: Int, at t: Int64) {
            guard let r = running.removeValue(forKey: lane) else { return }
            if runningOn[r.id] == lane { runningOn[r.id] = nil }
            let c = coroutine(r.id, fiber: fiberIDs.contains(r.id))
            out.event(["name": .s(c.label), "cat": .s(c.isFiber ? "fiber" : "task"), "ph": .s("X"),
                       "pid": .i(1), "tid": .i(laneTid(lane)), "ts": .d(us(r.since)), "dur": .d(us(t) - us(r.since)),
                       "args": .o(["coroutine": .s(c.label)])])
            out.event(["name": .s("running"), "ph": .s("X"), "pid": .i(2), "tid": .i(c.number),
                       "ts": .d(us(r.since)), "dur": .d(us(t) - us(r.since)),
                       "args": .o(["worker": .s(snapshot.lanes[lane].label)])])
        }
        func setState(_ id: UInt64, _ name: String?, at t: Int64) {
            var c = coroutine(id, fiber: fiberIDs.contains(id))
            if let s = c.state, t > s.since {
                out.event(["name": .s(s.name), "ph": .s("X"), "pid": .i(2), "tid": .i(c.number),
                           "ts": .d(us(s.since)), "dur": .d(us(t) - us(s.since))])
            }
            c.state = name.map { ($0, t) }
            coroutines[id] = c
        }
        func started(_ id: UInt64, lane: Int, at t: Int64) {
            closeRunning(lane: lane, at: t)
            // Still running elsewhere by the record (its end there comes later): it has
            // moved, so that turn ends here.
            if let other = runningOn[id], other != lane { closeRunning(lane: other, at: t) }
            setState(id, nil, at: t)
            queuedWhileRunning.remove(id)
            running[lane] = (id, t)
            runningOn[id] = lane
            if let flow = pendingFlow.removeValue(forKey: id) {
                out.event(["name": .s("wake"), "cat": .s("wake"), "ph": .s("f"), "bp": .s("e"), "id": .i(flow),
                           "pid": .i(1), "tid": .i(laneTid(lane)), "ts": .d(us(t))])
            }
        }

        for (lane, e) in all {
            let t = e.time
            lastTime = t
            let tid = laneTid(lane)
            switch e.kind {
            case .jobStart, .fiberResume:
                started(e.subject, lane: lane, at: t)
            case .jobEnd:
                // Ignored when the task already started again on another lane.
                guard running[lane]?.id == e.subject else { break }
                closeRunning(lane: lane, at: t)
                setState(e.subject, queuedWhileRunning.remove(e.subject) != nil ? "runnable" : "suspended", at: t)
            case .fiberPark:
                guard running[lane]?.id == e.subject else { break }
                closeRunning(lane: lane, at: t)
                let reason = TraceEvent.ParkReason(rawValue: UInt8(truncatingIfNeeded: e.detail))?.label ?? "wait"
                setState(e.subject, queuedWhileRunning.remove(e.subject) != nil ? "runnable" : "parked: \(reason)", at: t)
            case .fiberFinish:
                if running[lane]?.id == e.subject { closeRunning(lane: lane, at: t) }
                queuedWhileRunning.remove(e.subject)
                setState(e.subject, nil, at: t)
            case .fiberCreate:
                _ = coroutine(e.subject, fiber: true)
                setState(e.subject, "runnable", at: t)
            case .enqueue:
                if runningOn[e.subject] != nil {
                    queuedWhileRunning.insert(e.subject)
                } else if coroutines[e.subject]?.state?.name != "runnable" {
                    setState(e.subject, "runnable", at: t)
                }
            case .wake:
                let flow = nextFlow
                nextFlow += 1
                if pendingFlow[e.detail] == nil { pendingFlow[e.detail] = flow } else { break }
                out.event(["name": .s("wake"), "cat": .s("wake"), "ph": .s("s"), "id": .i(flow),
                           "pid": .i(1), "tid": .i(tid), "ts": .d(us(t)),
                           "args": .o(["waker": .s(label(e.subject)), "wakee": .s(label(e.detail))])])
            case .workerPark:
                closeRunning(lane: lane, at: t)
                parkedSince[lane] = t
            case .workerUnpark:
                if let since = parkedSince.removeValue(forKey: lane) {
                    out.event(["name": .s("parked"), "cat": .s("idle"), "ph": .s("X"), "pid": .i(1), "tid": .i(tid),
                               "ts": .d(us(since)), "dur": .d(us(t) - us(since))])
                }
            case .steal:
                out.event(["name": .s("steal"), "ph": .s("i"), "s": .s("t"), "pid": .i(1), "tid": .i(tid), "ts": .d(us(t)),
                           "args": .o(["from worker": .i(Int(e.subject)), "jobs": .i(Int(e.detail))])])
            case .poll:
                out.event(["name": .s("poll"), "ph": .s("i"), "s": .s("t"), "pid": .i(1), "tid": .i(tid), "ts": .d(us(t)),
                           "args": .o(["events": .i(Int(e.subject))])])
            case .timersFired:
                out.event(["name": .s("timers"), "ph": .s("i"), "s": .s("t"), "pid": .i(1), "tid": .i(tid), "ts": .d(us(t)),
                           "args": .o(["fired": .i(Int(e.subject))])])
            case .blockingStart:
                running[lane] = nil
                parkedSince[lane] = nil
                out.event(["name": .s("blocking job"), "cat": .s("blocking"), "ph": .s("B"), "pid": .i(1), "tid": .i(tid), "ts": .d(us(t))])
            case .fiberSwitch:
                break  // snapshots carry it as a park and a resume
            case .blockingEnd:
                out.event(["name": .s("blocking job"), "cat": .s("blocking"), "ph": .s("E"), "pid": .i(1), "tid": .i(tid), "ts": .d(us(t))])
            }
        }
        for lane in running.keys.sorted() { closeRunning(lane: lane, at: lastTime) }
        // Fibers still parked at the end stay parked to the end; tasks' last "suspended"
        // is dropped (a finished task records no end).
        for id in order {
            guard let c = coroutines[id], let s = c.state, c.isFiber, lastTime > s.since else { continue }
            out.event(["name": .s(s.name), "ph": .s("X"), "pid": .i(2), "tid": .i(c.number),
                       "ts": .d(us(s.since)), "dur": .d(us(lastTime) - us(s.since))])
        }
        // Names of processes and tracks.
        out.event(["name": .s("process_name"), "ph": .s("M"), "pid": .i(1), "args": .o(["name": .s("Spindle workers")])])
        out.event(["name": .s("process_name"), "ph": .s("M"), "pid": .i(2), "args": .o(["name": .s("Coroutines")])])
        for (i, lane) in snapshot.lanes.enumerated() {
            let name = lane.worker.map { "worker \($0)" } ?? "thread \(lane.thread) (\(lane.label))"
            out.event(["name": .s("thread_name"), "ph": .s("M"), "pid": .i(1), "tid": .i(laneTid(i)), "args": .o(["name": .s(name)])])
            out.event(["name": .s("thread_sort_index"), "ph": .s("M"), "pid": .i(1), "tid": .i(laneTid(i)), "args": .o(["sort_index": .i(i)])])
        }
        for id in order {
            let c = coroutines[id]!
            out.event(["name": .s("thread_name"), "ph": .s("M"), "pid": .i(2), "tid": .i(c.number), "args": .o(["name": .s(c.label)])])
            out.event(["name": .s("thread_sort_index"), "ph": .s("M"), "pid": .i(2), "tid": .i(c.number), "args": .o(["sort_index": .i(c.number)])])
        }
        var lost: [String: JSONValue] = [:]
        for lane in snapshot.lanes where lane.lost > 0 { lost["\(lane.label) (thread \(lane.thread))"] = .i(Int(lane.lost)) }
        out.close(other: ["producer": .s("Spindle"), "eventsLostToWrap": .o(lost)])
        return out.bytes
    }
}

/// A JSON value for the writer (ordered keys, so output is stable).
enum JSONValue {
    case s(String), i(Int), d(Double), o([String: JSONValue])
}

/// A small streaming writer of `{"traceEvents":[...], "otherData":{...}}`.
struct JSONWriter {
    var bytes: [UInt8] = []
    private var first = true

    mutating func open() { append("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n") }

    mutating func event(_ fields: [String: JSONValue]) {
        if !first { append(",\n") }
        first = false
        write(.o(fields))
    }

    mutating func close(other: [String: JSONValue]) {
        append("\n],\"otherData\":")
        write(.o(other))
        append("}\n")
    }

    private mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

    private mutating func write(_ v: JSONValue) {
        switch v {
        case .s(let s): string(s)
        case .i(let i): append(String(i))
        case .d(let d):
            // Microseconds with nanosecond precision (three decimals), never exponents.
            let ns = Int((d * 1000).rounded())
            let sign = ns < 0 ? "-" : ""
            let a = abs(ns)
            let frac = String(a % 1000)
            append("\(sign)\(a / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)")
        case .o(let fields):
            append("{")
            var firstField = true
            for key in fields.keys.sorted() {
                if !firstField { append(",") }
                firstField = false
                string(key)
                append(":")
                write(fields[key]!)
            }
            append("}")
        }
    }

    private mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case UInt8(ascii: "<"): append("\\u003c")  // safe inside an HTML <script>
            case 0..<0x20:
                let hex = String(b, radix: 16)
                append("\\u00" + (hex.count < 2 ? "0" : "") + hex)
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

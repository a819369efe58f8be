// Trace: the recorder of what the scheduler does, for a timeline in a browser. The rings
// are C (CSpindle/Trace.c: one per recording thread, one writer each, no lock and no
// allocation on the hot path); this file is the public face, the recording points' helper,
// and the decoder. TraceExport.swift turns a snapshot into Chrome trace-event JSON.
//
// Recording points sit behind `Trace.isOn` (one relaxed load of a C global; off is the
// default). What they record (`TraceEvent.Kind`), and who the ids name:
//   - a job (a Swift task's job: its pointer is the task, the same across its jobs) starts
//     and ends on a worker; a fiber (its FiberCore pointer) is created, resumed, parks
//     (with the reason: yield, sleep, channel, select, read, write, join, wait) and
//     finishes;
//   - enqueue: where a runnable went (run-next, local queue, inject queue, a fiber's home
//     ready list or remote list); wake: who (the coroutine running on the waking thread,
//     0 for a plain thread) made whom runnable: the arrows of the timeline;
//   - steal (from worker, count), worker park/unpark, reactor polls that delivered events,
//     timers fired, blocking-pool jobs.
// Ids are addresses, so one may be reused after its coroutine ended; the exporter numbers
// coroutines in order of appearance, and a reuse shows as the same lane.
//
// Task names: Swift 6.3.1 gives a task's name only to code running inside the task
// (`swift_task_getCurrentTaskName`), never to its executor, so a task's name is asked for
// when the task queues something while recording (it wakes another coroutine, or it ends
// and wakes its awaiter), once per thread and task; tasks never seen doing so appear by
// number. UNSAFE FILE: the C rings' raw events, a C callback
// context, the atexit hook.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

/// One recorded event, decoded.
public struct TraceEvent: Sendable, Hashable {
    public enum Kind: UInt8, Sendable, CaseIterable {
        case jobStart = 1, jobEnd, enqueue, steal, fiberCreate, fiberResume, fiberPark, fiberFinish,
             wake, workerPark, workerUnpark, poll, timersFired, blockingStart, blockingEnd,
             /// Recorded only: a direct hand-off between two fibers (subject parks with the
             /// reason in detail, actor resumes). Snapshots show it as a fiberPark and a
             /// fiberResume at the same time.
             fiberSwitch
    }
    /// Where an enqueued runnable went.
    public enum Queue: UInt64, Sendable {
        case runNext = 0, local, inject, fiberReady, fiberRemote
    }
    /// Why a fiber parked.
    public enum ParkReason: UInt8, Sendable, CaseIterable {
        case yield = 0, sleep, channel, select, read, write, join, wait
        public var label: String {
            switch self {
            case .yield: "yield"
            case .sleep: "sleep"
            case .channel: "channel"
            case .select: "select"
            case .read: "I/O read"
            case .write: "I/O write"
            case .join: "join"
            case .wait: "wait"
            }
        }
    }

    /// CLOCK_MONOTONIC, nanoseconds (recorded as TSC counts where the kernel's clock is the
    /// TSC, and mapped back).
    public var time: Int64
    public var kind: Kind
    /// The job or fiber the event is about (steal: the victim worker; poll: events;
    /// timersFired: count; park/unpark: unused).
    public var subject: UInt64
    /// wake: the woken job or fiber; enqueue: the queue (`Queue`); fiberPark: the reason;
    /// steal: how many.
    public var detail: UInt64
    /// wake and enqueue: the coroutine running on the recording thread (0: none).
    public var actor: UInt64
    /// The recording thread's worker index (nil: not a worker thread).
    public var worker: Int?
    /// The recording thread's kernel thread id.
    public var thread: Int64
}

/// A snapshot of the recorder: every surviving event, time-ordered per thread.
public struct TraceSnapshot: Sendable {
    public struct Lane: Sendable {
        public var worker: Int?
        public var thread: Int64
        public var label: String
        /// Events this thread recorded that its ring no longer holds (overwritten).
        public var lost: UInt64
        public var events: [TraceEvent]
    }
    public var lanes: [Lane]
    /// Names known to the recorder: fibers created while it was on, and named tasks
    /// (`Task(name:)`) seen waking something while it was on.
    public var names: [UInt64: String]
    public var allEvents: [TraceEvent] { lanes.flatMap(\.events).sorted { $0.time < $1.time } }
}

/// The process's trace recorder (one for all runtimes: the rings are per thread).
/// `Runtime.trace` is this recorder.
public final class TraceRecorder: Sendable {
    public static let shared = TraceRecorder()

    private struct State {
        var names: [UInt64: String] = [:]
        var since: Int64 = 0
        var keepNanos: Int64? = nil
        var exitPath: String? = nil
    }
    private let state = Lock(State())

    private init() {}

    /// True while recording.
    public var isRecording: Bool { spindle_trace_is_on() != 0 }

    /// Starts recording (again). Each recording thread keeps its last `megabytesPerThread`
    /// MiB of events (32 bytes each); `keepSeconds`, when set, also drops events older
    /// than that from what `write(to:)` writes: the flight recorder. Events from before
    /// this call are not written.
    public func start(megabytesPerThread: Int = 4, keepSeconds: Double? = nil) {
        let bytes = max(megabytesPerThread, 1) << 20
        var events: UInt64 = 1024
        while events * 32 * 2 <= UInt64(bytes) { events <<= 1 }
        state.withLock { s in
            s.since = Sys.nowNanos()
            s.keepNanos = keepSeconds.map { Int64($0 * 1e9) }
            s.names.removeAll(keepingCapacity: true)
        }
        spindle_trace_set_enabled(1, events)
    }

    /// Stops recording; what was recorded stays until the next `start`.
    public func stop() { spindle_trace_set_enabled(0, 0) }

    /// Every event recorded since `start` that the rings still hold.
    public func snapshot() -> TraceSnapshot {
        let (since, keep, names) = state.withLock { ($0.since, $0.keepNanos, $0.names) }
        let cutoff = max(since, keep.map { Sys.nowNanos() - $0 } ?? 0)
        let box = RingCopies()
        var tsc0: UInt64 = 0, ns0: Int64 = 0, rate: Double = 1
        spindle_trace_clock_mapping(&tsc0, &ns0, &rate)
        // SAFETY: the context is `box`, alive across this synchronous call; the visitor
        // reads `count` events of four words from the buffer it is given.
        withExtendedLifetime(box) {
            spindle_trace_visit(Unmanaged.passUnretained(box).toOpaque()) { ctx, ring, words, count, first in
                // SAFETY: ctx is the unretained `box` passed above, alive for this call.
                let box = Unmanaged<RingCopies>.fromOpaque(ctx!).takeUnretainedValue()
                let r = ring.pointee
                let copied = Array(UnsafeBufferPointer(start: words, count: Int(count) * 4))
                let previous = r.owner_since > first
                    ? (r.previous_tid, r.previous_lane, cString(r.previous_label), r.owner_since) : nil
                box.copies.append(RingCopies.Copy(words: copied, firstIndex: first, owner: (r.tid, r.lane, cString(r.label)),
                                       previous: previous))
            }
        }
        func nanos(_ stamp: UInt64) -> Int64 { ns0 + Int64((Double(Int64(bitPattern: stamp &- tsc0)) * rate).rounded()) }
        var lanes: [TraceSnapshot.Lane] = []
        for copy in box.copies {
            // A reused ring holds its previous thread's events first, then its own.
            let split = copy.previous.map { Int(min(UInt64(copy.words.count / 4), $0.until - copy.firstIndex)) } ?? 0
            var parts: [(range: Range<Int>, tid: Int64, lane: Int32, label: String, lost: UInt64)] = []
            if let p = copy.previous, split > 0 { parts.append((0..<split, p.tid, p.lane, p.label, copy.firstIndex)) }
            parts.append((split..<(copy.words.count / 4), copy.owner.tid, copy.owner.lane, copy.owner.label,
                          copy.previous == nil ? copy.firstIndex : 0))
            for part in parts {
                let worker: Int? = part.lane > 0 ? Int(part.lane - 1) : nil
                var name = part.label
                if name.isEmpty { name = worker.map { "worker \($0)" } ?? "thread \(part.tid)" }
                var events: [TraceEvent] = []
                events.reserveCapacity(part.range.count)
                for i in part.range {
                    let w = copy.words[(i * 4)..<(i * 4 + 4)]
                    let b = w.startIndex
                    let time = nanos(w[b])
                    guard let kind = TraceEvent.Kind(rawValue: UInt8(w[b + 1] & 0xff)) else { continue }
                    if time < cutoff { continue }
                    let actor = w[b + 1] >> 8, subject = w[b + 2], detail = w[b + 3]
                    func add(_ k: TraceEvent.Kind, _ s: UInt64, _ d: UInt64, _ a: UInt64) {
                        events.append(TraceEvent(time: time, kind: k, subject: s, detail: d, actor: a, worker: worker, thread: part.tid))
                    }
                    switch kind {
                    case .fiberSwitch:
                        add(.fiberPark, subject, detail, 0)
                        add(.fiberResume, actor, 0, 0)
                    case .enqueue where actor != 0 && actor != subject:
                        // Queued by another coroutine: that one woke it.
                        add(.enqueue, subject, detail, actor)
                        add(.wake, actor, subject, 0)
                    default:
                        add(kind, subject, detail, actor)
                    }
                }
                if events.isEmpty { continue }
                lanes.append(TraceSnapshot.Lane(worker: worker, thread: part.tid, label: name, lost: part.lost, events: events))
            }
        }
        lanes.sort { ($0.worker ?? Int.max, $0.thread) < ($1.worker ?? Int.max, $1.thread) }
        return TraceSnapshot(lanes: lanes, names: names)
    }

    /// Writes the recorded events as Chrome trace-event JSON (Perfetto and chrome://tracing
    /// open it; `spindle trace view` turns it into a self-contained page).
    public func write(to path: String) throws(SysError) {
        let json = TraceExport.chromeJSON(snapshot())
        try Sys.writeWholeFile(path, json)
    }

    /// Registers a fiber's name (recording points call it while recording).
    func name(_ id: UInt64, _ name: String) {
        state.withLock { $0.names[id] = name }
    }

    /// SPINDLE_TRACE=path: record from the first runtime's start and write at exit.
    /// SPINDLE_TRACE_MB sets the MiB per thread (default 64).
    static let fromEnvironment: Void = {
        guard let raw = getenv("SPINDLE_TRACE"), raw.pointee != 0 else { return }
        let path = String(cString: raw)
        let mb = getenv("SPINDLE_TRACE_MB").flatMap { Int(String(cString: $0)) } ?? 64
        shared.state.withLock { $0.exitPath = path }
        shared.start(megabytesPerThread: mb)
        atexit {
            let recorder = TraceRecorder.shared
            guard let path = recorder.state.withLock({ $0.exitPath }) else { return }
            recorder.stop()
            do {
                try recorder.write(to: path)
                Sys.writeStandardError("Spindle: trace written to \(path)\n")
            } catch {
                Sys.writeStandardError("Spindle warning: could not write the trace to \(path): \(error)\n")
            }
        }
    }()
}

/// The rings' copies, taken under the registry lock and decoded after it is released (a
/// thread's first event waits for that lock).
private final class RingCopies {
    struct Copy {
        var words: [UInt64]
        var firstIndex: UInt64
        var owner: (tid: Int64, lane: Int32, label: String)
        var previous: (tid: Int64, lane: Int32, label: String, until: UInt64)?
    }
    var copies: [Copy] = []
}

/// A C `char[N]` (imported as a tuple) up to its NUL.
private func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

extension Runtime {
    /// The trace recorder (one per process; see ``TraceRecorder``).
    public var trace: TraceRecorder { TraceRecorder.shared }
}

/// The recording points' helper.
enum Trace {
    @inline(__always) static var isOn: Bool { spindle_trace_is_on() != 0 }

    @inline(__always)
    static func emit(_ kind: TraceEvent.Kind, _ subject: UInt64, _ detail: UInt64 = 0, actor: UInt64 = 0) {
        spindle_trace_emit(UInt32(kind.rawValue), subject, detail, actor)
    }

    /// The coroutine running on this thread (the waker of what it wakes).
    @inline(__always) static var current: UInt64 { spindle_trace_current() }

    static func id(_ r: Runnable) -> UInt64 {
        r.kind == .fiber ? UInt64(UInt(bitPattern: r.fiberPointer)) : UInt64(r.bits)
    }

    static func id(_ f: FiberCore) -> UInt64 {
        // SAFETY: only the address is taken (an id); no retain, no release, no access.
        UInt64(UInt(bitPattern: Unmanaged.passUnretained(f).toOpaque()))
    }

    /// A runnable was queued: where, and (when something runs here) who woke it.
    @inline(never)
    static func enqueued(_ r: Runnable, _ queue: TraceEvent.Queue) {
        if r.kind == .wakeup { return }
        // One event: the snapshot reads a wake (actor → subject) out of it.
        let who = current
        emit(.enqueue, id(r), queue.rawValue, actor: who)
        if who != 0 { nameCurrentTask(who) }
    }

    /// Swift tells a task's name only to code running inside it: we are (the job `id`
    /// runs on this thread and is waking or waiting for something), so ask now, once.
    @inline(never)
    static func nameCurrentTask(_ id: UInt64) {
        guard spindle_trace_first_sight(id) != 0, let name = swift_task_getCurrentTaskName() else { return }
        TraceRecorder.shared.name(id, String(cString: name))
    }

    @inline(never)
    static func fiberCreated(_ f: FiberCore) {
        let me = id(f)
        if let name = f.name { TraceRecorder.shared.name(me, name) }
        emit(.fiberCreate, me, 0, actor: current)
    }
}

// Dump: every live fiber of a runtime with its name, state, what it is parked on and for
// how long, its worker and the backtrace of its suspended stack; each worker's state and
// queue depths. Go's goroutine dump (SIGQUIT), Tokio's task dump.
//
// A fiber's list and stack belong to its home worker's thread, so each worker answers for
// its own fibers, on its own thread, between two turns (Worker.answerDumpIfWanted: at its
// periodic housekeeping tick and whenever it parks or wakes); the caller nudges parked
// workers and waits up to `Dump.answerTimeout`. There the worker's fibers are all
// suspended: their saved contexts are where their stacks stop, and the walk
// (spindle_fiber_backtrace, frame pointers read through process_vm_readv) is safe. A
// worker that does not answer in time is inside one long job or fiber turn: its report
// says so and carries that thread's own backtrace, taken by the stall signal. A caller
// running on a worker answers for that worker itself (its fiber, if it is one, shows as
// running). Task names are not known to executors in Swift 6.3.1, so queued tasks are
// counted, not named. UNSAFE FILE: unowned fiber links walked on their home thread, raw
// contexts, the signal-driven dump thread's eventfd.
import CSpindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What `Runtime.dump()` found.
public struct RuntimeDump: Sendable, CustomStringConvertible {
    public struct Fiber: Sendable {
        public var name: String?
        /// "parked", "ready" (queued to run), or "running" (the caller).
        public var state: String
        /// What it is parked on (yield, sleep, channel, select, I/O read, I/O write, join,
        /// wait), nil unless parked or ready after a park.
        public var parkedOn: String?
        /// About how long since it suspended: from its worker's last look at the clock
        /// before the park (at most a few of the worker's turns early).
        public var suspendedFor: Duration?
        public var worker: Int
        /// Innermost first: "Module.function + 0x1c (file)".
        public var backtrace: [String]
    }

    public struct Worker: Sendable {
        public var index: Int
        /// Answered for its fibers; false: busy in one job or fiber turn past the timeout.
        public var answered: Bool
        /// "idle", "parked", or what it is stuck in.
        public var state: String
        public var localQueueDepth: Int
        public var readyFibers: Int
        /// Set when the worker did not answer: its thread's backtrace now.
        public var backtrace: [String]
    }

    public var runtimeName: String
    public var workers: [Worker]
    public var fibers: [Fiber]
    public var injectQueueDepth: Int
    public var armedTimers: Int
    public var liveFibers: Int
    public var blockingPoolThreads: Int

    public var description: String {
        var s = "Spindle dump of runtime '\(runtimeName)': \(workers.count) workers, \(liveFibers) live fibers, "
        s += "\(injectQueueDepth) jobs in the inject queue, \(armedTimers) armed timers, \(blockingPoolThreads) blocking-pool threads\n"
        for w in workers {
            s += "worker \(w.index): \(w.state); local queue \(w.localQueueDepth), ready fibers \(w.readyFibers)\n"
            for line in w.backtrace { s += "    \(line)\n" }
        }
        for f in fibers {
            var head = "fiber '\(f.name ?? "unnamed")' on worker \(f.worker): \(f.state)"
            if let on = f.parkedOn { head += " (\(on))" }
            if let d = f.suspendedFor { head += " for \(Dump.format(d))" }
            s += head + "\n"
            for line in f.backtrace { s += "    \(line)\n" }
        }
        return s
    }
}

/// One dump in progress: the workers' answers. Fibers come with raw return addresses
/// (`frames`); the dumper symbolizes them after (a worker answers fast, and resolving a
/// name may read the executable's symbol table).
final class DumpCollector: Sendable {
    struct Answer: Sendable {
        var fibers: [(RuntimeDump.Fiber, frames: [UInt])]
        var worker: RuntimeDump.Worker
    }
    let answers = Lock([Int: Answer]())
    let parker = Parker()
}

enum Dump {
    static let answerTimeout: Int64 = 500_000_000

    static func format(_ d: Duration) -> String {
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return ms >= 1000 ? "\(Double(Int(ms / 10)) / 100) s" : "\(Int(ms)) ms"
    }

    /// On `worker`'s own thread, between turns (or in a job or fiber it runs: `running`).
    static func describeFibers(of worker: Worker, running: UnsafeMutablePointer<spindle_fiber_context>?) -> [(RuntimeDump.Fiber, frames: [UInt])] {
        var ready = Set<UInt>()
        for r in worker.readyFibers { ready.insert(UInt(bitPattern: r.fiberPointer)) }
        worker.remoteFibers.withLock { q in for r in q { ready.insert(UInt(bitPattern: r.fiberPointer)) } }
        let now = Sys.nowNanos()
        var out: [(RuntimeDump.Fiber, frames: [UInt])] = []
        var f = worker.liveFibers
        while let listed = f {
            // SAFETY: a listed fiber is alive; the dump runs on its home thread between
            // turns, so it stays listed (and alive) for this iteration.
            let cur = listed.takeUnretainedValue()
            f = cur.nextLive
            // SAFETY: the address only names the fiber (compared with queued words).
            let id = UInt(bitPattern: listed.toOpaque())
            guard let ctx = cur.context else { continue }
            if ctx == running {
                out.append((RuntimeDump.Fiber(name: cur.name, state: "running", parkedOn: nil, suspendedFor: nil,
                                              worker: worker.index, backtrace: ["(the fiber that asked for this dump)"]), []))
                continue
            }
            var frames = [UInt](repeating: 0, count: 48)
            let n = frames.withUnsafeMutableBufferPointer { b in
                // SAFETY: on the home thread between turns the fiber is suspended: its saved
                // context and stack stay as they are during the walk, which only reads.
                Int(spindle_fiber_backtrace(ctx, b.baseAddress!, Int32(b.count)))
            }
            let isReady = ready.contains(id)
            let parked = cur.waiting.load(ordering: .relaxed)
            out.append((RuntimeDump.Fiber(
                name: cur.name, state: isReady ? "ready" : (parked ? "parked" : "suspended"),
                parkedOn: cur.parkReason.label,
                suspendedFor: cur.parkedAt > 0 ? .nanoseconds(max(0, now - cur.parkedAt)) : nil,
                worker: worker.index, backtrace: []), Array(frames.prefix(max(0, n)))))
        }
        return out
    }
}

extension Worker {
    /// Owner, between turns: answers a pending dump for this worker.
    func answerDumpIfWanted() {
        guard dumpWanted.load(ordering: .acquiring) else { return }
        answerDump(running: nil)
    }

    func answerDump(running: UnsafeMutablePointer<spindle_fiber_context>?) {
        // Taken and the flag cleared under one lock: a flag set by the next dump after
        // this one gave up is never cleared by this answer.
        guard let collector = dumpCollector.withLock({ c -> DumpCollector? in
            let x = c
            c = nil
            dumpWanted.store(false, ordering: .releasing)
            return x
        }) else { return }
        let fibers = Dump.describeFibers(of: self, running: running)
        let parked = published.parkedSince.load(ordering: .relaxed) > 0
        let info = RuntimeDump.Worker(
            index: index, answered: true,
            state: running != nil ? "running the fiber that asked for this dump" : (parked ? "parked" : "between turns"),
            localQueueDepth: queue.count + (runNextSlot.load(ordering: .relaxed) != 0 ? 1 : 0),
            readyFibers: readyFibers.count + remoteFiberCount.load(ordering: .relaxed), backtrace: [])
        collector.answers.withLock { $0[index] = DumpCollector.Answer(fibers: fibers, worker: info) }
        collector.parker.unpark()
    }
}

extension Runtime {
    /// Every live fiber (name, state, what it waits for and since when, its worker, the
    /// symbolicated backtrace of its suspended stack) and every worker's state and queue
    /// depths. Printed to standard error too unless `printing` is false. Callable from
    /// anywhere, including this runtime's own tasks and fibers; workers busy in one long
    /// turn are reported with their thread's backtrace instead (after 500 ms).
    @discardableResult
    public func dump(printing: Bool = true) -> RuntimeDump {
        return dumpGate.withLock { _ -> RuntimeDump in
            if isStopped {
                let m = metrics()
                let dump = RuntimeDump(runtimeName: configuration.name, workers: [], fibers: [],
                                       injectQueueDepth: m.injectQueueDepth, armedTimers: m.armedTimers,
                                       liveFibers: m.liveFibers, blockingPoolThreads: m.blockingPoolThreads)
                if printing { Sys.writeStandardError("Spindle dump of runtime '\(configuration.name)': it has stopped (no workers)\n") }
                return dump
            }
            let collector = DumpCollector()
            for w in workers {
                w.dumpCollector.withLock { c in
                    c = collector
                    w.dumpWanted.store(true, ordering: .releasing)
                }
                driver.unpark(w.index)
            }
            // On one of our workers: answer for it here (nobody else can while we run). In
            // a generator inside a fiber, the running context is the generator's: the
            // fiber that runs it is the first context up the chain that has an owner.
            Worker.withCurrent { w in
                guard w.runtime === self else { return }
                var running = spindle_running_fiber()
                while let c = running, c.pointee.owner == nil { running = c.pointee.parent }
                w.answerDump(running: running)
            }
            let deadline = Sys.nowNanos() + Dump.answerTimeout
            while collector.answers.withLock({ $0.count }) < workers.count && Sys.nowNanos() < deadline {
                collector.parker.park(timeoutNanos: min(10_000_000, max(0, deadline - Sys.nowNanos())))
            }
            let answers = collector.answers.withLock { $0 }
            var fibers: [RuntimeDump.Fiber] = []
            var infos: [RuntimeDump.Worker] = []
            var names: [UInt: String] = [:]
            func describe(_ a: UInt) -> String {
                if let s = names[a] { return s }
                let s = Symbols.describe(a, isReturnAddress: true)
                names[a] = s
                return s
            }
            for w in workers {
                if let answer = answers[w.index] {
                    for (f, frames) in answer.fibers {
                        var f = f
                        if !frames.isEmpty { f.backtrace = frames.map(describe) }
                        fibers.append(f)
                    }
                    infos.append(answer.worker)
                    continue
                }
                // Withdraw the request (an answer after this goes nowhere).
                w.dumpCollector.withLock { c in
                    c = nil
                    w.dumpWanted.store(false, ordering: .releasing)
                }
                let act = w.activity.load(ordering: .relaxed)
                let what = act & 1 == 0 ? "busy" : (act & 2 != 0 ? "inside one fiber turn" : "inside one job")
                // The stall signal reaches workers only while the stall detector is on.
                let trace = configuration.stallThreshold == nil
                    ? ["(no backtrace: the stall detector is off, and its signal takes it)"]
                    : Symbols.backtrace(ofThread: w.thread.load(ordering: .relaxed))?
                        .enumerated().map { Symbols.describe($0.element, isReturnAddress: $0.offset > 0) }
                        ?? ["(no backtrace: the thread did not answer the signal)"]
                infos.append(RuntimeDump.Worker(
                    index: w.index, answered: false,
                    state: "did not answer within \(Dump.answerTimeout / 1_000_000) ms: \(what) (its fibers are not listed)",
                    localQueueDepth: w.queue.count, readyFibers: w.remoteFiberCount.load(ordering: .relaxed),
                    backtrace: trace))
            }
            let m = metrics()
            let dump = RuntimeDump(
                runtimeName: configuration.name, workers: infos, fibers: fibers,
                injectQueueDepth: m.injectQueueDepth, armedTimers: m.armedTimers,
                liveFibers: m.liveFibers, blockingPoolThreads: m.blockingPoolThreads)
            if printing { Sys.writeStandardError(dump.description) }
            return dump
        }
    }
}

/// SPINDLE_DUMP_SIGNAL=USR1 (or any signal name or number): dump every runtime alive when
/// the process receives it, like Go's SIGQUIT dump; the process goes on.
enum DumpOnSignal {
    static let live = Lock([ObjectIdentifier: WeakRuntime]())

    final class WeakRuntime: @unchecked Sendable {
        // SAFETY (@unchecked Sendable): assigned once at init; after that only the Swift
        // runtime writes it (zeroing a weak reference is thread-safe), and it is read under
        // `live`'s lock.
        weak var runtime: Runtime?
        init(_ r: Runtime) { runtime = r }
    }

    static func register(_ r: Runtime) {
        _ = installed
        guard installed else { return }
        live.withLock { $0[ObjectIdentifier(r)] = WeakRuntime(r) }
    }

    static func unregister(_ r: Runtime) {
        guard installed else { return }
        live.withLock { $0[ObjectIdentifier(r)] = nil }
    }

    static func signalNumber(_ text: String) -> Int32? {
        if let n = Int32(text), n > 0, n < 65 { return n }
        let names: [String: Int32] = ["USR1": SIGUSR1, "USR2": SIGUSR2, "HUP": SIGHUP, "QUIT": SIGQUIT,
                                      "INT": SIGINT, "TERM": SIGTERM, "WINCH": SIGWINCH]
        var t = text.uppercased()
        if t.hasPrefix("SIG") { t.removeFirst(3) }
        return names[t]
    }

    static let installed: Bool = {
        guard let raw = getenv("SPINDLE_DUMP_SIGNAL"), raw.pointee != 0 else { return false }
        let text = String(cString: raw)
        guard let signo = signalNumber(text) else {
            Sys.writeStandardError("Spindle warning: SPINDLE_DUMP_SIGNAL=\(text) is not a signal name or number (try USR1); no dump on signal\n")
            return false
        }
        do {
            let fd = try Sys.eventFD()
            try Sys.watchSignal(signo, wakeFD: fd)
            try OSThread.spawn(name: "spindle-dump") {
                Sys.blockAllSignals()
                while true {
                    // The handler (on whichever thread took the signal) writes the eventfd.
                    Sys.waitLettingSignalsThrough(1 << UInt64(signo - 1), orReadable: fd)
                    if Sys.eventFDDrain(fd) == 0 { continue }
                    let runtimes = live.withLock { $0.values.compactMap(\.runtime) }
                    for r in runtimes { r.dump(printing: true) }
                }
            }
            return true
        } catch {
            Sys.writeStandardError("Spindle warning: SPINDLE_DUMP_SIGNAL=\(text): could not watch the signal (\(error)); no dump on signal\n")
            return false
        }
    }()
}

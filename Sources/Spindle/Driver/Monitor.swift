// Monitor: a thread of its own per multi-thread runtime (of two or more workers), after Go's
// sysmon, that notices a worker staying inside one job and hands what waits behind it to
// an idle worker (Driver.swift, invariant I3). It never runs jobs, fibers or timers itself.
//
// Each interval it reads every worker's `activity` word (odd
// while a job or fiber turn runs; it changes with every job). A worker whose word is odd and
// the same as one interval ago has been inside one job for at least an interval: *stuck*.
// While any worker is stuck the Monitor sets `Driver.pollerWanted` (so a parking worker takes
// the shared reactor) and wakes one parked worker when
//   - the shared reactor has no holder (events would wait for the stuck job), or
//   - a timer is overdue by an interval (its keeper may be the stuck worker), or
//   - the stuck worker has a job waiting in its run-next slot or local queue (the woken
//     worker's search steals it: a run-next is stealable from a worker whose activity did
//     not change during the search).
//
// Sleep: with every worker parked for `Tuning.monitorIdleChecks` intervals in a row it
// sleeps without a timeout (an idle runtime never wakes, `runtime.idle.cpu`), and the first
// worker to wake up wakes it (`workerWoke`: one load when it is not sleeping). The handshake
// is Dekker's: the Monitor stores `deepSleeping` then loads the unparked count; a worker's
// wake-up raises the count (in Idle) then loads `deepSleeping`; both sequentially
// consistent, so at least one sees the other.
//
// Interval: `Tuning.monitorIntervalNanos` (1 ms) after a rescue or a deep sleep, doubling
// after every check that found nothing to do, up to `Tuning.monitorMaxIntervalNanos`
// (8 ms): so work behind a stuck worker waits 2-16 ms for the first rescue and ~1-2 ms for
// the next ones, and a busy runtime pays ~125 Monitor wake-ups a second.
// Cost on the workers: two relaxed stores per job, nothing else on their hot path.
import Synchronization

final class Monitor: Sendable {
    private let parker = Parker()
    /// Set while the Monitor sleeps without a timeout.
    private let deepSleeping = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    /// Rescues so far (parked workers it woke), for tests and diagnostics.
    let rescues = Atomic<Int>(0)

    /// The monitor thread's loop, until `stop()`.
    func run(_ runtime: Runtime) {
        let workers = runtime.workers
        let driver = runtime.driver
        var last = [UInt32](repeating: 0, count: workers.count)
        // Stalls: when each worker's current activity value was first seen, and the value
        // last reported (one report per stall).
        let threshold = runtime.configuration.stallThreshold.map { Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }
        var firstSeen = [Int64](repeating: Sys.nowNanos(), count: workers.count)
        var reported = [UInt32](repeating: 0, count: workers.count)
        var idleChecks = 0
        var interval = Tuning.monitorIntervalNanos
        while !stopped.load(ordering: .acquiring) {
            if idleChecks >= Tuning.monitorIdleChecks {
                deepSleeping.store(true, ordering: .sequentiallyConsistent)
                if runtime.idle.unparkedCount == 0 && !stopped.load(ordering: .acquiring) {
                    parker.park()
                }
                deepSleeping.store(false, ordering: .relaxed)
                idleChecks = 0
                interval = Tuning.monitorIntervalNanos
                // Forget what the workers did before the sleep: nobody is stuck yet.
                let now = Sys.nowNanos()
                for w in workers {
                    last[w.index] = w.activity.load(ordering: .relaxed)
                    firstSeen[w.index] = now
                }
                continue
            }
            parker.park(timeoutNanos: interval)
            if stopped.load(ordering: .acquiring) { break }

            var stuck = false
            var queuedBehindStuck = false
            let now = Sys.nowNanos()
            for w in workers {
                let a = w.activity.load(ordering: .relaxed)
                defer { last[w.index] = a }
                if a != last[w.index] { firstSeen[w.index] = now }
                guard a & 1 == 1, a == last[w.index] else { continue }
                stuck = true
                if w.runNextSlot.load(ordering: .relaxed) != 0 || !w.queue.isEmpty { queuedBehindStuck = true }
                if let threshold, reported[w.index] != a, now - firstSeen[w.index] >= threshold {
                    reported[w.index] = a
                    reportStall(runtime, w, activity: a, for: now - firstSeen[w.index], threshold: threshold)
                }
            }
            driver.pollerWanted.store(stuck, ordering: .relaxed)
            var rescued = false
            if stuck {
                let noPoller = !driver.reactor.isDriverHeld
                let overdue = driver.timers.earliestDeadline.map { $0 + interval <= Sys.nowNanos() } ?? false
                if (noPoller || overdue || queuedBehindStuck) && driver.wakeAnyParked() {
                    rescues.add(1, ordering: .relaxed)
                    rescued = true
                }
            }
            // Back off while there is nothing to do (Go's sysmon does the same); look again
            // soon after a rescue, since the stuck worker may still be stuck.
            interval = rescued ? Tuning.monitorIntervalNanos : min(interval * 2, Tuning.monitorMaxIntervalNanos)
            idleChecks = runtime.idle.unparkedCount == 0 ? idleChecks + 1 : 0
        }
    }

    /// Reports a worker inside one job or fiber turn since `nanos` ago (at least: the
    /// Monitor saw the turn begin up to one interval late), with its backtrace taken on its
    /// own thread at this moment (Stall.c) and symbolized here.
    private func reportStall(_ runtime: Runtime, _ w: Worker, activity a: UInt32, for nanos: Int64, threshold: Int64) {
        let captured = Symbols.capture(w.thread.load(ordering: .relaxed))
        let frames = captured?.frames
        var what = a & 2 != 0 ? "a fiber" : "a job"
        // Named only if the turn the capture interrupted is still the one that stalled.
        if a & 2 != 0, let fiber = captured?.fiber, w.activity.load(ordering: .relaxed) == a {
            what = fiber == "?" ? "an unnamed fiber" : "fiber '\(fiber)'"
        }
        let trace: String
        if let frames, !frames.isEmpty, w.activity.load(ordering: .relaxed) == a {
            trace = frames.indices.map { i in "\n    #\(i) " + Symbols.describe(frames[i], isReturnAddress: i > 0) }.joined()
        } else {
            trace = "\n    (no backtrace: " + (frames == nil ? "the thread did not answer the signal" : "the turn ended while it was taken") + ")"
        }
        let name = runtime.configuration.name
        RuntimeWarning.emit(.stall, runtime: name, perWorker: w.index,
                            "worker \(w.index) of runtime '\(name)' has run \(what) for \(nanos / 1_000_000) ms without yielding (threshold \(threshold / 1_000_000) ms); move blocking or long CPU work to spawnBlocking, or yield in long loops. Its stack now:" + trace)
    }

    /// A worker left its park: make sure the Monitor watches again.
    @inline(__always)
    func workerWoke() {
        if deepSleeping.load(ordering: .sequentiallyConsistent),
           deepSleeping.exchange(false, ordering: .sequentiallyConsistent) {
            parker.unpark()
        }
    }

    /// The runtime stopped: the thread exits.
    func stop() {
        stopped.store(true, ordering: .releasing)
        parker.unpark()
    }
}

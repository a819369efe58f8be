// Driver: what a worker does when it has nothing to run. The one place that decides who
// blocks in which epoll, who sleeps until the earliest timer, and how an unpark reaches a
// worker blocked there. Workers call `park(worker:…)`, `poll(worker:…)` and `unpark(_:)`;
// the Parker, the Reactor and the TimerKeeper below it know nothing of each other.
//
// ## Where a parked worker waits
// A worker that parks (Idle has listed it) waits in exactly one place per `park` call:
//   1. the shared reactor, holding its token, when the token is free and either no other
//      worker is awake (it is the last one: the runtime is idle) or the Monitor asks for a
//      poller (`pollerWanted`: some worker has stayed inside one job for a whole monitor
//      interval, so nobody awake will poll soon). Its own backend is nested in the shared
//      one, so it sees its fibers' events there too;
//   2. else, if fibers of this worker wait on descriptors (its own backend is non-empty),
//      in its own backend, so their events wake this thread and no other;
//   3. else on its futex.
// With the timeout of the earliest timer if it became the keeper (TimerKeeper), else none.
//
// ## Invariants
//   I1. An unpark is never lost, wherever the worker waits (Parker's states; the Driver
//       wakes the backend the Parker says it is blocked in).
//   I2. When every worker is parked, one of them holds the shared reactor (rule 1; if a
//       quick look holds the token at that moment, the last worker retries every
//       `Tuning.driverRetryNanos`) and one sleeps until the earliest deadline.
//   I3. When a worker stays inside one job (or fiber turn) while another is parked, the
//       Monitor notices within two of its intervals (1-8 ms, Monitor.swift) and wakes a
//       parked worker if the reactor has no poller, a timer is overdue, or the stuck
//       worker has a woken job in its run-next slot or queue; that worker takes the
//       reactor (rule 1) or steals the job (a run-next is stealable from a worker whose
//       `activity` has not changed during the search). So whenever a worker is idle, events
//       and deadlines are served within ~16 ms whatever the busy workers do, and within
//       ~2 ms while an episode lasts (LivenessTests).
//   I4. New work wakes a parked worker other than the reactor holder and the timer keeper
//       when there is one (`notifyOne`), so they stay where they notice events and
//       deadlines.
//
// ## What stays cheap
// A worker out of work polls the shared reactor itself (no waiting) before it searches or
// parks, and only the last worker awake blocks there while nobody is stuck: a ping-pong
// over a socket between two tasks on one worker never wakes another thread (an event
// resumes its waiter on the worker that polled it, into its run-next slot).
//
// ## Alternatives measured or weighed
//   - "Only the last worker awake blocks in the reactor", alone (the rule before this
//     file): cheapest for ping-pongs, but an idle worker slept on its futex while the
//     only awake worker was inside a long job, and events waited for the job's end (a read
//     completed 1.7 s late behind a 2 s spin). Kept, plus the Monitor.
//   - Tokio's and Go's "any idle worker blocks in the reactor": every message of a task
//     ping-pong then wakes the idle worker blocked in epoll and the pair moves between
//     threads; measured 1.25× the threads round trip (tcp.rtt.task) against 0.8× with one
//     poller. And it does not fix a holder that wakes for an event and then runs long
//     (Tokio has that stall; Go's sysmon covers it).
//   - A dedicated poller thread: every event becomes a thread hop (the reason there is no
//     I/O thread; Reactor.swift).
//   - Waking a parked worker whenever a job enters a run-next slot and nobody searches
//     (Go's wakep): one futex wake per hand-off of every ping-pong. The Monitor's check
//     costs one thread wake per interval instead, and only while some worker is awake.
import Synchronization

final class Driver: Sendable {
    let reactor: Reactor
    let timers: TimerKeeper
    let idle: Idle
    /// One per worker, by index. immutable after init
    let parkers: [Parker]
    /// The worker blocked in the shared reactor, -1 if none: a hint for `notifyOne`.
    /// Written by that worker only, around its blocking poll.
    private let holder = Atomic<Int>(-1)
    /// Set by the Monitor while some worker has stayed inside one job for a whole
    /// interval: a parking worker then takes the shared reactor if it is free (rule 1).
    let pollerWanted = Atomic<Bool>(false)

    init(reactor: Reactor, timers: TimerKeeper, idle: Idle, workerCount: Int) {
        self.reactor = reactor
        self.timers = timers
        self.idle = idle
        self.parkers = (0..<workerCount).map { _ in Parker() }
    }

    /// The worker blocked in the shared reactor, if any (a hint).
    var reactorHolder: Int? {
        let h = holder.load(ordering: .relaxed)
        return h < 0 ? nil : h
    }

    // MARK: waking

    /// Any thread: wakes worker `i` wherever it waits (I1), or makes its next park return.
    func unpark(_ i: Int) {
        switch parkers[i].unpark() {
        case .handled: break
        case .inReactor: reactor.wakeBackend(nil)
        case .inOwnReactor: reactor.wakeBackend(i)
        }
    }

    /// Idle rule 1 (new stealable work): wakes one parked worker if nobody searches,
    /// preferring one that neither holds the reactor nor keeps the timers (I4).
    @inline(__always)
    func notifyOne() {
        if let i = idle.workerToNotify(avoiding: holder.load(ordering: .relaxed), alsoAvoiding: timers.keeperIndex ?? -1) {
            unpark(i)
        }
    }

    /// Wakes some parked worker, counted as searching (timer hand-over, Monitor rescues).
    /// Returns false if none is parked.
    @discardableResult
    func wakeAnyParked() -> Bool {
        guard let i = idle.anySleeper(avoiding: holder.load(ordering: .relaxed)) else { return false }
        unpark(i)
        return true
    }

    /// Worker `k`'s own backend has events that a shared poll just saw: it polls them
    /// itself, so wake it unless it already waits in that backend (the kernel wakes it).
    private func nudge(_ k: Int) {
        if !parkers[k].isInOwnReactor { unpark(k) }
    }

    // MARK: polling without waiting

    /// Worker `i`, awake: looks at the shared reactor if nobody holds it, and at its own
    /// backend if `own`. Returns how many registrations were told.
    @inline(__always) @discardableResult
    func poll(worker i: Int, own: Bool) -> Int {
        var n = reactor.pollIfFree(worker: i, othersReady: nudge)
        if own { n += reactor.pollWorker(i, timeoutNanos: 0) }
        return n
    }

    /// Worker `i`, awake: looks at its own backend only.
    @inline(__always) @discardableResult
    func pollOwn(worker i: Int) -> Int {
        reactor.pollWorker(i, timeoutNanos: 0)
    }

    // MARK: parking

    /// Worker `i`'s thread, already listed as parked in Idle: one wait in the place the
    /// rules above choose, until unparked, an event, the earliest timer if it keeps them,
    /// or `deadline` (monotonic ns). Returns true if it delivered reactor events.
    func park(worker i: Int, ownEvents: Bool, deadline: Int64?) -> Bool {
        let now = Sys.nowNanos()
        let keeperTimeout = timers.claimKeeper(i, now: now)
        defer { if keeperTimeout != nil { timers.releaseKeeper(i) } }
        var timeout = keeperTimeout
        if let d = deadline { timeout = min(timeout ?? .max, max(0, d - now)) }

        let lastAwake = idle.unparkedCount == 0
        if lastAwake || pollerWanted.load(ordering: .relaxed) {
            if reactor.tryAcquireDriver() {
                holder.store(i, ordering: .relaxed)
                defer {
                    holder.store(-1, ordering: .relaxed)
                    reactor.releaseDriver()
                }
                return parkers[i].block(in: .reactor) {
                    reactor.poll(timeoutNanos: timeout, worker: i, othersReady: nudge)
                }
            }
            if lastAwake && holder.load(ordering: .relaxed) < 0 {
                // A quick look holds the token for a moment; that worker will itself be
                // the last to park and block there. Retry soon so no event waits for a
                // runtime whose every worker sleeps (I2). When a parked worker holds it
                // instead (it blocks there with no timeout), events are served: wait
                // without the retry, or an idle runtime would wake every 50 ms for good
                // (found in review: two workers parking together, or one rescued by the
                // Monitor, left the other retrying forever).
                let t = min(timeout ?? Tuning.driverRetryNanos, Tuning.driverRetryNanos)
                return waitOutsideSharedReactor(worker: i, ownEvents: ownEvents, timeout: t)
            }
        }
        return waitOutsideSharedReactor(worker: i, ownEvents: ownEvents, timeout: timeout)
    }

    /// Rules 2 and 3: the worker's own backend, or its futex.
    private func waitOutsideSharedReactor(worker i: Int, ownEvents: Bool, timeout: Int64?) -> Bool {
        if ownEvents, i < reactor.workerBackends.count {
            return parkers[i].block(in: .ownReactor) { reactor.pollWorker(i, timeoutNanos: timeout) }
        }
        parkers[i].park(timeoutNanos: timeout)
        return false
    }
}

// Tuning: every knob of the runtime in one place, each with its reason or measurement.
// Constants that are facts (a syscall's flag value, the page size) stay with their code;
// the ones here are choices someone may want to revisit.
enum Tuning {
    // MARK: scheduler (Scheduler/)

    /// Check the inject queue and timers first every 61 ticks: Go's value; a prime, so the
    /// check does not fall into step with periodic patterns in user code. Busy workers also
    /// poll the reactor (no wait) on these ticks.
    static let globalQueueInterval: UInt32 = 61
    /// Tokio's cap on consecutive LIFO-slot polls: after 3 hand-offs in a row a ping-pong
    /// pair goes to the back of the queue, so it delays the rest by at most 3 jobs.
    static let maxRunNextStreak = 3
    /// Rounds of stealing attempts before parking, with `spinPauses` CPU pauses between
    /// them (a PAUSE is ~40-140 cycles depending on the CPU, so well under the ~1.7 µs a
    /// futex hand-off costs here, PLATFORM.md): a worker that just ran out catches work
    /// arriving right after, without the cost of a park and wake. Not tuned by measurement.
    static let spinRounds = 3
    static let spinPauses = 64
    /// Timer slack of worker threads (prctl PR_SET_TIMERSLACK): how late the kernel may end
    /// the keeper's timed wait. Linux's default, 50 µs, made a 1 ms sleep end ~90 µs late at
    /// the median (`timer.late.1ms`); Dispatch's threads measured ~57 µs.
    static let timerSlackNanos: UInt = 1_000

    // MARK: driver (Driver/)

    /// How long the last worker to park, finding the reactor's token held by a quick look,
    /// sleeps before trying again. A safety net only: the holder is a running worker that
    /// will itself be the last to park and block there. Long enough that an idle runtime in
    /// that state costs nothing measurable (20 wake-ups a second).
    static let driverRetryNanos: Int64 = 50_000_000
    /// The Monitor's check interval right after a rescue or a deep sleep: a worker inside
    /// one job for between one and two intervals counts as stuck, and what waits behind it
    /// (events, due timers, its run-next job) is handed to an idle worker. Each check that
    /// finds nothing to do doubles it, up to `monitorMaxIntervalNanos`. Measured: a fixed
    /// 1 ms interval cost 1.5% of a CPU while one worker was blocked (runtime.idle.cpu's old
    /// shape, same run: 0.0% before the Monitor), ~15 µs per timed wake-up on this VM.
    /// Go's sysmon starts at 20 µs and backs off to 10 ms.
    static let monitorIntervalNanos: Int64 = 1_000_000
    /// The longest interval: the first rescue of an episode comes within two of these.
    static let monitorMaxIntervalNanos: Int64 = 8_000_000
    /// Intervals with every worker parked before the Monitor sleeps without a timeout (an
    /// idle runtime must not wake): 10 ms, so a server between requests a few ms apart does
    /// not pay a Monitor wake-up per request.
    static let monitorIdleChecks = 10
    /// Readiness events one epoll_wait returns at most (EpollBackend): a busy poll returns
    /// again at once, so this bounds the batch, not the throughput.
    static let epollBatch = 256

    // MARK: time (Time/)

    /// log2 of the timer wheel's tick in ns: 8,192 ns (WheelTimerStore.swift). A timer fires
    /// at most one tick late; finer ticks cost more cascades.
    static let timerTickShift = 13

    // MARK: fibers (Fiber/)

    /// Default-size stacks each worker keeps for reuse with their pages (FiberStack.swift:
    /// the rest go back to the arena, which gives their pages back). 128 × 64 KiB = 8 MiB
    /// of address space per worker; resident memory is what those stacks' fibers touched.
    /// Measured (release, one worker, waves of N fibers all alive at once, then joined):
    /// a stack from the pool costs nothing extra, each one past it ~3.3 µs (the arena's
    /// lock, MADV_DONTNEED, a page fault on reuse): N=1,000 cost 3.5 µs per fiber with 128
    /// (7.5 µs with a mapping per stack), 0.66 µs with 1,024; N=10,000 5.3 µs with 128
    /// (9.0 before arenas), 0.82 µs with 16,384. Not raised: a pooled stack keeps its pages
    /// (4-8 KiB) and its arena chunk mapped (up to ~128 KiB of guard page tables) for as
    /// long as the runtime lives, whether or not such a burst comes again.
    static let fiberStackPoolLimit = 128
    /// Guard pages below every fiber stack: 4 pages (16 KiB), so a frame larger than one
    /// page that skips over the first guard page still lands in a guard.
    static let fiberGuardPages = 4
    /// Address space per arena chunk of fiber stacks (FiberStack.swift): one mmap, and at
    /// most one mapping, per 819 default stacks (64 KiB + 16 KiB guard), so 1M fibers need
    /// ~1,220 chunks, far under vm.max_map_count even if no two chunks merge. Smaller
    /// chunks empty (and are unmapped) sooner; bigger ones map less often, though one mmap
    /// per 819 stacks is already noise next to their first-use guards (~1.3 µs each).
    static let fiberStackChunkBytes = 64 << 20
    /// Largest usable stack size carved from arenas; bigger stacks (deep recursion) get a
    /// mapping each: a 64 MiB chunk holds 63 stacks of 1 MiB, but only 3 of 16 MiB.
    static let fiberStackArenaMaxSize = 1 << 20
    /// Empty chunks a size class keeps mapped instead of unmapping them, so a population
    /// hovering at a chunk boundary does not map and unmap a chunk per spawn. A spare costs
    /// address space and the page tables of its guard markers (~128 KiB per 64 MiB chunk).
    static let fiberStackSpareChunks = 1

    // MARK: sockets (Net/)

    /// `accept` out of descriptors (EMFILE/ENFILE) backs off, doubling from 5 ms to 1 s,
    /// instead of spinning on a listener that stays readable (Go and Tokio sleep too).
    static let acceptFirstBackoff: Duration = .milliseconds(5)
    static let acceptMaxBackoff: Duration = .seconds(1)
    /// The largest buffer `read(upTo:)` / `read(exactly:)` allocate before any byte has
    /// arrived: the size a peer may ask for (a length prefix) is not what it sends, so
    /// buffers grow with the bytes received, from here. 64 KiB is `read(upTo:)`'s default
    /// and one loopback segment, so the common read still needs one buffer and one recv.
    static let firstReadBufferBytes = 64 << 10
}

// The `task.floor` system of `spindle bench`: the cheapest executor Swift's jobs can run
// on, so task.yield, task.pingpong and task.spawn show how far an executor is from what
// Swift's concurrency runtime itself costs (task objects, continuations, job headers).
//
// One thread (the child's main thread) runs a loop over an array of jobs: no lock, no
// atomics, no wake-ups, no timers, no stealing. It is installed as both global executors,
// so every task in the child runs on it.
//
// UNSAFE FILE: runs jobs with runSynchronously and is @unchecked Sendable.
@_spi(ExperimentalCustomExecutors) import _Concurrency
#if canImport(Glibc)
import Glibc
#endif

final class FloorExecutor: MainExecutor, TaskExecutor, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): every enqueue and every job runs on the one thread that
    // calls `run` (the tasks it runs enqueue only from there); `enqueue` checks that with
    // pthread_equal and ends the process if another thread calls it.

    static let shared = FloorExecutor()

    private var jobs: [UnownedJob] = []
    private var spare: [UnownedJob] = []
    private var stopping = false
    private let owner = pthread_self()

    func enqueue(_ job: consuming ExecutorJob) {
        if pthread_equal(pthread_self(), owner) == 0 {
            fatalError("Spindle fatal: the task.floor executor got a job from another thread; it serves one thread only")
        }
        jobs.append(UnownedJob(job))
    }

    func run() {
        try? runUntil { false }
    }

    func runUntil(_ condition: () -> Bool) throws {
        // Jobs run as Spindle's workers run them (on the task executor), like for like.
        let executor = asUnownedTaskExecutor()
        while !condition() && !stopping {
            if jobs.isEmpty { fatalError("Spindle fatal: the task.floor executor ran out of jobs before its measurement stopped it") }
            swap(&jobs, &spare)
            for job in spare { job.runSynchronously(on: executor) }
            spare.removeAll(keepingCapacity: true)
        }
    }

    func stop() { stopping = true }

    var isMainExecutor: Bool { true }
}

struct FloorExecutorFactory: ExecutorFactory {
    static var mainExecutor: any MainExecutor { FloorExecutor.shared }
    static var defaultExecutor: any TaskExecutor { FloorExecutor.shared }
}

enum Floor {
    /// Installs the floor executor (first thing in the child, before any task), runs
    /// `body` as a task on it, and returns its result once the loop has run it to the end.
    static func run(_ body: @escaping @Sendable () async -> Double) -> Double {
        _createExecutors(factory: FloorExecutorFactory.self)
        let result = FloorResult()
        Task {
            result.value = await body()
            FloorExecutor.shared.stop()
        }
        FloorExecutor.shared.run()
        return result.value
    }
}

final class FloorResult: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): written by the last job and read after the loop has
    // returned, on the same thread.
    var value: Double = .nan
}

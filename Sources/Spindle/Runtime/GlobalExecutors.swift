// GlobalExecutors: installing Spindle as Swift's global executors, with no compiler flags.
//
// Swift 6.3.1 creates its global executors lazily, from a factory, the first time it
// needs one; `_createExecutors(factory:)` (SPI) fixes the factory if it is called before
// that moment. The earliest portable moment is the first statement of a synchronous
// `main.swift`, which is what `Runtime.main` is made for. (`typealias
// DefaultExecutorFactory` in an @main type is ignored on Linux without an unsafe frontend
// flag; see shared PLATFORM notes.) After installation:
//   - the default executor is a multi-thread `Runtime`: plain `Task {}`, `Task.detached`,
//     default actors, task-group children, `async let` and `Task.sleep` all run there;
//   - the main actor runs on `MainLoopExecutor`, a run loop on the main thread that
//     `Runtime.main` drives until its body returns.
@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency
import CSpindle
import DequeModule
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

enum GlobalExecutors {
    /// Set once, by `install`, before Swift asks the factory for anything.
    static let state = Lock<(configuration: Runtime.Configuration, runtime: Runtime?, installing: Bool)>((Runtime.Configuration(), nil, false))

    static func isGlobal(_ runtime: Runtime) -> Bool {
        state.withLock { $0.runtime === runtime }
    }

    static var globalRuntime: Runtime {
        state.withLock { s in
            if let r = s.runtime { return r }
            do {
                let r = try Runtime(s.configuration)
                s.runtime = r
                return r
            } catch {
                spindleFatal("could not start the global runtime: \(error)")
            }
        }
    }
}

@_spi(ExperimentalCustomExecutors)
public struct SpindleExecutorFactory: ExecutorFactory {
    public static var mainExecutor: any MainExecutor { MainLoopExecutor.shared }
    public static var defaultExecutor: any TaskExecutor { GlobalExecutors.globalRuntime }
}

extension Runtime {
    /// The runtime installed as Swift's global default executor, if ``main(configuration:_:)``
    /// or ``installGlobalExecutors(configuration:)`` ran.
    public static var global: Runtime? { GlobalExecutors.state.withLock { $0.runtime } }

    /// Installs Spindle as Swift's global executors. Call it as the very first statement of
    /// a synchronous `main.swift`, before anything touches Swift concurrency, then end the
    /// program's setup with ``runMainLoop()``. Prefer ``main(configuration:_:)``, which
    /// does both.
    ///
    /// Misuse stops the process with a `Spindle fatal:` message saying what to do: a
    /// `.currentThread` configuration (the global executor serves every thread, so it must
    /// have threads of its own), a second call, or a call after Swift concurrency already
    /// started on its own executors (the install is then checked, not assumed).
    public static func installGlobalExecutors(configuration: Configuration = Configuration(flavor: .multiThread)) {
        if configuration.flavor != .multiThread {
            spindleFatal("installGlobalExecutors needs a .multiThread configuration (Swift's global executor is shared by every thread, so it needs threads of its own); for a current-thread runtime use Runtime(flavor: .currentThread).run")
        }
        let again = GlobalExecutors.state.withLock { s -> Bool in
            if s.installing || s.runtime != nil { return true }
            s.installing = true
            s.configuration = configuration
            return false
        }
        if again {
            spindleFatal("Spindle was installed as Swift's global executor twice: call Runtime.main or installGlobalExecutors once, as the first statement of main.swift")
        }
        _createExecutors(factory: SpindleExecutorFactory.self)
        // Start the workers now so a misconfiguration fails here, not at the first Task,
        // and check that Swift took the factory: if its own executors already existed
        // (something used Swift concurrency earlier), every task would silently keep
        // running on them.
        let runtime = GlobalExecutors.globalRuntime
        if (Task.defaultExecutor as AnyObject) !== runtime || (MainActor.executor as AnyObject) !== MainLoopExecutor.shared {
            spindleFatal("Swift concurrency was already running on its own executors when Spindle was installed, so Spindle could not take over: call Runtime.main or installGlobalExecutors as the very first statement of main.swift, before any Task, actor or await")
        }
    }

    /// Runs the main actor's executor on the calling (main) thread until
    /// ``stopMainLoop()``.
    public static func runMainLoop() {
        MainLoopExecutor.shared.run()
    }

    /// Makes ``runMainLoop()`` return once the jobs it is running are done.
    public static func stopMainLoop() {
        MainLoopExecutor.shared.stop()
    }

    /// The one-line opt-in: the first statement of `main.swift`.
    ///
    /// ```swift
    /// // main.swift
    /// import Spindle
    /// try Runtime.main {
    ///     // Every Task, actor, task group and Task.sleep in the program now runs on Spindle.
    ///     await server.run()
    /// }
    /// ```
    ///
    /// Installs Spindle as Swift's global executors, runs `body` on the main actor, drives
    /// the main actor's run loop on this thread until `body` finishes, and returns its value
    /// or rethrows its error.
    public static func main<T: Sendable>(
        configuration: Configuration = Configuration(flavor: .multiThread),
        _ body: @MainActor @escaping @Sendable () async throws -> T
    ) throws -> T {
        installGlobalExecutors(configuration: configuration)
        let completion = Completion<T>()
        Task { @MainActor in
            do { completion.finish(.success(try await body())) } catch { completion.finish(.failure(error)) }
            MainLoopExecutor.shared.stop()
        }
        MainLoopExecutor.shared.run()
        return try completion.take()
    }
}

/// The main actor's executor after installation: a FIFO run loop on the main thread.
/// UNSAFE FILE section: runs jobs with runSynchronously.
final class MainLoopExecutor: MainExecutor, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `queue` is a Mutex, `stopping` an atomic, `parker`
    // thread-safe, `loopThread` written once by the thread that runs the loop before it
    // runs any job and only compared against afterwards.

    static let shared = MainLoopExecutor()

    /// guarded by lock
    private let queue = Lock<Deque<UnownedJob>>([])
    private let stopping = Atomic<Bool>(false)
    private let parker = Parker()
    /// The kernel thread id running the loop (the main thread), 0 before `run`.
    private let loopThread = Atomic<Int>(0)

    func enqueue(_ job: consuming ExecutorJob) {
        let j = UnownedJob(job)
        queue.withLock { $0.append(j) }
        parker.unpark()
    }

    func run() {
        try? runUntil { false }
    }

    func runUntil(_ condition: () -> Bool) throws {
        loopThread.store(Int(spindle_gettid()), ordering: .releasing)
        stopping.store(false, ordering: .releasing)
        let serial = asUnownedSerialExecutor()
        while !condition() {
            var batch = Deque<UnownedJob>()
            queue.withLock { q in swap(&q, &batch) }
            for job in batch { job.runSynchronously(on: serial) }
            if stopping.load(ordering: .acquiring) && queue.withLock({ $0.isEmpty }) { break }
            if batch.isEmpty { parker.park() }
        }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        parker.unpark()
    }

    var isMainExecutor: Bool { true }

    func isIsolatingCurrentContext() -> Bool? {
        let t = loopThread.load(ordering: .acquiring)
        return t != 0 && t == Int(spindle_gettid())
    }

    func checkIsolated() {
        if isIsolatingCurrentContext() != true {
            spindleFatal("expected to be on the main actor (the Spindle main loop thread)")
        }
    }
}

// SpindleAutoInstall: add this one product to a test target (or any executable target)
// and the whole program runs on Spindle: a load-time constructor (C, in
// CSpindleAutoInstall) calls `Runtime.installGlobalExecutors()` before `main`, so an
// existing XCTest or swift-testing suite runs its tasks, actors, task groups and
// `Task.sleep` on Spindle's workers with no code change.
//
// ```swift
// // Package.swift
// .testTarget(name: "MyTests", dependencies: [
//     "MyLibrary",
//     .product(name: "SpindleAutoInstall", package: "spindle"),
// ])
// ```
@_spi(ExperimentalCustomExecutors) import _Concurrency
import CSpindleAutoInstall
import Spindle

/// Whether the load-time constructor installed Spindle as Swift's global executor.
///
/// Depending on the `SpindleAutoInstall` product is enough: nothing has to be called. The
/// installation happens in a C constructor before `main`, with
/// `Runtime.installGlobalExecutors()`'s default configuration (multi-thread, one worker
/// per CPU); `Runtime.global` is the installed runtime.
///
/// Environment: `SPINDLE_AUTO_INSTALL=0` turns the installation off (any other value, or
/// none, installs), so the same test binary can be run on Swift's default executor:
///
/// ```sh
/// SPINDLE_AUTO_INSTALL=0 swift test   # Swift's default (Dispatch) executors
/// swift test                          # Spindle
/// ```
///
/// The main actor stays on Swift's platform main executor (Dispatch's main queue), not on
/// Spindle's main-thread loop: XCTest on Linux runs every test inside one main-thread job
/// and waits for async tests by spinning Foundation's run loop, which drains Dispatch's
/// main queue and nothing else. On Spindle's loop, any test that touches `@MainActor`
/// would hang (seen: `await MainActor.run {}` in an XCTest async test). Everything that is
/// not main-actor-isolated (plain and detached tasks, default actors, task groups,
/// `async let`, `Task.sleep`) runs on Spindle.
public enum SpindleAutoInstall {
    /// True if Spindle is Swift's global default executor because of this product: the
    /// constructor ran, `SPINDLE_AUTO_INSTALL` was not `0`, and afterwards Swift's default
    /// executor was `Runtime.global`.
    public static var isInstalled: Bool {
        // This call also anchors the constructor's object file into any link that uses
        // the API (see AutoInstall.c).
        spindle_auto_install_state() == Int32(SPINDLE_AUTO_INSTALL_INSTALLED)
    }

    /// True if the constructor ran and skipped installation because
    /// `SPINDLE_AUTO_INSTALL=0` was set.
    public static var isDisabledByEnvironment: Bool {
        spindle_auto_install_state() == Int32(SPINDLE_AUTO_INSTALL_DISABLED)
    }
}

/// Called once, by the load-time constructor in CSpindleAutoInstall, before `main`.
/// Returns 1 if Swift's default executor is Spindle's global runtime afterwards, else 0.
/// Not API: public only so that the C constructor can always link against it.
// SAFETY: @_cdecl exports this function with the C signature `int (void)` that
// AutoInstall.c declares; it takes no arguments and returns a plain Int32, so the
// two sides cannot disagree about memory. It runs on the loading thread before `main`,
// exactly once (the dynamic loader runs each constructor once).
@_cdecl("spindle_auto_install_run")
public func _spindleAutoInstallRun() -> Int32 {
    // Configures and starts Spindle's global runtime and makes it Swift's default executor.
    Runtime.installGlobalExecutors()
    guard Runtime.global != nil else { return 0 }
    // Then give the main actor back to the platform's main executor (see
    // SpindleAutoInstall's doc comment for why). `_createExecutors` only stores the two
    // executors; nothing has been enqueued yet, so replacing them here is allowed.
    _createExecutors(factory: AutoInstallExecutorFactory.self)
    // Prove that Swift's default executor really is Spindle's runtime now.
    return Task.defaultExecutor === Runtime.global ? 1 : 0
}

/// Spindle's global runtime for tasks, Swift's platform main executor for the main actor.
struct AutoInstallExecutorFactory: ExecutorFactory {
    static var mainExecutor: any MainExecutor { PlatformExecutorFactory.mainExecutor }
    static var defaultExecutor: any TaskExecutor {
        guard let runtime = Runtime.global else {
            fatalError("SpindleAutoInstall: Spindle's global runtime is not running")
        }
        return runtime
    }
}

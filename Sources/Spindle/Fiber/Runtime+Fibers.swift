// Runtime+Fibers: spawning a fiber on a runtime, and its bookkeeping until it ends (the
// self-retain, the live count). UNSAFE FILE: Unmanaged self-retain.
import CSpindle
import Synchronization

extension Runtime {
    /// Starts a fiber running `body` on one of this runtime's workers and returns its
    /// handle. Callable from anywhere: a fiber, a task, a plain thread.
    ///
    /// The fiber starts on whichever worker picks it up first and stays on that worker
    /// for its whole life.
    /// - Parameters:
    ///   - name: shown in the stack-overflow message.
    ///   - stackSize: usable stack bytes (default ``Configuration/fiberStackSize``),
    ///     rounded up to pages, at least 16 KiB. Overflowing it ends the process with a
    ///     message naming the fiber.
    /// - Returns: a handle; if the runtime has shut down the fiber never runs and the
    ///   handle's result is ``RuntimeError/shutDown``.
    @inlinable
    @discardableResult
    public func spawnFiber<T: Sendable>(
        name: String? = nil, stackSize: Int? = nil, _ body: @escaping @Sendable () throws -> T
    ) -> FiberHandle<T> {
        let core = FiberTask<T>(name: name, stackSize: stackSize, body: body)
        start(core)
        return FiberHandle(core: core)
    }

    /// Queues a new fiber (the non-generic half of spawnFiber).
    @usableFromInline
    func start(_ core: FiberCore) {
        core.runtimeRef = self
        liveFiberCount.add(1, ordering: .relaxed)
        // SAFETY: the fiber holds itself until it ends (released in fiberEnded), so the
        // unretained words naming it in the queues are always valid.
        _ = Unmanaged.passRetained(core)
        if _slowPath(Trace.isOn) { Trace.fiberCreated(core) }
        if isStopped {
            finishUnstartedFiber(core, error: RuntimeError.shutDown)
        } else {
            schedule(Runnable(fiber: core))
        }
    }

    /// Ends a fiber that will never run, with `error`.
    func finishUnstartedFiber(_ fiber: FiberCore, error: any Error) {
        fiber.finishWithoutRunning(error)
        fiber.closeJoiners()
        fiberEnded(fiber)
    }

    /// The fiber is over: drop its hold on the runtime and on itself.
    func fiberEnded(_ fiber: FiberCore) {
        fiber.runtimeRef = nil
        liveFiberCount.subtract(1, ordering: .acquiringAndReleasing)
        // SAFETY: balances the retain taken in start(_:); nothing queued names it now.
        Unmanaged.passUnretained(fiber).release()
    }
}

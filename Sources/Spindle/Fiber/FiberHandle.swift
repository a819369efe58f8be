// FiberHandle: what the spawner keeps: join (blocking), value (async), cancel; and the
// joining machinery on FiberCore (a JoinWaiter per joiner, FiberJoin.swift; a joining
// fiber reuses its own). UNSAFE FILE: the joining fiber is reached unretained.
import CSpindle
import Synchronization

/// A handle to a fiber: join it, await it, cancel it. Dropping the handle does not cancel
/// the fiber (like a `Task`).
public struct FiberHandle<Value: Sendable>: Sendable, Hashable {
    @usableFromInline let core: FiberTask<Value>

    @inlinable init(core: FiberTask<Value>) { self.core = core }

    /// The name given at spawn, if any.
    public var name: String? { core.name }

    /// True once the fiber's body has returned or thrown.
    @inlinable public var isFinished: Bool { core.isFinished }

    /// True once ``cancel()`` was called (or the runtime began shutting down while it ran).
    @inlinable public var isCancelled: Bool { core.isCancelled }

    /// Asks the fiber to stop: its blocking calls (current and future) throw
    /// `CancellationError`, so its body unwinds and releases what it holds. Any thread.
    @inlinable public func cancel() { core.cancel() }

    /// Waits for the fiber to finish and returns its value or rethrows its error.
    ///
    /// From a fiber this parks the calling fiber (its worker runs other work meanwhile); on
    /// a plain thread it blocks the thread.
    /// - Throws: the fiber's error; `CancellationError` if the *calling* fiber is cancelled
    ///   while waiting; ``FiberError/blockingOnWorker(_:)`` when called from a task on a
    ///   Spindle worker (use ``value`` there).
    @available(*, noasync, message: "join() blocks; in async code use `try await handle.value`")
    @inlinable
    public func join() throws -> Value {
        if !core.isFinished { try core.waitUntilFinished() }
        return try core.finishedResult().get()
    }

    /// The fiber's value, awaited from async code without blocking a thread. Cancelling
    /// the awaiting task does not cancel the fiber (as with `Task.value`); call ``cancel()``.
    @inlinable
    public var value: Value {
        get async throws {
            if !core.isFinished { await core.awaitFinished() }
            return try core.finishedResult().get()
        }
    }

    /// The result, if the fiber has finished.
    @inlinable
    public var result: Result<Value, any Error>? {
        core.isFinished ? core.finishedResult() : nil
    }

    public static func == (a: FiberHandle, b: FiberHandle) -> Bool { a.core === b.core }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(core)) }
}

extension FiberCore {
    /// join(), without the result: parks the calling fiber, or blocks the calling thread,
    /// until this fiber has finished.
    @usableFromInline
    func waitUntilFinished() throws {
        if let current = Fiber.currentCoreRef {
            // SAFETY: the running fiber, alive while it runs this.
            try current._withUnsafeGuaranteedRef { me throws in
                if me === self { throw FiberError.joiningItself }
                // The fiber's own join waiter, unless a list still holds it (a join it gave
                // up, whose target has not ended): no allocation per join.
                let waiter: JoinWaiter
                if isKnownUniquelyReferenced(&me.ownJoinWaiter) {
                    waiter = me.ownJoinWaiter.unsafelyUnwrapped
                    waiter.rearm(for: me)
                } else {
                    waiter = JoinWaiter(fiber: me)
                    me.ownJoinWaiter = waiter
                }
                guard addJoiner(waiter) else {
                    waiter.withdraw()
                    return
                }
                while !isFinished {
                    if me.isCancelled {
                        // Let go of ourselves: the target may run for long, and its list
                        // would keep this fiber (and its frames) alive until then.
                        waiter.withdraw()
                        throw CancellationError()
                    }
                    me.park(unless: { isFinished }, reason: .join)
                }
            }
            return
        }
        try checkMayBlock("FiberHandle.join()")
        let parker = Parker()
        if addJoiner(JoinWaiter(parker: parker)) {
            while !isFinished { parker.park() }
        }
    }

    /// value, without the result: suspends the calling task until this fiber has finished.
    @usableFromInline
    func awaitFinished() async {
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            if !addJoiner(JoinWaiter(continuation: c)) { c.resume() }
        }
    }
}

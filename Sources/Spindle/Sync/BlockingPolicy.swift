// BlockingPolicy: the one rule every blocking form (channels, primitives, join, Fiber.wait,
// sleeps, sockets) applies before it blocks:
//   - in a fiber, it parks the fiber (the worker runs something else);
//   - on a plain thread (not running a Swift task), it blocks the thread;
//   - inside any Swift task (on a Spindle worker or on Swift's own cooperative pool), it
//     refuses with `FiberError.blockingOnWorker`: blocking there stalls every task queued
//     behind it, and can deadlock when the awaited work needs that thread. Use the `async`
//     form (`await`).
// At compile time the blocking forms are `@available(*, noasync)` and
// `@_disfavoredOverload`: in async code the `async` twin is chosen (even for a synchronous
// closure: `try await mutex.withLock { 5 }`, which used to pick the blocking overload and
// throw under contention), and naming the blocking one directly does not compile. This
// check catches the calls that reach them through synchronous code.

/// Throws if blocking here would block a thread that runs Swift tasks.
@usableFromInline
func checkMayBlock(_ call: String) throws(FiberError) {
    if Fiber.currentCore != nil { return }
    if Worker.current != nil || isRunningATask { throw .blockingOnWorker(call) }
}

/// True when the calling thread is running a Swift task (synchronous code called from
/// one included). Fibers run outside any job, so they never see one.
@usableFromInline
var isRunningATask: Bool { withUnsafeCurrentTask { $0 != nil } }

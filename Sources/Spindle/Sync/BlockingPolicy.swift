// BlockingPolicy: the rule every blocking form (channels, primitives, join, Fiber.wait,
// sockets) applies before it blocks: in a fiber it parks the fiber; on a plain thread it
// blocks the thread; on a Spindle worker outside any fiber it refuses, since blocking
// there would stall every task queued behind it (use the `async` form).

/// Throws if blocking here would block a Spindle worker thread outside a fiber.
@usableFromInline
func checkMayBlock(_ call: String) throws(FiberError) {
    if Fiber.currentCore == nil && Worker.current != nil { throw .blockingOnWorker(call) }
}

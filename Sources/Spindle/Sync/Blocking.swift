// Blocking: the one place where a caller of a synchronization primitive waits, in whichever
// world it lives: a task (suspends on a continuation), a fiber (parks), a plain thread
// (blocks on a futex). Channel has its own copy of this shape, tuned for its fast paths;
// the other primitives (Semaphore, AsyncMutex, Notify, WaitGroup, Barrier, Oneshot, Watch)
// use these two functions.
//
// Contract with the primitive (see Waiter.swift):
//   - `register(&state, waiter)` runs under the primitive's lock. It either completes the
//     operation at once (calls `waiter.complete(...)` and returns the wakes to deliver,
//     which include the waiter's own), or queues the waiter and returns nil;
//   - `withdraw(&state, waiter)` runs under the lock when the waiter is cancelled: it
//     removes the waiter if it is still queued and returns true, or returns false if
//     someone already completed it (then the completion stands);
//   - whoever completes a queued waiter does so under the lock and resumes it after.
// After these functions return, the waiter's `outcome` (and payload) are final.

@usableFromInline
enum Blocking {
    /// Suspends the calling task until `waiter` is completed; cancellation withdraws it.
    @inlinable
    static func wait<State, Payload>(
        _ lock: Lock<State>, _ waiter: Waiter<Payload>,
        register: @Sendable (inout State, Waiter<Payload>) -> [Wake]?,
        withdraw: @Sendable (inout State, Waiter<Payload>) -> Bool
    ) async {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                let wakes: [Wake] = lock.withLock { s in
                    if waiter.outcome == .cancelled { return [Wake(waiter: waiter, continuation: c)] }
                    waiter.continuation = c
                    return register(&s, waiter) ?? []
                }
                for w in wakes { w.resume() }
            }
        } onCancel: {
            let wake: Wake? = lock.withLock { s in
                if withdraw(&s, waiter) { return waiter.complete(.cancelled) }
                if waiter.outcome == .pending && waiter.continuation == nil { waiter.outcome = .cancelled }
                return nil
            }
            wake?.resume()
        }
    }

    /// Parks the calling fiber (or blocks the calling thread) until `waiter` is completed;
    /// cancelling the fiber withdraws it. `waiter` must have been made with
    /// `forTask: false` on this fiber or thread.
    @inlinable
    static func block<State, Payload>(
        _ lock: Lock<State>, _ waiter: Waiter<Payload>,
        register: (inout State, Waiter<Payload>) -> [Wake]?,
        withdraw: (inout State, Waiter<Payload>) -> Bool,
        reason: TraceEvent.ParkReason = .wait
    ) {
        let wakes = lock.withLock { s in register(&s, waiter) }
        if let wakes {
            for w in wakes where w.waiter !== waiter { w.resume() }
            return
        }
        if waiter.blockUntilDone(reason: reason) { return }
        let withdrawn = lock.withLock { s -> Bool in
            if withdraw(&s, waiter) { _ = waiter.complete(.cancelled); return true }
            return false
        }
        if !withdrawn { waiter.blockIgnoringCancellation(reason: reason) }
    }

    /// A waiter for a blocking (fiber or thread) call, or the refusal to block a worker.
    @inlinable
    static func blockingWaiter<Payload>(_ call: String, payload: Payload? = nil) throws(FiberError) -> Waiter<Payload> {
        try checkMayBlock(call)
        return Waiter<Payload>(payload: payload, forTask: false)
    }
}

extension Blocking {
    /// Under the lock: takes `w` out of `queue` if it is still queued (cancellation).
    @inlinable
    static func withdraw<P>(_ queue: inout WaiterQueue<P>, _ w: Waiter<P>) -> Bool {
        guard w.isQueued else { return false }
        w.isQueued = false
        return queue.removeFirst(identicalTo: w)
    }

    /// Under the lock: queues `w` (the caller will wait).
    @inlinable
    static func enqueue<P>(_ queue: inout WaiterQueue<P>, _ w: Waiter<P>) -> [Wake]? {
        w.isQueued = true
        queue.append(w)
        return nil
    }

    /// Under the lock: completes every queued waiter that can still be claimed, giving
    /// each `payload()`; returns the wakes to deliver after unlocking.
    @inlinable
    static func completeAll<P>(_ queue: inout WaiterQueue<P>, _ outcome: WaitOutcome, payload: () -> P? = { nil }) -> [Wake] {
        var out: [Wake] = []
        while let w = queue.popFirst() {
            w.isQueued = false
            guard w.claim() else { continue }
            if let p = payload() { w.payload = p }
            out.append(Wake(completing: w, outcome))   // takes over the queue's reference
        }
        return out
    }

    /// Under the lock: completes the oldest waiter that can still be claimed, if any.
    @inlinable
    static func completeFirst<P>(_ queue: inout WaiterQueue<P>, _ outcome: WaitOutcome) -> Wake? {
        while let w = queue.popFirst() {
            w.isQueued = false
            guard w.claim() else { continue }
            return Wake(completing: w, outcome)
        }
        return nil
    }
}

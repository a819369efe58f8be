// Worker+Fibers: the worker's side of fibers: starting, resuming and finishing them, the
// per-worker ready lists, the stack pool, the live list. UNSAFE FILE: raw context
// pointers on fiber stacks, Unmanaged references, the C fiber entry point.
//
// A fiber is resumed only here, from the worker loop (`execute`), never from inside a
// Swift job: fiber code never sees a stranger's task, task-locals or cancellation.
//
// Queues: a fiber that has not started travels in the ordinary run queues and may be
// stolen (so a burst of spawns spreads over the workers). Once started, its resumes go to
// its home worker only: `readyFibers` when queued from the home thread (owner-only, no
// lock), `remoteFibers` from other threads (a lock, then a nudge of the home's parker).
// The loop alternates between ready fibers and jobs (Worker.nextTask), so neither kind
// can starve the other.
//
// Stack memory: the context lives in the top bytes of the fiber's own stack, so a started
// fiber costs no allocation besides the stack, which comes from a per-worker pool of
// default-size stacks (owner-only, no lock), else from its size class's arena
// (FiberStack.swift, one lock). Pooled stacks keep the pages they touched (giving them
// back would cost a syscall per fiber); the pool's bound caps that memory, and what does
// not fit goes back to the arena, which gives its pages back.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

/// Bytes reserved at the top of every fiber stack for its context (cache-line rounded).
let fiberContextReserve = (MemoryLayout<spindle_fiber_context>.size + 63) & ~63

extension Worker {
    // MARK: queues

    /// Any thread but the home one: queue a started fiber's resume here.
    func pushRemoteFiber(_ r: Runnable) {
        remoteFiberResumes.add(1, ordering: .relaxed)
        remoteFibers.withLock { q in
            q.append(r)
            remoteFiberCount.store(q.count, ordering: .releasing)
        }
        runtime.driver.unpark(index)
    }

    /// Owner: the next ready fiber, taking in the remote list when the local one is empty.
    @inline(__always)
    func popReadyFiber() -> Runnable? {
        if let r = readyFibers.popFirst() { return r }
        if remoteFiberCount.load(ordering: .acquiring) == 0 { return nil }
        remoteFibers.withLock { q in
            readyFibers.append(contentsOf: q)
            q.removeAll(keepingCapacity: true)
            remoteFiberCount.store(0, ordering: .releasing)
        }
        return readyFibers.popFirst()
    }

    var hasReadyFibers: Bool {
        !readyFibers.isEmpty || remoteFiberCount.load(ordering: .acquiring) != 0
    }

    // MARK: running

    /// Owner: runs `fiber` until it suspends or ends.
    func runFiber(_ fiber: FiberCore) {
        if fiber.context == nil {
            // Current-thread flavour: the first fiber alive pins them all to this thread.
            if isCurrentThreadFlavor { checkFiberThread() }
            guard startFiber(fiber) else { return }
        } else {
            if fiber.homeWorker?.toOpaque() != Unmanaged.passUnretained(self).toOpaque() {
                spindleFatal("a started fiber was queued on a worker other than its own")
            }
            if isCurrentThreadFlavor { checkFiberThread() }
        }
        counts.fiberResumes &+= 1
        let tracing = Trace.isOn
        if _slowPath(tracing) {
            Trace.emit(.fiberResume, Trace.id(fiber))
            spindle_trace_set_current(Trace.id(fiber))
        }
        // SAFETY: context is set (started and not finished); the fiber is suspended, so
        // resuming it is the one legal move.
        let back = spindle_fiber_resume(fiber.context.unsafelyUnwrapped)
        // Unconditionally: tracing may have started during the turn, and a direct switch
        // then set it.
        spindle_trace_set_current(0)
        // Control may come back from another fiber that `fiber` switched to directly.
        // SAFETY: every runtime fiber's context names its FiberCore, alive until it ends.
        Unmanaged<FiberCore>.fromOpaque(back.pointee.owner.unsafelyUnwrapped)._withUnsafeGuaranteedRef { f in
            if f.bodyDone { finishFiber(f) }
        }
    }

    /// Owner, on one of its fibers that is about to suspend: the ready fiber to switch to
    /// directly, if the loop has nothing else to do first. The loop still gets its turn
    /// every `Tuning.globalQueueInterval` ticks (timers, the inject queue, shutdown), and
    /// whenever a job is waiting (jobs and fibers alternate there).
    /// Returns the successor's context (contexts identify fibers without a retain).
    @inline(__always)
    func directSuccessor() -> UnsafeMutablePointer<spindle_fiber_context>? {
        // The loop's housekeeping tick (timers, polls, the inject queue, dumps) is its own:
        // hand back before taking it, so `nextTask` is the one that lands on it. (Taking it
        // here and handing back made the loop's next tick miss it: a chain of direct
        // hand-offs then never fired a timer.)
        if (tick &+ 1) % Tuning.globalQueueInterval == 0 { return nil }
        tick &+= 1
        activity.store(tick << 2 | 2 | 1, ordering: .relaxed)
        if runNextSlot.load(ordering: .relaxed) != 0 || !queue.isEmpty || !runtime.inject.isEmpty { return nil }
        guard let r = popReadyFiber() else { return nil }
        counts.fiberResumes &+= 1
        // SAFETY: a word in the ready lists names a live, started fiber (FiberCore's
        // protocol); reading its context does not need a reference.
        return Unmanaged<FiberCore>.fromOpaque(r.fiberPointer)._withUnsafeGuaranteedRef { $0.context.unsafelyUnwrapped }
    }

    /// Owner: gives `fiber` a stack and a context and makes this worker its home.
    private func startFiber(_ fiber: FiberCore) -> Bool {
        let stack: FiberStack
        do {
            stack = try takeStack(size: fiber.stackSize)
        } catch {
            runtime.finishUnstartedFiber(fiber, error: FiberError.stackUnavailable(error))
            return false
        }
        let ctx = stack.contextPointer
        let usable = UnsafeMutableRawPointer(ctx) - stack.base
        // SAFETY: the fiber is alive until it finishes (self-retain from spawn); the entry
        // point reaches it unretained.
        spindle_fiber_init(ctx, stack.base, usable, fiberEntryPoint, Unmanaged.passUnretained(fiber).toOpaque())
        if let name = fiber.name {
            spindle_fiber_describe(ctx, name, FiberStack.guardSize)
        } else {
            spindle_fiber_describe(ctx, nil, FiberStack.guardSize)
        }
        ctx.pointee.owner = Unmanaged.passUnretained(fiber).toOpaque()
        // SAFETY: unretained, see FiberCore.homeWorker.
        fiber.homeWorker = Unmanaged.passUnretained(self)
        fiber.context = ctx
        fiber.stack = stack
        addLive(fiber)
        if runtime.isDraining { fiber.cancelled.store(true, ordering: .sequentiallyConsistent) }
        return true
    }

    /// Owner: the body returned; recycle the stack and tell the joiners.
    private func finishFiber(_ fiber: FiberCore) {
        if _slowPath(Trace.isOn) { Trace.emit(.fiberFinish, Trace.id(fiber)) }
        removeLive(fiber)
        let stack = fiber.stack!
        let ctx = fiber.context!
        fiber.context = nil
        fiber.stack = nil
        recycle(stack, context: ctx)
        fiber.closeJoiners()
        runtime.fiberEnded(fiber)
    }

    /// Current-thread flavour: fibers alive (started, not ended) stay on one thread; with
    /// none alive, the calling thread becomes theirs.
    private func checkFiberThread() {
        let me = pthread_self()
        if let t = fiberThread, pthread_equal(t, me) == 0, liveFibers != nil {
            // `run` refuses this case with RuntimeError.fibersOnAnotherThread; `shutdown`
            // cannot throw.
            spindleFatal("a current-thread runtime's fibers run only on the thread that started them, and another thread is driving it: call run and shutdown from that thread, or use a .multiThread runtime")
        }
        fiberThread = me
    }

    /// Current-thread flavour, under the turn lock: started fibers are alive and pinned to
    /// a thread other than the caller's.
    var fibersPinnedToAnotherThread: Bool {
        guard let t = fiberThread, liveFibers != nil else { return false }
        return pthread_equal(t, pthread_self()) == 0
    }

    // MARK: stacks

    var defaultFiberStackSize: Int { runtime.fiberStackSize }

    private func takeStack(size: Int?) throws(SysError) -> FiberStack {
        let wanted = FiberStack.usableSize(for: size ?? defaultFiberStackSize)
        let stack: FiberStack
        if wanted == defaultFiberStackSize {
            if let s = stackPool.popLast() { return s }
            if let c = defaultStackClass {
                stack = try c.take()
            } else {
                stack = try FiberStack.allocate(size: wanted)
            }
        } else {
            stack = try FiberStack.allocate(size: wanted)
        }
        // Not from this pool: the context area may hold whatever its last user left (its
        // pages are normally given back, so zeroes, but not if that madvise failed), and
        // spindle_fiber_init keeps a TSan fiber it finds there. Its last fiber's sanitizer
        // state was destroyed before it left a pool, so start from an empty context.
        // SAFETY: this worker now owns the stack; its top bytes are the context area.
        stack.contextPointer.initialize(to: spindle_fiber_context())
        return stack
    }

    private func recycle(_ stack: FiberStack, context: UnsafeMutablePointer<spindle_fiber_context>) {
        if stack.size == defaultFiberStackSize && stackPool.count < Tuning.fiberStackPoolLimit {
            // The context stays where it is: the next fiber on this stack re-initializes it
            // (keeping the sanitizer's fiber object, see spindle_fiber_init).
            stackPool.append(stack)
            return
        }
        spindle_fiber_destroy(context)
        giveBack(stack)
    }

    /// A stack this worker is done with, to its arena: the default class is known here,
    /// which spares the registry lookup of FiberStack.release.
    private func giveBack(_ stack: FiberStack) {
        if let c = defaultStackClass, stack.size == defaultFiberStackSize {
            c.give(stack)
        } else {
            stack.release()
        }
    }

    /// Gives every pooled stack back to its arena (the worker is going away).
    func releaseStackPool() {
        for s in stackPool {
            // SAFETY: a pooled stack's context area was initialized by the fiber that used it.
            spindle_fiber_destroy(s.contextPointer)
            giveBack(s)
        }
        stackPool.removeAll()
    }

    // MARK: the live list

    private func addLive(_ f: FiberCore) {
        // SAFETY: unretained links (see FiberCore.previousLive): `f` is started and alive,
        // and is unlisted (removeLive) before it ends.
        let me = Unmanaged.passUnretained(f)
        f.previousLive = nil
        f.nextLive = liveFibers
        liveFibers?._withUnsafeGuaranteedRef { $0.previousLive = me }
        liveFibers = me
    }

    private func removeLive(_ f: FiberCore) {
        let previous = f.previousLive, next = f.nextLive
        if let previous { previous._withUnsafeGuaranteedRef { $0.nextLive = next } } else { liveFibers = next }
        next?._withUnsafeGuaranteedRef { $0.previousLive = previous }
        f.previousLive = nil
        f.nextLive = nil
    }

    /// Owner, once the runtime drains: every fiber started here is cancelled, so its
    /// blocking calls throw and its body unwinds.
    func cancelLiveFibersForShutdown() {
        fibersCancelledForDrain = true
        var f = liveFibers
        while let cur = f {
            cur._withUnsafeGuaranteedRef { cur in
                f = cur.nextLive
                cur.cancel()
            }
        }
    }
}

extension FiberStack {
    /// Where this stack keeps its fiber's context: its top bytes, the same place every time
    /// the stack is reused (the sanitizer's fiber object stays with it).
    var contextPointer: UnsafeMutablePointer<spindle_fiber_context> {
        // SAFETY: the top `fiberContextReserve` bytes are reserved for the context for as
        // long as a fiber owns the stack; its frames live below it.
        (base + (size - fiberContextReserve)).bindMemory(to: spindle_fiber_context.self, capacity: 1)
    }

    /// The usable size a request turns into: at least 16 KiB (the fiber's own frames and
    /// context need a few), rounded up to whole pages.
    static func usableSize(for requested: Int) -> Int {
        let s = max(requested, 16 * 1024)
        return (s + pageSize - 1) / pageSize * pageSize
    }
}

/// The C entry of every runtime fiber: runs the body, then returns, which ends the fiber
/// with all its Swift frames unwound.
private let fiberEntryPoint: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
    // SAFETY: raw is the fiber's FiberCore, alive until it finishes (self-retain).
    Unmanaged<FiberCore>.fromOpaque(raw!)._withUnsafeGuaranteedRef { $0.runBody() }
}

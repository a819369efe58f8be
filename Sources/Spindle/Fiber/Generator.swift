// Generator: a sequence whose body runs on its own stack (a fiber) on the consumer's
// thread, so it can `yield` from anywhere inside plain synchronous code, however deeply
// nested. UNSAFE FILE: fiber context, unretained (Unmanaged) references.
//
// States: fresh (no stack yet) → running ⇄ suspended (parked in yield) → finished.
// Only the consumer's `next()` resumes the fiber, and only the body's `yield` (or its end)
// suspends it, so all fields are touched by one thread at a time, in strict alternation:
// no locks. The fiber's Swift exclusivity state is swapped at every switch (Fiber.c).
//
// Ending early: when the consumer drops the generator (or breaks out of a `for` loop,
// which drops the iterator), deinit resumes the body once more and its pending `yield`
// throws `GeneratorExit`, so the body unwinds and releases everything it holds, like a
// task being cancelled. A body that catches GeneratorExit and keeps yielding gets it
// thrown again at every yield, without suspending, until it ends.
//
// Rejected: running the body as an async task with an AsyncStream (every element would
// cost a task hop and the body would have to be async: the function-colour problem this
// exists to avoid).
import CSpindle

/// Thrown by `Yielder.yield` when the generator's consumer is gone. Let it propagate.
public struct GeneratorExit: Error, Equatable {
    public init() {}
}

/// Passed to a generator's body; call it (or `yield`) to hand a value to the consumer.
/// It can be passed down to nested functions.
public struct Yielder<Element> {
    // SAFETY: unretained: the Yielder is only usable inside the body, which runs only while
    // the consumer is inside next() or deinit of the generator, so the generator is alive
    // whenever the Yielder is used. It must not be retained here: a yield's frame lives
    // across the suspension, and a +1 there would keep the generator alive forever.
    @usableFromInline let core: Unmanaged<Generator<Element>>

    // SAFETY: only the generator creates Yielders, passing itself unretained (see `core`).
    @usableFromInline init(core: Unmanaged<Generator<Element>>) { self.core = core }

    /// Hands `value` to the consumer and pauses until it asks for the next one.
    /// - Throws: `GeneratorExit` if the consumer has gone away; let it propagate.
    @inlinable
    public func yield(_ value: Element) throws {
        try core._withUnsafeGuaranteedRef { try $0.yieldFromBody(value) }
    }

    @inlinable
    public func callAsFunction(_ value: Element) throws {
        try yield(value)
    }
}

/// A sequence produced by a synchronous body that yields values from anywhere in its call
/// tree, running on its own stack on the consumer's thread.
///
/// ```swift
/// func walk(_ node: Node, _ yield: Yielder<Int>) throws {
///     if let l = node.left { try walk(l, yield) }
///     try yield(node.value)
///     if let r = node.right { try walk(r, yield) }
/// }
/// for value in Generator<Int> { yield in try walk(root, yield) } { print(value) }
/// ```
///
/// Errors thrown by the body end the sequence: `nextOrThrow()` rethrows them, and `next()`
/// (used by `for … in`) returns nil and leaves the error in ``error``. A generator is used
/// from one thread at a time (it is not `Sendable`).
///
/// - Complexity: each element costs two stack switches plus the exclusivity swap (40–45 ns
///   measured here); the stack is mapped on
///   the first `next()` and unmapped when the body ends or the generator is dropped.
public final class Generator<Element>: Sequence, IteratorProtocol {
    public typealias Body = (Yielder<Element>) throws -> Void

    @usableFromInline enum State { case fresh, running, suspended, finished }

    /// The stack size for generators that do not ask for one: 64 KiB holds several hundred
    /// ordinary Swift frames; untouched pages cost no memory (MAP_NORESERVE).
    public static var defaultStackSize: Int { 64 * 1024 }

    // Hot fields: @usableFromInline so the per-element path (`next`, `yield`) specializes
    // in the caller (measured: generic metadata lookups made an element cost ~250 ns);
    // @exclusivity(unchecked) because the consumer and the body touch them in strict
    // alternation on one thread (see the design note), which the dynamic checker cannot see.
    @usableFromInline @exclusivity(unchecked) var state = State.fresh
    private var body: Body?
    @usableFromInline @exclusivity(unchecked) var slot: Element?
    @usableFromInline @exclusivity(unchecked) var stopping = false
    private let stackSize: Int
    private var stack: FiberStack?
    @usableFromInline let context: UnsafeMutablePointer<spindle_fiber_context>
    /// What the fiber entry calls; owned here so it lives as long as the fiber can run.
    private var entryBox: FiberEntryBox?
    /// The body's error, if it threw one (GeneratorExit excluded).
    public private(set) var error: (any Error)?

    public init(stackSize: Int = 64 * 1024, _ body: @escaping Body) {
        self.body = body
        self.stackSize = stackSize
        // SAFETY: a private allocation, zeroed (sanitizer fields start empty), freed in deinit.
        context = .allocate(capacity: 1)
        context.initialize(to: spindle_fiber_context())
    }

    deinit {
        if state == .suspended {
            // Unwind the body: its pending yield throws GeneratorExit.
            stopping = true
            resumeBody()
        }
        releaseStack()
        spindle_fiber_destroy(context)
        context.deallocate()
    }

    /// The next element, or nil when the body has finished (or thrown; see ``error``).
    @inlinable
    public func next() -> Element? {
        if state == .suspended {
            resumeBody()
            if state == .suspended { return slot.take() }
        }
        return try? nextSlowPath()
    }

    /// The next element, nil when the body has finished, or the body's error (once).
    @inlinable
    public func nextOrThrow() throws -> Element? {
        if state == .suspended {
            resumeBody()
            if state == .suspended { return slot.take() }
        }
        return try nextSlowPath()
    }

    /// Starting, finishing, errors: everything but the per-element fast path.
    @usableFromInline
    func nextSlowPath() throws -> Element? {
        if state == .finished && stack != nil {
            // The body just ended during the fast path's resume.
            releaseStack()
            if let e = error { throw e }
            return nil
        }
        switch state {
        case .finished:
            return nil
        case .running:
            spindleFatal("Generator.next() called from inside its own body")
        case .fresh:
            do {
                stack = try FiberStack.allocate(size: stackSize)
            } catch {
                state = .finished
                body = nil
                self.error = error
                throw error
            }
            // SAFETY: unretained and used at +0: the generator is alive whenever its fiber
            // runs (see fiberEntry), and must not be retained by the fiber's frames.
            let me = Unmanaged.passUnretained(self)
            let box = FiberEntryBox { me._withUnsafeGuaranteedRef { $0.runBody() } }
            entryBox = box
            // SAFETY: the stack stays mapped until the fiber has finished (releaseStack);
            // the box is owned by entryBox until deinit.
            spindle_fiber_init(context, stack!.base, stack!.size, fiberEntry,
                               Unmanaged.passUnretained(box).toOpaque())
            spindle_fiber_describe(context, nil, FiberStack.guardSize)
        case .suspended:
            break
        }
        resumeBody()
        if state == .finished {
            releaseStack()
            if let e = error { throw e }
            return nil
        }
        return slot.take()
    }

    @usableFromInline
    func resumeBody() {
        state = .running
        spindle_fiber_resume(context)
        // Back on the consumer's stack: the body yielded (state == .suspended) or ended.
    }

    func runBody() {
        guard let body else { state = .finished; return }
        self.body = nil
        do {
            // SAFETY: unretained on purpose: this frame lives across every suspension of
            // the body, and a retain here would keep the generator alive forever.
            try body(Yielder(core: Unmanaged.passUnretained(self)))
        } catch is GeneratorExit {
            // The consumer left; unwinding was the point.
        } catch {
            self.error = error
        }
        state = .finished
    }

    @inlinable
    func yieldFromBody(_ value: Element) throws {
        if stopping { throw GeneratorExit() }
        slot = value
        state = .suspended
        spindle_fiber_suspend(context)
        if stopping { slot = nil; throw GeneratorExit() }
    }

    private func releaseStack() {
        if let s = stack {
            s.release()
            stack = nil
        }
    }
}

/// What the fiber entry calls: a non-generic box around the generator's body runner.
final class FiberEntryBox {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// The fiber entry for every generator: runs the body, then returns (which ends the fiber
/// with all Swift frames unwound).
///
/// Ownership: nothing on the fiber's stack may hold a strong reference to the generator
/// while the body is suspended, or the generator could never be released and so never
/// unwind its body. The box is reached at +0 (`_withUnsafeGuaranteedRef`), and the box's
/// closure reaches the generator the same way.
private let fiberEntry: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
    // SAFETY: raw is the FiberEntryBox owned by the generator (entryBox) for as long as its
    // fiber can run; the fiber only runs inside that generator's next() or deinit.
    Unmanaged<FiberEntryBox>.fromOpaque(raw!)._withUnsafeGuaranteedRef { $0.run() }
}

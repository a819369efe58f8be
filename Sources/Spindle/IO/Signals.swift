// Signals: delivered POSIX signals as an AsyncSequence (or a blocking iterator for
// fibers), for graceful shutdown.
//
// A C handler (Signals.c) counts the signal and writes to this stream's eventfd, which the
// runtime's reactor watches like any socket; the stream reads the counts back on a worker.
// Nothing but atomics and a write runs inside the handler. While a stream watches a
// signal, the signal no longer has its default effect (SIGINT no longer kills the process);
// `stop()` (or dropping the stream) restores what was installed before. Once `stop()`
// returns no handler writes to the stream's descriptor any more (Signals.c: the hand-off),
// so closing it cannot hit a file that has since reused the number.
//
// Signal masks. A signal blocked in every thread's mask is never delivered, so no handler
// runs: a process started from a Swift concurrency thread inherits a mask that blocks
// nearly everything, and such a server ignored SIGTERM. Go's signal.Notify unblocks what it
// watches; here one process-wide thread does it (`SignalReceiver`, started by the first
// stream and kept for the life of the process, like Go's): it keeps every signal blocked,
// except while it waits in ppoll, whose mask lets through exactly the watched signals. So a
// watched signal is deliverable whatever the other threads block, and the kernel, which
// gives a process-directed signal to any thread not blocking it, hands it to this thread
// when all others block it. No other thread's mask is touched: the workers, the monitor and
// the user's threads keep whatever they inherited or set, so there is nothing of theirs to
// restore. `stop()` first makes the thread block the stream's signals again (and waits
// until it does), then restores their dispositions: afterwards a signal blocked everywhere
// stays pending, as it would have without Spindle. Rejected: unblocking the signals on the
// runtime's own workers and monitor, which would need each thread to change its own mask
// at its next loop turn, covers only one runtime's threads, and must restore per thread.
//
// One stream per signal at a time: the handler has one wake-up per signal. A second stream
// for a watched signal throws `SignalError.alreadyWatched`.
import CSpindle
import DequeModule
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A POSIX signal number with names for the usual ones.
public struct UnixSignal: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let interrupt = UnixSignal(rawValue: SIGINT)
    public static let terminate = UnixSignal(rawValue: SIGTERM)
    public static let hangup = UnixSignal(rawValue: SIGHUP)
    public static let quit = UnixSignal(rawValue: SIGQUIT)
    public static let user1 = UnixSignal(rawValue: SIGUSR1)
    public static let user2 = UnixSignal(rawValue: SIGUSR2)

    public var description: String {
        switch rawValue {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        case SIGQUIT: return "SIGQUIT"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        default: return "signal \(rawValue)"
        }
    }
}

public enum SignalError: Error, Equatable, CustomStringConvertible {
    /// Another SignalStream watches this signal.
    case alreadyWatched(UnixSignal)
    /// SIGKILL, SIGSTOP, a signal the C library keeps for itself (32, 33), or a number
    /// out of range.
    case cannotWatch(UnixSignal)
    public var description: String {
        switch self {
        case .alreadyWatched(let s): return "\(s) is already watched by another SignalStream"
        case .cannotWatch(let s): return "\(s) cannot be watched"
        }
    }
}

public final class SignalStream: AsyncSequence, Sendable {
    public typealias Element = UnixSignal
    public typealias Failure = any Error

    let signals: [UnixSignal]
    let io: IOHandle
    private let receiver: SignalReceiver
    /// guarded by lock: signals counted but not yet returned, in arrival order per batch.
    private let pending = Lock(Deque<UnixSignal>())
    private let stopped = Atomic<Bool>(false)

    /// guarded by lock: the signals some stream watches (process-wide).
    private static let watched = Lock(Set<Int32>())

    /// Starts watching `signals` (they stop having their default effect until `stop()`).
    public init(_ signals: [UnixSignal], on runtime: Runtime? = nil) throws {
        // Each signal once: a second sigaction would save our own handler as the one to
        // restore, and stop() would leave it installed.
        var seen = Set<UnixSignal>()
        let signals = signals.filter { seen.insert($0).inserted }
        let rt = try Runtime.forIO(runtime)
        for s in signals where s.rawValue == SIGKILL || s.rawValue == SIGSTOP || s.rawValue <= 0 || s.rawValue >= 65 {
            throw SignalError.cannotWatch(s)
        }
        try SignalStream.watched.withLock { w throws(SignalError) in
            for s in signals where w.contains(s.rawValue) { throw .alreadyWatched(s) }
            for s in signals { w.insert(s.rawValue) }
        }
        do { receiver = try SignalReceiver.shared() } catch {
            SignalStream.watched.withLock { w in for s in signals { w.remove(s.rawValue) } }
            throw error
        }
        let fd: Int32
        do { fd = try Sys.eventFD() } catch {
            SignalStream.watched.withLock { w in for s in signals { w.remove(s.rawValue) } }
            throw SocketError(error)
        }
        do {
            io = try IOHandle(fd: fd, runtime: rt)
        } catch {
            SignalStream.watched.withLock { w in for s in signals { w.remove(s.rawValue) } }
            throw error
        }
        self.signals = signals
        for (i, s) in signals.enumerated() {
            _ = spindle_signal_take(s.rawValue) // forget counts from an earlier stream
            do { try Sys.watchSignal(s.rawValue, wakeFD: fd) } catch {
                // sigaction refuses it (glibc keeps 32 and 33 for itself): undo the rest.
                for done in signals[..<i] { Sys.unwatchSignal(done.rawValue) }
                SignalStream.watched.withLock { w in for s in signals { w.remove(s.rawValue) } }
                stopped.store(true, ordering: .relaxed)
                io.close()
                throw SignalError.cannotWatch(s)
            }
        }
        // Handlers are in place: now let the signals through (one blocked until now and
        // already pending arrives at once).
        receiver.setDeliverable(signals, true)
    }

    deinit { stop() }

    /// Stops watching: the signals get their previous dispositions back, and waiting
    /// `next()` calls end (return nil). Once it returns, the handler writes nothing more
    /// to this stream's descriptor, which is closed.
    public func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
        receiver.setDeliverable(signals, false)
        for s in signals { Sys.unwatchSignal(s.rawValue) }
        SignalStream.watched.withLock { w in for s in signals { w.remove(s.rawValue) } }
        io.close()
    }

    /// Moves counted signals into `pending`; returns the next one, if any.
    private func take() -> UnixSignal? {
        pending.withLock { q in
            for s in signals {
                let n = spindle_signal_take(s.rawValue)
                for _ in 0..<n { q.append(s) }
            }
            return q.popFirst()
        }
    }

    private func drainWakeups() {
        var count: UInt64 = 0
        _ = try? io.withDescriptor { fd throws(SysError) in _ = Glibc.read(fd, &count, 8) }
    }

    /// The next delivered signal; nil once stopped.
    public func next() async throws -> UnixSignal? {
        while true {
            if stopped.load(ordering: .acquiring) { return nil }
            let t = io.ticket(.read)
            drainWakeups()
            if let s = take() { return s }
            do { try await io.wait(.read, since: t) } catch SocketError.closed { return nil }
        }
    }

    /// Fiber/thread form of ``next()-(Void)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func next() throws -> UnixSignal? {
        try checkMayBlock("SignalStream.next()")
        while true {
            if stopped.load(ordering: .acquiring) { return nil }
            let t = io.ticket(.read)
            drainWakeups()
            if let s = take() { return s }
            do { try io.block(.read, since: t) } catch SocketError.closed { return nil }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let stream: SignalStream
        public mutating func next() async throws -> UnixSignal? { try await stream.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: self) }
}

/// The process's one signal-receiving thread (see the header): every signal blocked,
/// except the watched ones while it waits in ppoll. Started by the first SignalStream and
/// kept for the life of the process (one thread, one eventfd).
final class SignalReceiver: Sendable {
    private struct State {
        /// Bit `signo - 1`: let `signo` through.
        var deliverable: UInt64 = 0
        /// Bumped by every change of `deliverable`.
        var requested: UInt64 = 0
        /// The last `requested` the thread has taken: it no longer waits with an older set.
        var applied: UInt64 = 0
        /// Callers waiting for `applied` to reach their change.
        var waiters: [Parker] = []
    }
    /// guarded by lock
    private let state = Lock(State())
    /// Readable when `deliverable` changed: ends the thread's wait.
    private let wakeFD: Int32

    /// guarded by lock: the instance, once started.
    private static let instance = Lock<SignalReceiver?>(nil)

    /// The receiver, started on first use.
    /// - Throws: ``SocketError`` (no descriptor for its eventfd),
    ///   ``RuntimeError/threadSpawnFailed(_:)``.
    static func shared() throws -> SignalReceiver {
        try instance.withLock { r throws -> SignalReceiver in
            if let r { return r }
            let started = try SignalReceiver()
            r = started
            return started
        }
    }

    private init() throws {
        do { wakeFD = try Sys.eventFD() } catch { throw SocketError(error) }
        do {
            // The thread holds the receiver for good: it is never stopped.
            try OSThread.spawn(name: "spindle-signals") { [self] in run() }
        } catch {
            Sys.closeDescriptor(wakeFD)
            throw RuntimeError.threadSpawnFailed(error)
        }
    }

    private func run() {
        Sys.blockAllSignals()
        while true {
            let (deliverable, waiters) = state.withLock { s in
                s.applied = s.requested
                defer { s.waiters.removeAll() }
                return (s.deliverable, s.waiters)
            }
            for p in waiters { p.unpark() }
            Sys.waitLettingSignalsThrough(deliverable, orReadable: wakeFD)
            Sys.eventFDDrain(wakeFD)
        }
    }

    /// Lets `signals` through the thread's wait (or no longer), and returns once the
    /// thread waits with the new set: after `false` it delivers none of them any more.
    /// Blocks the caller for one wake-up of the thread (microseconds).
    func setDeliverable(_ signals: [UnixSignal], _ on: Bool) {
        let me = Parker()
        let target = state.withLock { s -> UInt64 in
            for sig in signals {
                let bit = UInt64(1) << UInt64(sig.rawValue - 1)
                if on { s.deliverable |= bit } else { s.deliverable &= ~bit }
            }
            s.requested += 1
            s.waiters.append(me)
            return s.requested
        }
        Sys.eventFDSignal(wakeFD)
        while state.withLock({ $0.applied }) < target { me.park() }
        state.withLock { s in s.waiters.removeAll { $0 === me } }
    }
}

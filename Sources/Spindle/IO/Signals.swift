// Signals: delivered POSIX signals as an AsyncSequence (or a blocking iterator for
// fibers), for graceful shutdown.
//
// A C handler (Signals.c) counts the signal and writes to this stream's eventfd, which the
// runtime's reactor watches like any socket; the stream reads the counts back on a worker.
// Nothing but an atomic add and a write runs inside the handler. While a stream watches a
// signal, the signal no longer has its default effect (SIGINT no longer kills the process);
// `stop()` (or dropping the stream) restores what was installed before.
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
    /// guarded by lock: signals counted but not yet returned, in arrival order per batch.
    private let pending = Lock(Deque<UnixSignal>())
    private let stopped = Atomic<Bool>(false)

    /// guarded by lock: the signals some stream watches (process-wide).
    private static let watched = Lock(Set<Int32>())

    /// Starts watching `signals` (they stop having their default effect until `stop()`).
    public init(_ signals: [UnixSignal], on runtime: Runtime? = nil) throws {
        let rt = try Runtime.forIO(runtime)
        for s in signals where s.rawValue == SIGKILL || s.rawValue == SIGSTOP || s.rawValue <= 0 || s.rawValue >= 65 {
            throw SignalError.cannotWatch(s)
        }
        try SignalStream.watched.withLock { w throws(SignalError) in
            for s in signals where w.contains(s.rawValue) { throw .alreadyWatched(s) }
            for s in signals { w.insert(s.rawValue) }
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
    }

    deinit { stop() }

    /// Stops watching: the signals get their previous dispositions back, and waiting
    /// `next()` calls end (return nil). Once it returns, the handler writes nothing more
    /// to this stream's descriptor, which is closed.
    public func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
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

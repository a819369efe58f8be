// IOOperation: the one retry loop behind every socket call, in its two worlds.
//
// "Try the syscall; if it would block, wait for the next readiness event after the ticket
// taken before the try; repeat" (IOHandle explains the ticket). The async form suspends a
// task; the blocking form parks a fiber or blocks a plain thread, and refuses to block a
// worker from a task (use the async form there). Errors from the kernel become
// SocketErrors here, with the address they concern.

extension IOHandle {
    /// `drained`: given a result, whether it shows the socket has nothing more for now (the
    /// stream reads pass "shorter than the buffer"). The next call in that direction then
    /// waits for an event *before* trying, saving the syscall that would only say EAGAIN
    /// (Tokio's trick). Safe with edge-triggered events because the ticket was taken before
    /// the syscall: anything that arrived since has already moved it, and the wait returns
    /// at once. The one thing no later event announces is a hang-up already reported (the
    /// end of stream or an error is still to be read): after one, `drainedAt` never matches.
    @inline(__always)
    func perform<T>(
        _ d: IODirection, deadline: Int64? = nil, address: SocketAddress? = nil,
        drained: (T) -> Bool = { _ in false },
        _ attempt: (Int32) throws(SysError) -> Sys.Outcome<T>
    ) async throws -> T {
        try enter()
        defer { leave() }
        var t = ticket(d)
        if drainedAt(d) == t { try await wait(d, since: t, deadline: deadline) }
        while true {
            t = ticket(d)
            let outcome: Sys.Outcome<T>
            do { outcome = try attempt(fd) } catch { throw SocketError(error, address: address) }
            if case .ok(let v) = outcome {
                if drained(v) { markDrained(d, at: t) }
                return v
            }
            try await wait(d, since: t, deadline: deadline)
        }
    }

    @inline(__always)
    func performBlocking<T>(
        _ call: String, _ d: IODirection, deadline: Int64? = nil, address: SocketAddress? = nil,
        drained: (T) -> Bool = { _ in false },
        _ attempt: (Int32) throws(SysError) -> Sys.Outcome<T>
    ) throws -> T {
        try checkMayBlock(call)
        try enter()
        defer { leave() }
        var t = ticket(d)
        if drainedAt(d) == t { try block(d, since: t, deadline: deadline) }
        while true {
            t = ticket(d)
            let outcome: Sys.Outcome<T>
            do { outcome = try attempt(fd) } catch { throw SocketError(error, address: address) }
            if case .ok(let v) = outcome {
                if drained(v) { markDrained(d, at: t) }
                return v
            }
            try block(d, since: t, deadline: deadline)
        }
    }

    /// For calls that never wait (options, addresses, shutdown).
    @inline(__always)
    func withDescriptor<T>(_ body: (Int32) throws(SysError) -> T) throws(SocketError) -> T {
        try enter()
        defer { leave() }
        do { return try body(fd) } catch { throw SocketError(error) }
    }
}

extension Runtime {
    /// The runtime a new socket belongs to: the one given, else the one running this code
    /// (task or fiber on a worker), else the installed global runtime.
    static func forIO(_ explicit: Runtime?) throws(SocketError) -> Runtime {
        if let r = explicit ?? Runtime.current ?? Runtime.global {
            if r.isStopped { throw .runtimeShutDown }
            return r
        }
        throw .noRuntime
    }
}

/// Monotonic deadline for an optional timeout.
@inline(__always)
func deadline(after timeout: Duration?) -> Int64? {
    timeout.map { Sys.nowNanos() &+ $0.nanosecondsClamped }
}

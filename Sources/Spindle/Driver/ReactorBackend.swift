// ReactorBackend: the contract between the reactor and the kernel's readiness interface.
// One backend per file behind this contract: EpollBackend (Linux, the one in use) and
// FakeBackend (tests drive events by hand). io_uring would be a third.
//
// The contract:
//   - `register(fd:token:)` starts watching `fd` for readability and writability,
//     edge-triggered: an event means "readiness may have changed since the last event";
//     the reactor tells waiters to retry, and a retry that would block waits again.
//   - `deregister(fd:)` stops watching before the descriptor is closed.
//   - `poll(timeoutNanos:_:)` waits up to the timeout (nil: forever, 0: just look) and
//     calls `body` once per event with the registration's token. Only one thread polls
//     at a time (the reactor's driver token enforces it).
//   - `wake()` may be called from any thread (and from no worker at all): it makes a poll
//     in progress return soon, or the next one return at once. Wake-ups surface as an
//     event with token `ReactorToken.wake`, which the backend consumes itself.

/// What an event says about a registration.
struct Readiness: OptionSet, Sendable {
    let rawValue: UInt8
    static let readable = Readiness(rawValue: 1)
    static let writable = Readiness(rawValue: 2)
    /// The peer shut down its writing side, or the socket hung up / failed: reads and
    /// writes will no longer block (they return 0 or an error).
    static let closed = Readiness(rawValue: 4)
}

enum ReactorToken {
    /// Tokens are (slot << 24) | generation; slot 0 is never handed out, so 0 is free for
    /// the backend's own wake-up.
    static let wake: UInt64 = 0
}

protocol ReactorBackend: AnyObject, Sendable {
    func register(fd: Int32, token: UInt64) throws(SysError)
    func deregister(fd: Int32)
    func poll(timeoutNanos: Int64?, _ body: (UInt64, Readiness) -> Void)
    func wake()
    /// Releases the backend's own descriptors (runtime deinit).
    func close()
}

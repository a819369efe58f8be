// SocketError: every way a socket call can fail that a user (or the network) can cause,
// as one typed error with a message that says what happened. Built from errno in one
// place (`init(errno:…)`), so every call maps the same errno to the same case.
#if canImport(Glibc)
import Glibc
#endif

public enum SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text is not an address (or a host name that could not be parsed).
    case invalidAddress(String, reason: String)
    /// Name resolution found no address for the host.
    case hostNotFound(String, reason: String)
    /// Nobody listens at the address (ECONNREFUSED).
    case connectionRefused(SocketAddress)
    /// The peer reset the connection (ECONNRESET).
    case connectionReset
    /// Writing to a connection the peer has closed (EPIPE). Never a SIGPIPE.
    case brokenPipe
    /// Another socket is bound to the address (EADDRINUSE).
    case addressInUse(SocketAddress)
    /// The address is not one of this machine's (EADDRNOTAVAIL).
    case addressNotAvailable(SocketAddress)
    /// A deadline passed (connect timeout, or a wait with a deadline).
    case timedOut
    /// The process (EMFILE) or system (ENFILE) is out of file descriptors.
    case tooManyOpenFiles
    /// The socket was closed (by `close()`, possibly while this call waited).
    case closed
    /// The peer closed the connection before `count` bytes arrived (`read(exactly:)`).
    case unexpectedEOF(expected: Int, received: Int)
    /// No route to the network or host (ENETUNREACH, EHOSTUNREACH).
    case unreachable
    /// Not allowed (EACCES, EPERM), e.g. binding a port below 1024.
    case permissionDenied
    /// The runtime this socket belongs to was shut down (or there is none).
    case runtimeShutDown
    /// No Spindle runtime to run the socket on (call from a worker, a fiber, or pass one).
    case noRuntime
    /// A call was given a value it cannot use (a negative byte count); the text names the
    /// call, the value and what it needs.
    case invalidArgument(String)
    /// Any other failure of a system call.
    case system(SysError)

    /// Maps an errno from `call` (about `address`, if any) to its case.
    init(errno e: Int32, call: StaticString, address: SocketAddress? = nil) {
        switch e {
        case ECONNREFUSED: self = address.map { .connectionRefused($0) } ?? .system(SysError(errno: e, call: call))
        case ECONNRESET, ECONNABORTED: self = .connectionReset
        case EPIPE: self = .brokenPipe
        case EADDRINUSE: self = address.map { .addressInUse($0) } ?? .system(SysError(errno: e, call: call))
        case EADDRNOTAVAIL: self = address.map { .addressNotAvailable($0) } ?? .system(SysError(errno: e, call: call))
        case ETIMEDOUT: self = .timedOut
        case EMFILE, ENFILE: self = .tooManyOpenFiles
        case ENETUNREACH, EHOSTUNREACH: self = .unreachable
        case EACCES, EPERM: self = .permissionDenied
        default: self = .system(SysError(errno: e, call: call))
        }
    }

    init(_ error: SysError, address: SocketAddress? = nil) {
        self.init(errno: error.errno, call: error.call, address: address)
    }

    public var description: String {
        switch self {
        case .invalidAddress(let text, let reason): return "invalid address \"\(text)\": \(reason)"
        case .hostNotFound(let host, let reason): return "cannot resolve host \"\(host)\": \(reason)"
        case .connectionRefused(let a): return "connection refused by \(a) (nothing listens there)"
        case .connectionReset: return "connection reset by peer"
        case .brokenPipe: return "broken pipe: the peer closed the connection"
        case .addressInUse(let a): return "address \(a) is already in use"
        case .addressNotAvailable(let a): return "address \(a) is not available on this machine"
        case .timedOut: return "timed out"
        case .tooManyOpenFiles: return "too many open files (the process or system descriptor limit was reached)"
        case .closed: return "the socket is closed"
        case .unexpectedEOF(let expected, let received): return "connection closed after \(received) of \(expected) bytes"
        case .unreachable: return "network or host unreachable"
        case .permissionDenied: return "permission denied"
        case .runtimeShutDown: return "the Spindle runtime of this socket was shut down"
        case .noRuntime: return "no Spindle runtime here: call from a runtime's task or fiber, install a global runtime, or pass `on:`"
        case .invalidArgument(let why): return "invalid argument: \(why)"
        case .system(let e): return e.description
        }
    }
}

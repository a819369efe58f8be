// TCP: listening and connected TCP sockets over IPv4 and IPv6, for tasks and fibers.
// The shared stream calls are in StreamSocket.swift, accept's descriptor back-off in
// Listener.swift.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket.
///
/// ```swift
/// let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"))
/// let client = try await listener.accept()
/// ```
public final class TCPListener: Sendable, CustomStringConvertible {
    let core: ListenerCore

    init(core: ListenerCore) { self.core = core }

    deinit { core.io.close() }

    /// Binds and listens. `SO_REUSEADDR` is on by default (a restarted server can bind
    /// while old connections linger in TIME_WAIT); `reusePort` lets several listeners
    /// share the port (the kernel spreads connections among them). Port 0 picks a free
    /// port: read it back from ``localAddress``.
    /// - Throws: ``SocketError/addressInUse(_:)``, ``SocketError/addressNotAvailable(_:)``,
    ///   ``SocketError/permissionDenied``, ``SocketError/noRuntime``…
    public static func bind(
        to address: SocketAddress, backlog: Int = 1024, reuseAddress: Bool = true, reusePort: Bool = false,
        on runtime: Runtime? = nil
    ) throws(SocketError) -> TCPListener {
        if address.unixPath != nil { throw .invalidAddress(address.description, reason: "a TCP listener needs an IP address (use UnixListener)") }
        let rt = try Runtime.forIO(runtime)
        return TCPListener(core: try ListenerCore(address: address, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort, runtime: rt))
    }

    /// The bound address (with the real port when bound to port 0).
    public var localAddress: SocketAddress { core.address }

    /// Times accept backed off because the process was out of descriptors.
    public var descriptorBackoffCount: Int { core.backoffs.load(ordering: .relaxed) }

    /// Waits for the next connection.
    public func accept() async throws -> TCPStream {
        let (fd, _) = try await core.accept()
        return try TCPStream(adopting: fd, runtime: core.io.runtime)
    }

    /// Fiber/thread form of ``accept()-(Void)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func accept() throws -> TCPStream {
        let (fd, _) = try core.acceptBlocking()
        return try TCPStream(adopting: fd, runtime: core.io.runtime)
    }

    /// Stops listening; a waiting `accept` throws ``SocketError/closed``.
    public func close() { core.io.close() }

    public var description: String { "TCPListener(\(core.address))" }
}

/// A connected TCP stream. `TCP_NODELAY` is on by default (as in Go): small writes go out
/// at once instead of waiting for the peer's acknowledgement.
public final class TCPStream: StreamSocket, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): no stored properties besides the base class's.

    convenience init(adopting fd: Int32, runtime: Runtime) throws(SocketError) {
        self.init(io: try IOHandle(fd: fd, runtime: runtime))
    }

    override init(io: IOHandle) {
        _ = try? Sys.setOption(io.fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        super.init(io: io)
    }

    /// Connects to `address`, waiting at most `timeout` (nil: the kernel's own limit).
    /// - Throws: ``SocketError/connectionRefused(_:)``, ``SocketError/timedOut``,
    ///   ``SocketError/unreachable``, ``SocketError/tooManyOpenFiles``, `CancellationError`.
    public static func connect(to address: SocketAddress, timeout: Duration? = nil, on runtime: Runtime? = nil) async throws -> TCPStream {
        if address.unixPath != nil { throw SocketError.invalidAddress(address.description, reason: "a TCP stream needs an IP address (use UnixStream)") }
        let io = try Connector.start(address, runtime: try Runtime.forIO(runtime))
        var started = false
        do {
            try await io.perform(.write, deadline: deadline(after: timeout), address: address) { fd throws(SysError) in
                try Connector.attempt(fd, address, started: &started)
            }
        } catch {
            io.close()
            throw error
        }
        return TCPStream(io: io)
    }

    /// Resolves `host` (on the blocking pool) and connects to its addresses in turn,
    /// returning the first connection that succeeds, or the last error.
    public static func connect(host: String, port: Int, timeout: Duration? = nil, on runtime: Runtime? = nil) async throws -> TCPStream {
        var last: any Error = SocketError.hostNotFound(host, reason: "no addresses")
        for a in try await SocketAddress.resolve(host: host, port: port) {
            do { return try await connect(to: a, timeout: timeout, on: runtime) } catch { last = error }
        }
        throw last
    }

    /// Fiber/thread form of ``connect(to:timeout:on:)-(SocketAddress,_,_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func connect(to address: SocketAddress, timeout: Duration? = nil, on runtime: Runtime? = nil) throws -> TCPStream {
        if address.unixPath != nil { throw SocketError.invalidAddress(address.description, reason: "a TCP stream needs an IP address (use UnixStream)") }
        try checkMayBlock("TCPStream.connect(to:)")
        let io = try Connector.start(address, runtime: try Runtime.forIO(runtime))
        var started = false
        do {
            try io.performBlocking("TCPStream.connect(to:)", .write, deadline: deadline(after: timeout), address: address) { fd throws(SysError) in
                try Connector.attempt(fd, address, started: &started)
            }
        } catch {
            io.close()
            throw error
        }
        return TCPStream(io: io)
    }

    /// Fiber/thread form of ``connect(host:port:timeout:on:)-(String,_,_,_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func connect(host: String, port: Int, timeout: Duration? = nil, on runtime: Runtime? = nil) throws -> TCPStream {
        var last: any Error = SocketError.hostNotFound(host, reason: "no addresses")
        for a in try SocketAddress.resolve(host: host, port: port) {
            do { return try connect(to: a, timeout: timeout, on: runtime) } catch { last = error }
        }
        throw last
    }

    /// TCP_NODELAY (on by default).
    public var noDelay: Bool {
        get { ((try? io.withDescriptor { fd throws(SysError) in try Sys.getOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY) }) ?? 0) != 0 }
    }

    public func setNoDelay(_ on: Bool) throws(SocketError) {
        try io.withDescriptor { fd throws(SysError) in try Sys.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, on ? 1 : 0) }
    }

    /// SO_KEEPALIVE: the kernel probes an idle connection and reports a dead peer as an
    /// error on the next read.
    public var keepAlive: Bool {
        get { ((try? io.withDescriptor { fd throws(SysError) in try Sys.getOption(fd, SOL_SOCKET, SO_KEEPALIVE) }) ?? 0) != 0 }
    }

    public func setKeepAlive(_ on: Bool) throws(SocketError) {
        try io.withDescriptor { fd throws(SysError) in try Sys.setOption(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0) }
    }
}

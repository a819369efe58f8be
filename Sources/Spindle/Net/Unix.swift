// Unix-domain stream sockets: the same stream calls as TCP (StreamSocket.swift), named by
// a filesystem path.
import CSpindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A listening Unix-domain stream socket.
///
/// The socket file is removed once, by `close()` or else by deinit, and only while the path
/// still names the file this listener's bind created (same device and inode): after a
/// close, another listener (or program) may have bound or created a file at the same path,
/// and that one is not ours to delete. (Between that check and the unlink another process
/// could still swap the file; POSIX has no unlink-if-this-inode, so that window remains.)
public final class UnixListener: Sendable, CustomStringConvertible {
    let core: ListenerCore
    private let path: String
    /// The socket file bind created, or nil if none could be seen right after (nothing
    /// to remove then).
    private let file: SocketFileIdentity?
    /// Set by whichever of close and deinit comes first: only that one removes the file.
    private let fileReleased = Atomic<Bool>(false)

    init(core: ListenerCore, path: String) {
        self.core = core
        self.path = path
        self.file = Sys.socketFileIdentity(path)
    }

    deinit {
        core.io.close()
        removeFile()
    }

    /// Unlinks `path` if this is the first call and it still names our socket file.
    private func removeFile() {
        if fileReleased.exchange(true, ordering: .relaxed) { return }
        if let file, Sys.socketFileIdentity(path) == file { Sys.unlink(path) }
    }

    /// Binds to `path` and listens. With `removeExisting`, a stale socket file left by a
    /// previous run is removed first (only if it is a socket).
    /// - Throws: ``SocketError/addressInUse(_:)`` if the path exists,
    ///   ``SocketError/invalidAddress(_:reason:)`` for a path over 107 bytes.
    public static func bind(path: String, backlog: Int = 1024, removeExisting: Bool = false, on runtime: Runtime? = nil) throws(SocketError) -> UnixListener {
        let address = try SocketAddress(unixPath: path)
        if removeExisting && Sys.socketFileIdentity(path) != nil { Sys.unlink(path) }
        let rt = try Runtime.forIO(runtime)
        return UnixListener(core: try ListenerCore(address: address, backlog: backlog, reuseAddress: false, reusePort: false, runtime: rt), path: path)
    }

    public var localAddress: SocketAddress { core.address }

    public func accept() async throws -> UnixStream {
        let (fd, _) = try await core.accept()
        return UnixStream(io: try IOHandle(fd: fd, runtime: core.io.runtime))
    }

    /// Fiber/thread form of ``accept()-(Void)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func accept() throws -> UnixStream {
        let (fd, _) = try core.acceptBlocking()
        return UnixStream(io: try IOHandle(fd: fd, runtime: core.io.runtime))
    }

    /// Stops listening and removes the socket file (if the path still names it).
    public func close() {
        core.io.close()
        removeFile()
    }

    public var description: String { "UnixListener(\(path))" }
}

/// A connected Unix-domain stream socket.
public final class UnixStream: StreamSocket, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): no stored properties besides the base class's.

    /// Connects to the socket at `path`.
    /// - Throws: ``SocketError/connectionRefused(_:)`` (nobody listens), a `.system` error
    ///   with ENOENT if the path does not exist.
    public static func connect(path: String, on runtime: Runtime? = nil) async throws -> UnixStream {
        let address = try SocketAddress(unixPath: path)
        let io = try Connector.start(address, runtime: try Runtime.forIO(runtime))
        var started = false
        do {
            try await io.perform(.write, address: address) { fd throws(SysError) in try Connector.attempt(fd, address, started: &started) }
        } catch {
            io.close()
            throw error
        }
        return UnixStream(io: io)
    }

    /// Fiber/thread form of ``connect(path:on:)-(String,_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func connect(path: String, on runtime: Runtime? = nil) throws -> UnixStream {
        let address = try SocketAddress(unixPath: path)
        try checkMayBlock("UnixStream.connect(path:)")
        let io = try Connector.start(address, runtime: try Runtime.forIO(runtime))
        var started = false
        do {
            try io.performBlocking("UnixStream.connect(path:)", .write, address: address) { fd throws(SysError) in try Connector.attempt(fd, address, started: &started) }
        } catch {
            io.close()
            throw error
        }
        return UnixStream(io: io)
    }

    /// Two connected streams (socketpair).
    public static func pair(on runtime: Runtime? = nil) throws(SocketError) -> (UnixStream, UnixStream) {
        try pair(runtime: try Runtime.forIO(runtime), reactor: nil)
    }

    /// `pair(on:)` with the reactor to register with (tests give one whose registrations fail).
    static func pair(runtime rt: Runtime, reactor: Reactor?) throws(SocketError) -> (UnixStream, UnixStream) {
        let (fd0, fd1): (Int32, Int32)
        do { (fd0, fd1) = try Sys.socketPair(type: spindle_sock_stream_type) } catch { throw SocketError(error) }
        // A failed IOHandle init closes its own descriptor; the other one is ours to close
        // (not yet registered) or to close through its handle (registered).
        let a: IOHandle
        do { a = try IOHandle(fd: fd0, runtime: rt, reactor: reactor) } catch { Sys.closeDescriptor(fd1); throw error }
        let b: IOHandle
        do { b = try IOHandle(fd: fd1, runtime: rt, reactor: reactor) } catch { a.close(); throw error }
        return (UnixStream(io: a), UnixStream(io: b))
    }
}

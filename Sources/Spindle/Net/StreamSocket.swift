// StreamSocket: a connected byte stream (TCP or Unix-domain), the part every stream
// shares: read, read exactly, write all, half-close, close, addresses. `TCPStream` and
// `UnixStream` add how they are created and their own options.
//
// Every call that may wait exists twice with one name: `async` for tasks, synchronous for
// fibers (parks the fiber; on a plain thread, blocks it). So one client function body can
// run in either world. A call from a task on a Spindle worker must use the async form
// (the synchronous one throws `FiberError.blockingOnWorker` rather than block the worker).
//
// Closing: `close()` (or dropping the last reference) wakes every call waiting on the
// socket with `SocketError.closed`; the descriptor is released once no call uses it.
// Writes never raise SIGPIPE: a write to a closed peer throws `SocketError.brokenPipe`.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

public class StreamSocket: @unchecked Sendable, CustomStringConvertible {
    // SAFETY (@unchecked Sendable): the only stored property is the immutable handle,
    // which is thread-safe; subclasses add only immutable properties.
    let io: IOHandle

    init(io: IOHandle) { self.io = io }

    deinit { io.close() }

    /// The runtime whose reactor serves this socket.
    public var runtime: Runtime { io.runtime }

    public var description: String {
        "\(type(of: self))(\(localAddress.map { "\($0)" } ?? "?") ↔ \(peerAddress.map { "\($0)" } ?? "?"))"
    }

    // MARK: reading

    /// Reads what is available, at most `buffer.count` bytes, waiting until at least one
    /// byte (or the end) arrives. Returns 0 at the end of the stream.
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try await io.perform(.read, drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in try Sys.read(fd, buffer) }
    }

    /// Reads up to `buffer.count` bytes into `buffer`; returns how many (0: end of stream).
    public func read(into buffer: inout [UInt8]) async throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try await io.perform(.read, drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in
            try buffer.withUnsafeMutableBytes { b in Result { () throws(SysError) in try Sys.read(fd, b) } }.get()
        }
    }

    /// Reads what is available, at most `maxBytes`; an empty array means end of stream.
    public func read(upTo maxBytes: Int = 65536) async throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max(1, maxBytes))
        let n = try await read(into: &buf)
        buf.removeSubrange(n...)
        return buf
    }

    /// Reads exactly `count` bytes.
    /// - Throws: ``SocketError/unexpectedEOF(expected:received:)`` if the stream ends first.
    public func read(exactly count: Int) async throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let from = got
            // The buffer's pointer lives only inside the synchronous attempt.
            let n = try await io.perform(.read) { fd throws(SysError) in
                try buf.withUnsafeMutableBytes { b in
                    Result { () throws(SysError) in try Sys.read(fd, UnsafeMutableRawBufferPointer(rebasing: b[from...])) }
                }.get()
            }
            if n == 0 { throw SocketError.unexpectedEOF(expected: count, received: got) }
            got += n
        }
        return buf
    }

    // MARK: writing

    /// Writes all of `buffer`, waiting while the socket's send buffer is full.
    public func write(_ buffer: UnsafeRawBufferPointer) async throws {
        var sent = 0
        while sent < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[sent...])
            sent += try await io.perform(.write) { fd throws(SysError) in try Sys.send(fd, rest) }
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) async throws { try await write(bytes[...]) }

    /// Writes all of `bytes`, a slice of an array (no copy: `write(buffer[..<n])`).
    public func write(_ bytes: ArraySlice<UInt8>) async throws {
        var sent = 0
        while sent < bytes.count {
            let from = sent
            sent += try await io.perform(.write) { fd throws(SysError) in
                try bytes.withUnsafeBytes { b in
                    Result { () throws(SysError) in try Sys.send(fd, UnsafeRawBufferPointer(rebasing: b[from...])) }
                }.get()
            }
        }
    }

    /// Writes all of `text`'s UTF-8 bytes.
    public func write(_ text: String) async throws { try await write(Array(text.utf8)) }

    // MARK: the same, blocking (fibers and plain threads)

    /// Fiber/thread form of ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try io.performBlocking("read(into:)", .read, drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in try Sys.read(fd, buffer) }
    }

    /// Fiber/thread form of ``read(into:)-([UInt8])``.
    public func read(into buffer: inout [UInt8]) throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try io.performBlocking("read(into:)", .read, drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in
            try buffer.withUnsafeMutableBytes { b in Result { () throws(SysError) in try Sys.read(fd, b) } }.get()
        }
    }

    /// Fiber/thread form of ``read(upTo:)``.
    public func read(upTo maxBytes: Int = 65536) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max(1, maxBytes))
        let n = try read(into: &buf)
        buf.removeSubrange(n...)
        return buf
    }

    /// Fiber/thread form of ``read(exactly:)``.
    public func read(exactly count: Int) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = try buf.withUnsafeMutableBytes { b in try read(into: UnsafeMutableRawBufferPointer(rebasing: b[got...])) }
            if n == 0 { throw SocketError.unexpectedEOF(expected: count, received: got) }
            got += n
        }
        return buf
    }

    /// Fiber/thread form of ``write(_:)-(UnsafeRawBufferPointer)``.
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        var sent = 0
        while sent < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[sent...])
            sent += try io.performBlocking("write(_:)", .write) { fd throws(SysError) in try Sys.send(fd, rest) }
        }
    }

    /// Fiber/thread form of ``write(_:)-([UInt8])``.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in try write(b) }
    }

    /// Fiber/thread form of ``write(_:)-(ArraySlice<UInt8>)``.
    public func write(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { b in try write(b) }
    }

    /// Fiber/thread form of ``write(_:)-(String)``.
    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    // MARK: closing and addresses

    /// Half-close: no more writes from this side; the peer reads the end of the stream.
    /// Reading goes on.
    public func shutdownWrite() throws {
        try io.withDescriptor { fd throws(SysError) in try Sys.shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Closes the socket. Calls waiting on it throw ``SocketError/closed`` at once.
    /// Idempotent; also done when the last reference goes away.
    public func close() { io.close() }

    public var isClosed: Bool { io.isClosed }

    /// This side's address.
    public var localAddress: SocketAddress? { try? io.withDescriptor { fd throws(SysError) in Sys.localAddress(fd) } }

    /// The peer's address.
    public var peerAddress: SocketAddress? { try? io.withDescriptor { fd throws(SysError) in Sys.peerAddress(fd) } }
}

/// Shared by stream connectors: a non-blocking connect that waits for completion.
enum Connector {
    static func start(_ address: SocketAddress, runtime: Runtime) throws(SocketError) -> IOHandle {
        let fd: Int32
        do { fd = try Sys.socket(family: address.family, type: spindle_sock_stream_type) } catch { throw SocketError(error, address: address) }
        return try IOHandle(fd: fd, runtime: runtime)
    }

    /// One attempt's outcome: connected, or wait for writability and look again.
    static func attempt(_ fd: Int32, _ address: SocketAddress, started: inout Bool) throws(SysError) -> Sys.Outcome<Void> {
        if !started {
            started = true
            return try address.withSockAddr { sa, len throws(SysError) in try Sys.connect(fd, sa, len) }
        }
        let err = Sys.pendingError(fd)
        if err != 0 { throw SysError(errno: err, call: "connect") }
        return Sys.peerAddress(fd) != nil ? .ok(()) : .wouldBlock
    }
}

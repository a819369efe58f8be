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
    /// The buffer is allocated for what has arrived, not for `maxBytes` (at most 64 KiB
    /// before the first byte), so a large maximum costs nothing by itself.
    /// - Throws: ``SocketError/invalidArgument(_:)`` if `maxBytes` is negative.
    public func read(upTo maxBytes: Int = 65536) async throws -> [UInt8] {
        var reader = try UpToRead(maxBytes)
        _ = try await io.perform(.read, drained: { $0.drained }) { fd throws(SysError) in try reader.attempt(fd) }
        return reader.bytes
    }

    /// Reads exactly `count` bytes. The buffer grows as bytes arrive (it starts at 64 KiB
    /// at most and at most doubles what has been received), so a `count` taken from a
    /// peer's length prefix costs only what the peer really sends.
    /// - Throws: ``SocketError/unexpectedEOF(expected:received:)`` if the stream ends first,
    ///   ``SocketError/invalidArgument(_:)`` if `count` is negative.
    public func read(exactly count: Int) async throws -> [UInt8] {
        var reader = try ExactRead(count)
        while !reader.isComplete {
            let n = try await io.perform(.read, drained: { $0.drained }) { fd throws(SysError) in try reader.attempt(fd) }.count
            if n == 0 { throw SocketError.unexpectedEOF(expected: count, received: reader.received) }
        }
        return reader.bytes
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

    // MARK: with a time limit

    /// ``read(into:)-(UnsafeMutableRawBufferPointer)`` with a time limit: throws
    /// ``SocketError/timedOut`` if neither a byte nor the end of the stream arrives within
    /// `timeout` (`nil`: no limit). The socket stays usable after a timeout.
    public func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) async throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try await io.perform(.read, deadline: deadline(after: timeout), drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in try Sys.read(fd, buffer) }
    }

    /// ``write(_:)-(UnsafeRawBufferPointer)`` with a time limit on the whole write: throws
    /// ``SocketError/timedOut`` if the peer has not taken every byte within `timeout`
    /// (`nil`: no limit). Part of the buffer may have been sent by then.
    public func write(_ buffer: UnsafeRawBufferPointer, timeout: Duration?) async throws {
        let limit = deadline(after: timeout)
        var sent = 0
        while sent < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[sent...])
            sent += try await io.perform(.write, deadline: limit) { fd throws(SysError) in try Sys.send(fd, rest) }
        }
    }

    /// ``write(_:)-(ArraySlice<UInt8>)`` with a time limit on the whole write (see
    /// ``write(_:timeout:)-(UnsafeRawBufferPointer,_)``).
    public func write(_ bytes: ArraySlice<UInt8>, timeout: Duration?) async throws {
        let limit = deadline(after: timeout)
        var sent = 0
        while sent < bytes.count {
            let from = sent
            sent += try await io.perform(.write, deadline: limit) { fd throws(SysError) in
                try bytes.withUnsafeBytes { b in
                    Result { () throws(SysError) in try Sys.send(fd, UnsafeRawBufferPointer(rebasing: b[from...])) }
                }.get()
            }
        }
    }

    /// Fiber/thread form of ``write(_:timeout:)-(ArraySlice<UInt8>,_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ bytes: ArraySlice<UInt8>, timeout: Duration?) throws {
        try bytes.withUnsafeBytes { b in try write(b, timeout: timeout) }
    }

    /// Fiber/thread form of ``read(into:timeout:)-(UnsafeMutableRawBufferPointer,_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try io.performBlocking("read(into:timeout:)", .read, deadline: deadline(after: timeout), drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in try Sys.read(fd, buffer) }
    }

    /// Fiber/thread form of ``write(_:timeout:)-(UnsafeRawBufferPointer,_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ buffer: UnsafeRawBufferPointer, timeout: Duration?) throws {
        let limit = deadline(after: timeout)
        var sent = 0
        while sent < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[sent...])
            sent += try io.performBlocking("write(_:timeout:)", .write, deadline: limit) { fd throws(SysError) in try Sys.send(fd, rest) }
        }
    }

    // MARK: the same, blocking (fibers and plain threads)

    /// Fiber/thread form of ``read(into:)-(UnsafeMutableRawBufferPointer)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try io.performBlocking("read(into:)", .read, drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in try Sys.read(fd, buffer) }
    }

    /// Fiber/thread form of ``read(into:)-([UInt8])``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(into buffer: inout [UInt8]) throws -> Int {
        if buffer.isEmpty { return 0 }
        let want = buffer.count
        return try io.performBlocking("read(into:)", .read, drained: { $0 > 0 && $0 < want }) { fd throws(SysError) in
            try buffer.withUnsafeMutableBytes { b in Result { () throws(SysError) in try Sys.read(fd, b) } }.get()
        }
    }

    /// Fiber/thread form of ``read(upTo:)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(upTo maxBytes: Int = 65536) throws -> [UInt8] {
        var reader = try UpToRead(maxBytes)
        _ = try io.performBlocking("read(upTo:)", .read, drained: { $0.drained }) { fd throws(SysError) in try reader.attempt(fd) }
        return reader.bytes
    }

    /// Fiber/thread form of ``read(exactly:)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(exactly count: Int) throws -> [UInt8] {
        var reader = try ExactRead(count)
        while !reader.isComplete {
            let n = try io.performBlocking("read(exactly:)", .read, drained: { $0.drained }) { fd throws(SysError) in try reader.attempt(fd) }.count
            if n == 0 { throw SocketError.unexpectedEOF(expected: count, received: reader.received) }
        }
        return reader.bytes
    }

    /// Fiber/thread form of ``write(_:)-(UnsafeRawBufferPointer)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        var sent = 0
        while sent < buffer.count {
            let rest = UnsafeRawBufferPointer(rebasing: buffer[sent...])
            sent += try io.performBlocking("write(_:)", .write) { fd throws(SysError) in try Sys.send(fd, rest) }
        }
    }

    /// Fiber/thread form of ``write(_:)-([UInt8])``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in try write(b) }
    }

    /// Fiber/thread form of ``write(_:)-(ArraySlice<UInt8>)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ bytes: ArraySlice<UInt8>) throws {
        try bytes.withUnsafeBytes { b in try write(b) }
    }

    /// Fiber/thread form of ``write(_:)-(String)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
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

// MARK: read buffers that grow with the data

/// One `read(upTo:)` (both worlds): a first buffer of at most
/// `Tuning.firstReadBufferBytes`; if one recv fills it and the socket says more bytes are
/// queued, the buffer grows to hold them (up to the maximum) and a second recv takes them.
/// So the call still returns what has arrived, as one recv of `maxBytes` would, without
/// allocating `maxBytes` first. At most two recvs: a fast sender cannot keep it looping.
struct UpToRead {
    private let maxBytes: Int
    private var buffer: [UInt8]
    private var count = 0

    init(_ maxBytes: Int) throws(SocketError) {
        if maxBytes < 0 { throw .invalidArgument("read(upTo:) needs a maximum of 0 or more bytes, got \(maxBytes)") }
        // As before: a maximum of 0 still reads (and returns) up to one byte.
        self.maxBytes = max(1, maxBytes)
        buffer = [UInt8](repeating: 0, count: min(self.maxBytes, Tuning.firstReadBufferBytes))
    }

    /// The bytes read.
    var bytes: [UInt8] {
        mutating get {
            buffer.removeSubrange(count...)
            return buffer
        }
    }

    /// One attempt: (bytes read, whether the socket is drained for now), 0 at the end of
    /// the stream.
    mutating func attempt(_ fd: Int32) throws(SysError) -> Sys.Outcome<(count: Int, drained: Bool)> {
        guard case .ok(let n) = try recv(fd) else { return .wouldBlock }
        count = n
        if n == 0 { return .ok((0, false)) }
        if n < buffer.count { return .ok((n, true)) }
        if buffer.count == maxBytes { return .ok((n, false)) }
        let queued = Sys.queuedBytes(fd)
        if queued == 0 { return .ok((n, true)) }
        buffer += [UInt8](repeating: 0, count: min(maxBytes, n + queued) - n)
        // Queued bytes are returned before any error, so this recv gives data; should it
        // fail anyway, the bytes already read are returned and the next call sees it.
        guard case .ok(let more)? = try? recv(fd), more > 0 else { return .ok((n, false)) }
        count = n + more
        return .ok((count, count < buffer.count))
    }

    private mutating func recv(_ fd: Int32) throws(SysError) -> Sys.Outcome<Int> {
        let from = count
        return try buffer.withUnsafeMutableBytes { b in
            // SAFETY: the pointer is used only inside this synchronous recv, while the
            // array is held exclusively by this call.
            Result { () throws(SysError) in try Sys.read(fd, UnsafeMutableRawBufferPointer(rebasing: b[from...])) }
        }.get()
    }
}

/// One `read(exactly:)` (both worlds): the buffer starts at `min(count, 64 KiB)` and,
/// once full, doubles (capped at `count`), so it is never more than twice what has
/// arrived plus the first buffer.
struct ExactRead {
    private let count: Int
    private var buffer: [UInt8]
    private(set) var received = 0

    init(_ count: Int) throws(SocketError) {
        if count < 0 { throw .invalidArgument("read(exactly:) needs a byte count of 0 or more, got \(count)") }
        self.count = count
        buffer = [UInt8](repeating: 0, count: min(count, Tuning.firstReadBufferBytes))
    }

    var isComplete: Bool { received == count }

    /// All `count` bytes, once complete.
    var bytes: [UInt8] { buffer }

    /// One recv into the rest of the buffer, grown first if it is full: (bytes read,
    /// whether that drained the socket: fewer than the room offered), 0 at the end.
    mutating func attempt(_ fd: Int32) throws(SysError) -> Sys.Outcome<(count: Int, drained: Bool)> {
        if received == buffer.count {
            buffer += [UInt8](repeating: 0, count: min(buffer.count, count - received))
        }
        let from = received
        let room = buffer.count - from
        let r = try buffer.withUnsafeMutableBytes { b in
            // SAFETY: the pointer is used only inside this synchronous recv, while the
            // array is held exclusively by this call.
            Result { () throws(SysError) in try Sys.read(fd, UnsafeMutableRawBufferPointer(rebasing: b[from...])) }
        }.get()
        guard case .ok(let n) = r else { return .wouldBlock }
        received += n
        return .ok((n, n > 0 && n < room))
    }
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

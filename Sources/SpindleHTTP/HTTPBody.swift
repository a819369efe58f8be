// Bodies: what a handler or a client sends (HTTPBody, written through HTTPBodyWriter),
// and what it receives (HTTPIncomingBody, read from the connection as it arrives).
//
// Every call that waits exists twice under one name, as with Spindle's sockets: `async`
// for tasks, synchronous for fibers.
import HTTPTypes
import Spindle

/// An outgoing body: bytes known up front (sent with Content-Length), or a stream
/// (sent chunked) that a closure writes.
public struct HTTPBody: Sendable, ExpressibleByStringLiteral {
    enum Storage: Sendable {
        case bytes([UInt8])
        case stream(@Sendable (HTTPBodyWriter) async throws -> Void)
        case streamBlocking(@Sendable (HTTPBodyWriter) throws -> Void)
    }
    let storage: Storage

    /// No body (Content-Length: 0 where a body is allowed).
    public static var empty: HTTPBody { HTTPBody(storage: .bytes([])) }
    public static func bytes(_ bytes: [UInt8]) -> HTTPBody { HTTPBody(storage: .bytes(bytes)) }
    public static func string(_ text: String) -> HTTPBody { HTTPBody(storage: .bytes(Array(text.utf8))) }
    /// A body written piece by piece from a task (sent chunked; HTTP/1.0 peers get it
    /// delimited by the connection's close).
    public static func stream(_ write: @escaping @Sendable (HTTPBodyWriter) async throws -> Void) -> HTTPBody {
        HTTPBody(storage: .stream(write))
    }
    /// The fiber form of ``stream(_:)``: the closure uses the writer's blocking calls.
    public static func streamBlocking(_ write: @escaping @Sendable (HTTPBodyWriter) throws -> Void) -> HTTPBody {
        HTTPBody(storage: .streamBlocking(write))
    }

    public init(stringLiteral value: String) { storage = .bytes(Array(value.utf8)) }
    init(storage: Storage) { self.storage = storage }

    /// The bytes, if the body is not a stream (a redirect or a retry can send it again).
    var replayableBytes: [UInt8]? {
        if case .bytes(let b) = storage { return b }
        return nil
    }
}

/// Writes a streamed body: each `write` is sent as one chunk.
public final class HTTPBodyWriter: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): a writer is handed to one body closure, which runs on
    // one task or fiber; nothing else touches it meanwhile.
    let socket: Transport
    let chunked: Bool
    let timeout: Duration?
    private var scratch: [UInt8] = []
    /// Trailer fields sent after the last chunk (chunked bodies only).
    public var trailers: HTTPFields?
    private(set) var bytesWritten = 0

    init(socket: Transport, chunked: Bool, timeout: Duration?) {
        self.socket = socket
        self.chunked = chunked
        self.timeout = timeout
    }

    private func frame(_ bytes: [UInt8]) -> [UInt8] {
        scratch.removeAll(keepingCapacity: true)
        HTTPWire.appendChunkHeader(bytes.count, into: &scratch)
        scratch.append(contentsOf: bytes)
        scratch.append(contentsOf: HTTPWire.crlf)
        return scratch
    }

    /// Sends `bytes` (an empty write sends nothing: an empty chunk would end the body).
    public func write(_ bytes: [UInt8]) async throws {
        if bytes.isEmpty { return }
        bytesWritten += bytes.count
        let wire = chunked ? frame(bytes) : bytes
        try await socket.write(wire[...], timeout: timeout)
    }

    public func write(_ text: String) async throws { try await write(Array(text.utf8)) }

    /// Fiber/thread form of ``write(_:)-([UInt8])``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func write(_ bytes: [UInt8]) throws {
        if bytes.isEmpty { return }
        bytesWritten += bytes.count
        let wire = chunked ? frame(bytes) : bytes
        try socket.write(wire[...], timeout: timeout)
    }

    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    var finalBytes: [UInt8] {
        guard chunked else { return [] }
        var out: [UInt8] = []
        HTTPWire.appendLastChunk(trailers: trailers, into: &out)
        return out
    }

    func finish() async throws {
        let last = finalBytes
        if !last.isEmpty { try await socket.write(last[...], timeout: timeout) }
    }

    @available(*, noasync)
    func finishBlocking() throws {
        let last = finalBytes
        if !last.isEmpty { try socket.write(last[...], timeout: timeout) }
    }
}

/// Where an incoming body comes from: the connection that reads it.
protocol HTTPBodySource: AnyObject {
    func nextChunk() async throws -> [UInt8]?
    func nextChunkBlocking() throws -> [UInt8]?
    var trailers: HTTPFields? { get }
}

/// The body of a received request (server) or response (client), read as it arrives.
///
/// ```swift
/// for try await chunk in request.body { ... }        // a task
/// while let chunk = try request.body.read() { ... }  // a fiber
/// let all = try await response.body.collect(upTo: 1 << 20)
/// ```
public final class HTTPIncomingBody: AsyncSequence, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): a body is read by the one task or fiber that received
    // it (as with a socket, two readers at once would interleave chunks); the source is
    // touched only through these calls.
    public typealias Element = [UInt8]
    public typealias Failure = any Error

    private let source: HTTPBodySource?
    private var ended: Bool

    init(source: HTTPBodySource?) {
        self.source = source
        self.ended = source == nil
    }

    /// The body of a message without one (shared: reading it changes nothing).
    static let none = HTTPIncomingBody(source: nil)

    static func of(_ source: HTTPBodySource?) -> HTTPIncomingBody {
        source.map { HTTPIncomingBody(source: $0) } ?? none
    }

    /// Trailer fields, once the body has been read to its end.
    public var trailers: HTTPFields? { source?.trailers }

    /// The next piece of the body; nil at its end.
    public func read() async throws -> [UInt8]? {
        guard !ended, let source else { return nil }
        if let chunk = try await source.nextChunk() { return chunk }
        ended = true
        return nil
    }

    /// Fiber/thread form of ``read()-(Void)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func read() throws -> [UInt8]? {
        guard !ended, let source else { return nil }
        if let chunk = try source.nextChunkBlocking() { return chunk }
        ended = true
        return nil
    }

    /// The whole body, refused past `limit` bytes.
    /// - Throws: ``HTTPBodyTooLarge`` when the body is longer than `limit`.
    public func collect(upTo limit: Int) async throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try await read() {
            if all.count + chunk.count > limit { throw HTTPBodyTooLarge(limit: limit) }
            all.append(contentsOf: chunk)
        }
        return all
    }

    /// Fiber/thread form of ``collect(upTo:)-(Int)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func collect(upTo limit: Int) throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try read() {
            if all.count + chunk.count > limit { throw HTTPBodyTooLarge(limit: limit) }
            all.append(contentsOf: chunk)
        }
        return all
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let body: HTTPIncomingBody
        public mutating func next() async throws -> [UInt8]? { try await body.read() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
}

/// A body was longer than the caller allowed (``HTTPIncomingBody/collect(upTo:)-(Int)``).
public struct HTTPBodyTooLarge: Error, Equatable, CustomStringConvertible {
    public let limit: Int
    public init(limit: Int) { self.limit = limit }
    public var description: String { "HTTP body longer than the \(limit) bytes allowed" }
}

// HTTPServer: HTTP/1.1 on a TCPListener. Handlers are `async` closures (a task per
// connection) or blocking closures (a fiber per connection); both see the same request
// and response types. The per-connection protocol is in ServerConnection.swift.
import HTTPTypes
import ServiceLifecycle
import Spindle
import SpindleTLS
import Synchronization

/// A received request: the head (HTTPTypes'), the version, and the body as it arrives.
public struct HTTPServerRequest: Sendable {
    public var head: HTTPRequest
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public let body: HTTPIncomingBody
    public let remoteAddress: SocketAddress?
}

/// A handler's answer.
public struct HTTPServerResponse: Sendable {
    public var head: HTTPResponse
    public var body: HTTPBody

    public init(_ head: HTTPResponse, body: HTTPBody = .empty) {
        self.head = head
        self.body = body
    }

    public init(status: HTTPResponse.Status = .ok, headerFields: HTTPFields = [:], body: HTTPBody = .empty) {
        self.head = HTTPResponse(status: status, headerFields: headerFields)
        self.body = body
    }
}

/// Settings of an ``HTTPServer``. The defaults follow common servers (Go's, NIO's).
public struct HTTPServerConfiguration: Sendable {
    /// Parser limits; a request over them gets 414, 431 or 413 and the connection closes.
    public var limits: HTTPParserLimits
    /// The whole request head must arrive within this, once its first byte has (slow
    /// clients get 408 and a close).
    public var headerTimeout: Duration?
    /// An idle keep-alive connection is closed after this.
    public var idleTimeout: Duration?
    /// Each read of a request body must make progress within this (408 and a close).
    public var bodyReadTimeout: Duration?
    /// Each write of a response must complete within this (the connection closes).
    public var writeTimeout: Duration?
    /// Responses of pipelined requests are gathered and written together up to this many
    /// bytes (and always before the server waits for more input).
    public var flushThreshold: Int
    /// Unread request body bytes the server reads and discards after the handler returns
    /// to keep the connection; a longer rest closes the connection instead.
    public var maxDrainBytes: Int
    /// With TLS: the handshake must finish within this, or the connection is closed.
    public var handshakeTimeout: Duration?

    public init(
        limits: HTTPParserLimits = HTTPParserLimits(maxBodyBytes: 16 << 20),
        headerTimeout: Duration? = .seconds(10), idleTimeout: Duration? = .seconds(60),
        bodyReadTimeout: Duration? = .seconds(30), writeTimeout: Duration? = .seconds(30),
        flushThreshold: Int = 64 << 10, maxDrainBytes: Int = 256 << 10, handshakeTimeout: Duration? = .seconds(10)
    ) {
        self.limits = limits
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.bodyReadTimeout = bodyReadTimeout
        self.writeTimeout = writeTimeout
        self.flushThreshold = flushThreshold
        self.maxDrainBytes = maxDrainBytes
        self.handshakeTimeout = handshakeTimeout
    }
}

/// An HTTP/1.1 server.
///
/// ```swift
/// let server = try HTTPServer(address: SocketAddress("127.0.0.1:8080")) { request in
///     HTTPServerResponse(status: .ok, body: "Hello, World!")
/// }
/// try await server.run()          // until server.shutdown(), or SIGTERM in a ServiceGroup
/// ```
/// With `blockingHandler:` each connection runs on a fiber and the handler may block
/// (sockets, channels, sleeps) with no `await`.
public final class HTTPServer: Sendable, Service {
    public typealias Handler = @Sendable (HTTPServerRequest) async throws -> HTTPServerResponse
    public typealias BlockingHandler = @Sendable (HTTPServerRequest) throws -> HTTPServerResponse

    enum Kind: Sendable {
        case async(Handler)
        case blocking(BlockingHandler)
    }

    let listener: TCPListener
    public let configuration: HTTPServerConfiguration
    let kind: Kind
    /// HTTPS: each accepted connection does a TLS handshake first.
    let tls: TLSServerContext?
    let registry = Lock(Registry())
    private let fibers = WaitGroup()

    /// Set once by ``shutdown()``; read by connections without a lock.
    let draining = Atomic<Bool>(false)

    struct Registry {
        var nextID = 0
        var open: [Int: Entry] = [:]
        var accepted = 0
        var handshakeFailures = 0
    }

    struct Entry {
        let stream: TCPStream
        let state: ConnectionState
    }

    /// A connection's phase as shutdown sees it, changed without the registry's lock
    /// (so a request costs no lock): busy, idle (waiting for a request), or closed by
    /// shutdown. The idle → busy and idle → closed moves are compare-and-swaps, so a
    /// connection that has started a request is never closed under it, and one that
    /// shutdown closed knows it.
    final class ConnectionState: Sendable {
        static let busy: UInt8 = 0, idle: UInt8 = 1, closedByShutdown: UInt8 = 2
        let phase = Atomic<UInt8>(ConnectionState.idle)
    }

    /// Serves `handler` as tasks; with `tls`, over HTTPS (a TLS handshake on every
    /// connection, within ``HTTPServerConfiguration/handshakeTimeout``).
    /// - Throws: ``SocketError`` from binding (address in use, …).
    public init(address: SocketAddress, configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                tls: TLSServerContext? = nil, on runtime: Runtime? = nil, handler: @escaping Handler) throws {
        listener = try TCPListener.bind(to: address, on: runtime)
        self.configuration = configuration
        self.tls = tls
        kind = .async(handler)
    }

    /// Serves `blockingHandler` on a fiber per connection; with `tls`, over HTTPS.
    public init(address: SocketAddress, configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                tls: TLSServerContext? = nil, on runtime: Runtime? = nil, blockingHandler: @escaping BlockingHandler) throws {
        listener = try TCPListener.bind(to: address, on: runtime)
        self.configuration = configuration
        self.tls = tls
        kind = .blocking(blockingHandler)
    }

    /// The bound address (with the real port when bound to port 0).
    public var localAddress: SocketAddress { listener.localAddress }

    /// Connections accepted so far.
    public var acceptedConnections: Int { registry.withLock { $0.accepted } }

    /// Connections closed because their TLS handshake failed (a bad client, a client that
    /// refused the certificate, one that said nothing in time).
    public var handshakeFailures: Int { registry.withLock { $0.handshakeFailures } }

    /// Connections open now.
    public var openConnections: Int { registry.withLock { $0.open.count } }

    /// Serves until ``shutdown()`` (or a graceful shutdown of the `ServiceGroup` it runs
    /// in, or cancellation of the calling task), then returns once every connection has
    /// finished its request in flight.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await serve()
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    private func serve() async throws {
        var failure: (any Error)?
        await withDiscardingTaskGroup { group in
            while true {
                let stream: TCPStream
                do {
                    stream = try await listener.accept()
                } catch {
                    if !isDraining && !(error is CancellationError) { failure = error }
                    shutdown()
                    break
                }
                guard let (id, state) = register(stream) else { continue }
                switch kind {
                case .async(let handler):
                    if stream.runtime === Runtime.global {
                        // Spindle is Swift's executor: a preference would only cost a
                        // lookup in every suspension (seen in profiles).
                        group.addTask { await self.serveTask(id, state, stream, handler) }
                    } else {
                        group.addTask(executorPreference: stream.runtime) { await self.serveTask(id, state, stream, handler) }
                    }
                case .blocking(let handler):
                    startFiber(id, state, stream, handler)
                }
            }
        }
        try await fibers.wait()
        if let failure { throw failure }
    }

    /// Fiber/thread form of ``run()``: accepts on the calling fiber until ``shutdown()``.
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code use `try await server.run()`")
    public func runBlocking() throws {
        var failure: (any Error)?
        while true {
            let stream: TCPStream
            do {
                stream = try listener.accept()
            } catch {
                if !isDraining && !(error is CancellationError) { failure = error }
                shutdown()
                break
            }
            guard let (id, state) = register(stream) else { continue }
            switch kind {
            case .async(let handler):
                fibers.add()
                Task(executorPreference: stream.runtime) {
                    await self.serveTask(id, state, stream, handler)
                    self.fibers.done()
                }
            case .blocking(let handler):
                startFiber(id, state, stream, handler)
            }
        }
        try fibers.wait()
        if let failure { throw failure }
    }

    private func startFiber(_ id: Int, _ state: ConnectionState, _ stream: TCPStream, _ handler: @escaping BlockingHandler) {
        fibers.add()
        stream.runtime.spawnFiber(name: "http-conn") { [self] in
            defer { fibers.done() }
            guard let transport = secureBlocking(id, stream) else { return }
            ServerConnection(server: self, id: id, state: state, stream: transport).serveBlocking(handler)
        }
    }

    private func serveTask(_ id: Int, _ state: ConnectionState, _ stream: TCPStream, _ handler: @escaping Handler) async {
        guard let transport = await secure(id, stream) else { return }
        await ServerConnection(server: self, id: id, state: state, stream: transport).serve(handler)
    }

    /// The connection's transport: the TCP stream, or TLS after a handshake (nil if it
    /// failed: the connection is closed and counted).
    private func secure(_ id: Int, _ stream: TCPStream) async -> Transport? {
        guard let tls else { return .plain(stream) }
        do {
            return .tls(try await TLSStream.accept(over: stream, context: tls, handshakeTimeout: configuration.handshakeTimeout))
        } catch {
            handshakeFailed(id, stream)
            return nil
        }
    }

    @available(*, noasync)
    private func secureBlocking(_ id: Int, _ stream: TCPStream) -> Transport? {
        guard let tls else { return .plain(stream) }
        do {
            return .tls(try TLSStream.accept(over: stream, context: tls, handshakeTimeout: configuration.handshakeTimeout))
        } catch {
            handshakeFailed(id, stream)
            return nil
        }
    }

    private func handshakeFailed(_ id: Int, _ stream: TCPStream) {
        stream.close()
        let counted = !isDraining
        registry.withLock { r in
            r.open.removeValue(forKey: id)
            if counted { r.handshakeFailures += 1 }
        }
    }

    /// Graceful shutdown: stop accepting, close idle connections, let requests in flight
    /// finish (their responses say `Connection: close`). ``run()`` returns when all are done.
    public func shutdown() {
        draining.store(true, ordering: .sequentiallyConsistent)
        let idle: [TCPStream] = registry.withLock { r in
            r.open.values.filter {
                $0.state.phase.compareExchange(expected: ConnectionState.idle, desired: ConnectionState.closedByShutdown,
                                               ordering: .sequentiallyConsistent).exchanged
            }.map(\.stream)
        }
        listener.close()
        for s in idle { s.close() }
    }

    var isDraining: Bool { draining.load(ordering: .sequentiallyConsistent) }

    private func register(_ stream: TCPStream) -> (Int, ConnectionState)? {
        // (TCP_NODELAY is already on: every TCPStream sets it.)
        let state = ConnectionState()
        let id = registry.withLock { r -> Int in
            r.accepted += 1
            r.nextID += 1
            r.open[r.nextID] = Entry(stream: stream, state: state)
            return r.nextID
        }
        // After the entry is visible: a shutdown that began before it either saw it (and
        // closes it, it is idle) or set `draining` first, seen here.
        if isDraining { stream.close() }
        return (id, state)
    }

    func unregister(_ id: Int) {
        _ = registry.withLock { $0.open.removeValue(forKey: id) }
    }
}

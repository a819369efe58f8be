// HTTPClient: HTTP/1.1 requests over pooled keep-alive connections, for tasks and fibers.
//
// The pool: per scheme+host+port, a LIFO of idle connections and a semaphore of
// `maxConnectionsPerHost` permits held by the requests in flight. A request takes a
// permit, then an idle connection or a new one; a new one is made only when none is idle,
// so live connections never exceed the limit. A connection goes back only once its
// response body was read to the end (and the response allowed keep-alive); a response
// dropped half-read closes its connection.
import HTTPTypes
import Spindle
import SpindleTLS

/// Settings of an ``HTTPClient``.
public struct HTTPClientConfiguration: Sendable {
    /// Limit on establishing a TCP connection.
    public var connectTimeout: Duration?
    /// Each read (of the response head or body) must make progress within this.
    public var readTimeout: Duration?
    /// The whole request, from the first byte sent to the last body byte read.
    public var requestTimeout: Duration?
    /// Connections to one scheme+host+port at once; requests beyond wait for one.
    public var maxConnectionsPerHost: Int
    /// An idle pooled connection is dropped after this.
    public var idleTimeout: Duration
    /// Redirects followed before ``HTTPClientError/tooManyRedirects(_:)`` (0: none are).
    public var maxRedirects: Int
    /// Parser limits for responses.
    public var limits: HTTPParserLimits
    /// For `https` URLs: trust roots, verification, versions, session resumption. ALPN
    /// always offers `http/1.1` (the protocol this client speaks), whatever is set here.
    /// The TLS handshake counts against `connectTimeout` (a limit of its own, after the
    /// TCP connect's).
    public var tls: TLSClientConfiguration

    public init(connectTimeout: Duration? = .seconds(10), readTimeout: Duration? = .seconds(30),
                requestTimeout: Duration? = nil, maxConnectionsPerHost: Int = 8, idleTimeout: Duration = .seconds(60),
                maxRedirects: Int = 5, limits: HTTPParserLimits = HTTPParserLimits(),
                tls: TLSClientConfiguration = TLSClientConfiguration()) {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.requestTimeout = requestTimeout
        self.maxConnectionsPerHost = max(1, maxConnectionsPerHost)
        self.idleTimeout = idleTimeout
        self.maxRedirects = maxRedirects
        self.limits = limits
        self.tls = tls
    }
}

/// Why a request failed (besides ``HTTPURLError``, ``HTTPParseError`` for a malformed
/// response, ``SocketError`` for the network: refused, reset, timed out…, and
/// ``TLSError`` for `https`: a certificate that does not verify, a failed handshake).
public enum HTTPClientError: Error, Equatable, CustomStringConvertible {
    case tooManyRedirects(Int)
    case missingURL
    case requestTimedOut(Duration)
    case bodyNotReplayable
    case shutDown

    public var description: String {
        switch self {
        case .tooManyRedirects(let n): return "more than \(n) redirects"
        case .missingURL: return "the request has no scheme, authority or path (set HTTPRequest's scheme, authority and path, or pass a URL)"
        case .requestTimedOut(let limit): return "the request did not complete within \(limit)"
        case .bodyNotReplayable: return "a redirect needs to send a streamed request body again, which cannot be replayed"
        case .shutDown: return "the HTTP client has been shut down"
        }
    }
}

/// A response: its head, the final URL (after redirects), and the body as it arrives.
public struct HTTPClientResponse: Sendable {
    public var head: HTTPResponse
    public var url: HTTPURL
    public let body: HTTPIncomingBody
    public var status: HTTPResponse.Status { head.status }
}

/// An HTTP/1.1 client with a connection pool.
///
/// ```swift
/// let client = HTTPClient()
/// let response = try await client.get("http://127.0.0.1:8080/")
/// let bytes = try await response.body.collect(upTo: 1 << 20)
/// ```
/// In a fiber, the same calls without `await` block the fiber only.
public final class HTTPClient: Sendable {
    public let configuration: HTTPClientConfiguration
    let runtime: Runtime?
    let pool: Lock<PoolState>
    /// The TLS context for https, made on first use from `configuration.tls` (loading the
    /// trust store is milliseconds), or given.
    private let tlsContext: Lock<TLSClientContext?>

    struct PoolKey: Hashable, Sendable {
        let scheme: String
        let host: String
        let port: Int
    }

    struct PoolState {
        var hosts: [PoolKey: HostPool] = [:]
        var created = 0
        var closed = false
    }

    struct HostPool {
        let permits: Semaphore
        var idle: [ClientConnection] = []
    }

    /// A client; `tls`, if given, is the context for https (shared with other clients, its
    /// sessions too); otherwise one is made from `configuration.tls` on the first https
    /// request.
    public init(configuration: HTTPClientConfiguration = HTTPClientConfiguration(), tls: TLSClientContext? = nil,
                on runtime: Runtime? = nil) {
        self.configuration = configuration
        self.runtime = runtime
        pool = Lock(PoolState())
        tlsContext = Lock(tls)
    }

    /// The https context (made now if it is the first use).
    /// - Throws: ``TLSError/invalidConfiguration(_:)`` for a bad `configuration.tls`.
    public func tls() throws -> TLSClientContext {
        try tlsContext.withLock { c throws -> TLSClientContext in
            if let c { return c }
            var settings = configuration.tls
            settings.applicationProtocols = ["http/1.1"]
            let made = try TLSClientContext(configuration: settings)
            c = made
            return made
        }
    }

    deinit { closeIdle() }

    /// Connections made so far (a pooled connection reused counts once).
    public var connectionsCreated: Int { pool.withLock { $0.created } }

    /// Idle pooled connections now.
    public var idleConnections: Int { pool.withLock { $0.hosts.values.reduce(0) { $0 + $1.idle.count } } }

    /// Closes idle connections and refuses new requests. Responses in flight finish.
    public func shutdown() {
        pool.withLock { $0.closed = true }
        closeIdle()
    }

    private func closeIdle() {
        let idle = pool.withLock { p -> [ClientConnection] in
            var all: [ClientConnection] = []
            for k in p.hosts.keys {
                all += p.hosts[k]!.idle
                p.hosts[k]!.idle = []
            }
            return all
        }
        for c in idle { c.stream.close() }
    }

    // MARK: requests (tasks)

    /// GET `url`.
    public func get(_ url: String, headerFields: HTTPFields = [:]) async throws -> HTTPClientResponse {
        try await execute(.get, url, headerFields: headerFields)
    }

    /// `method` `url` with `body`.
    public func execute(_ method: HTTPRequest.Method, _ url: String, headerFields: HTTPFields = [:],
                        body: HTTPBody = .empty) async throws -> HTTPClientResponse {
        let u = try HTTPURL(url)
        var request = HTTPRequest(method: method, scheme: u.scheme, authority: u.authority, path: u.requestTarget)
        request.headerFields = headerFields
        return try await execute(request, body: body)
    }

    /// Sends `request` (its scheme, authority and path say where), following redirects.
    // Not inlined: with it inlined into execute(_:_:headerFields:body:), Swift 6.3.1's
    // release build crashes (signal 11 in LLVM's coroutine splitting,
    // emitSetAndGetSwiftErrorValueAround) since the request path grew its TLS branch.
    @inline(never)
    public func execute(_ request: HTTPRequest, body: HTTPBody = .empty) async throws -> HTTPClientResponse {
        var plan = try RequestPlan(request, body: body, configuration: configuration)
        while true {
            let (head, exchange) = try await attempt(plan)
            if let next = try plan.redirect(after: head) {
                try? await exchange.discard()
                plan = next
                continue
            }
            return HTTPClientResponse(head: head, url: plan.url, body: .of(exchange.bodySource))
        }
    }

    /// One request on one connection, with one retry on a fresh connection when a pooled
    /// one turns out to have been closed by the server.
    private func attempt(_ plan: RequestPlan) async throws -> (HTTPResponse, ClientExchange) {
        let key = plan.poolKey
        let permits = try permitsFor(key)
        try await permits.acquire()
        var release: Semaphore? = permits
        defer { release?.release() }
        var connection: ClientConnection
        var reused = true
        if let idle = takeIdle(key) { connection = idle } else { connection = try await connect(plan); reused = false }
        while true {
            let exchange = ClientExchange(client: self, key: key, permits: permits, connection: connection, plan: plan)
            do {
                let head = try await exchange.run()
                release = nil   // the exchange owns the permit now
                return (head, exchange)
            } catch let error where reused && exchange.isStale(error) && plan.isRetryable {
                exchange.abandonKeepingPermit()
                connection = try await connect(plan)
                reused = false
            } catch {
                exchange.abandonKeepingPermit()
                throw error
            }
        }
    }

    private func connect(_ plan: RequestPlan) async throws -> ClientConnection {
        let stream = try await TCPStream.connect(host: plan.url.host, port: plan.url.port,
                                                 timeout: plan.connectTimeout, on: runtime)
        guard plan.url.scheme == "https" else { return made(.plain(stream)) }
        do {
            return made(.tls(try await TLSStream.connect(over: stream, serverName: plan.url.host, context: try tls(),
                                                         handshakeTimeout: plan.connectTimeout)))
        } catch {
            stream.close()
            throw error
        }
    }

    // MARK: requests (fibers)

    /// Fiber/thread form of ``get(_:headerFields:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func get(_ url: String, headerFields: HTTPFields = [:]) throws -> HTTPClientResponse {
        try execute(.get, url, headerFields: headerFields)
    }

    /// Fiber/thread form of ``execute(_:_:headerFields:body:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func execute(_ method: HTTPRequest.Method, _ url: String, headerFields: HTTPFields = [:],
                        body: HTTPBody = .empty) throws -> HTTPClientResponse {
        let u = try HTTPURL(url)
        var request = HTTPRequest(method: method, scheme: u.scheme, authority: u.authority, path: u.requestTarget)
        request.headerFields = headerFields
        return try execute(request, body: body)
    }

    /// Fiber/thread form of ``execute(_:body:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers; in async code call the async form with `await`")
    public func execute(_ request: HTTPRequest, body: HTTPBody = .empty) throws -> HTTPClientResponse {
        var plan = try RequestPlan(request, body: body, configuration: configuration)
        while true {
            let (head, exchange) = try attemptBlocking(plan)
            if let next = try plan.redirect(after: head) {
                try? exchange.discardBlocking()
                plan = next
                continue
            }
            return HTTPClientResponse(head: head, url: plan.url, body: .of(exchange.bodySource))
        }
    }

    @available(*, noasync)
    private func attemptBlocking(_ plan: RequestPlan) throws -> (HTTPResponse, ClientExchange) {
        let key = plan.poolKey
        let permits = try permitsFor(key)
        try permits.acquire()
        var release: Semaphore? = permits
        defer { release?.release() }
        var connection: ClientConnection
        var reused = true
        if let idle = takeIdle(key) { connection = idle } else { connection = try connectBlocking(plan); reused = false }
        while true {
            let exchange = ClientExchange(client: self, key: key, permits: permits, connection: connection, plan: plan)
            do {
                let head = try exchange.runBlocking()
                release = nil
                return (head, exchange)
            } catch let error where reused && exchange.isStale(error) && plan.isRetryable {
                exchange.abandonKeepingPermit()
                connection = try connectBlocking(plan)
                reused = false
            } catch {
                exchange.abandonKeepingPermit()
                throw error
            }
        }
    }

    @available(*, noasync)
    private func connectBlocking(_ plan: RequestPlan) throws -> ClientConnection {
        let stream = try TCPStream.connect(host: plan.url.host, port: plan.url.port, timeout: plan.connectTimeout, on: runtime)
        guard plan.url.scheme == "https" else { return made(.plain(stream)) }
        do {
            return made(.tls(try TLSStream.connect(over: stream, serverName: plan.url.host, context: try tls(),
                                                   handshakeTimeout: plan.connectTimeout)))
        } catch {
            stream.close()
            throw error
        }
    }

    // MARK: the pool

    private func permitsFor(_ key: PoolKey) throws(HTTPClientError) -> Semaphore {
        let limit = configuration.maxConnectionsPerHost
        return try pool.withLock { p throws(HTTPClientError) -> Semaphore in
            if p.closed { throw .shutDown }
            if let h = p.hosts[key] { return h.permits }
            let h = HostPool(permits: Semaphore(permits: limit))
            p.hosts[key] = h
            return h.permits
        }
    }

    /// The most recently used idle connection that is still fresh.
    private func takeIdle(_ key: PoolKey) -> ClientConnection? {
        let now = ContinuousClock.now
        var expired: [ClientConnection] = []
        let found = pool.withLock { p -> ClientConnection? in
            while let c = p.hosts[key]?.idle.popLast() {
                if now - c.idleSince < configuration.idleTimeout { return c }
                expired.append(c)
            }
            return nil
        }
        for c in expired { c.stream.close() }
        return found
    }

    private func made(_ stream: Transport) -> ClientConnection {
        // (TCP_NODELAY is already on: every TCPStream sets it.)
        pool.withLock { $0.created += 1 }
        return ClientConnection(stream: stream, limits: configuration.limits)
    }

    /// A connection whose response was read to the end, back to its pool.
    func recycle(_ connection: ClientConnection, key: PoolKey) {
        connection.idleSince = .now
        let kept = pool.withLock { p -> Bool in
            if p.closed { return false }
            p.hosts[key]?.idle.append(connection)
            return true
        }
        if !kept { connection.stream.close() }
    }
}

/// A request being sent, with what redirects may change.
struct RequestPlan: Sendable {
    var request: HTTPRequest
    var url: HTTPURL
    var body: HTTPBody
    var redirectsLeft: Int
    let maxRedirects: Int
    let connectTimeout: Duration?
    let readTimeout: Duration?
    let deadline: ContinuousClock.Instant?
    let requestTimeout: Duration?

    init(_ request: HTTPRequest, body: HTTPBody, configuration: HTTPClientConfiguration) throws {
        guard let scheme = request.scheme, let authority = request.authority else { throw HTTPClientError.missingURL }
        url = try HTTPURL("\(scheme)://\(authority)\(request.path ?? "/")")
        self.request = request
        self.body = body
        redirectsLeft = configuration.maxRedirects
        maxRedirects = configuration.maxRedirects
        connectTimeout = configuration.connectTimeout
        readTimeout = configuration.readTimeout
        requestTimeout = configuration.requestTimeout
        deadline = configuration.requestTimeout.map { .now + $0 }
    }

    var poolKey: HTTPClient.PoolKey {
        HTTPClient.PoolKey(scheme: url.scheme, host: url.host, port: url.port)
    }

    /// Safe to send again on a new connection: idempotent, with a body we still have.
    var isRetryable: Bool {
        let idempotent: Set<HTTPRequest.Method> = [.get, .head, .put, .delete, .options, .trace]
        return idempotent.contains(request.method) && body.replayableBytes != nil
    }

    /// The time allowed for the next read: the read timeout, cut by the deadline.
    func readLimit() throws -> Duration? {
        guard let deadline else { return readTimeout }
        let left = deadline - .now
        if left <= .zero { throw HTTPClientError.requestTimedOut(requestTimeout ?? .zero) }
        return readTimeout.map { min($0, left) } ?? left
    }

    /// The next request if `head` is a redirect to follow; nil to return `head` as is.
    func redirect(after head: HTTPResponse) throws -> RequestPlan? {
        let code = head.status.code
        guard [301, 302, 303, 307, 308].contains(code), let location = head.headerFields[.location] else { return nil }
        if maxRedirects == 0 { return nil }
        if redirectsLeft == 0 { throw HTTPClientError.tooManyRedirects(maxRedirects) }
        var next = self
        next.redirectsLeft -= 1
        next.url = try url.resolving(location)
        // 303, and 301/302 after a POST: the next request is a GET without a body (what
        // browsers and AsyncHTTPClient do); 307 and 308 repeat the method and the body.
        if code == 303 || ((code == 301 || code == 302) && request.method == .post) {
            if request.method != .head { next.request.method = .get }
            next.body = .empty
            next.request.headerFields[.contentType] = nil
        } else if body.replayableBytes == nil {
            throw HTTPClientError.bodyNotReplayable
        }
        if next.url.host != url.host || next.url.port != url.port || next.url.scheme != url.scheme {
            next.request.headerFields[.authorization] = nil
            next.request.headerFields[.cookie] = nil
        }
        next.request.scheme = next.url.scheme
        next.request.authority = next.url.authority
        next.request.path = next.url.requestTarget
        return next
    }
}

// ClientConnection and ClientExchange: one pooled connection, and one request/response
// on it, in both worlds over one shared core.
import HTTPTypes
import Spindle

/// A connection of the client's pool: used by one exchange at a time.
final class ClientConnection: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): a connection is either in the pool (under the pool's
    // lock, untouched) or owned by exactly one exchange, which runs on one task or fiber.
    let stream: Transport
    let inbox: ByteInbox
    var parser: HTTPParser
    var idleSince: ContinuousClock.Instant = .now

    init(stream: Transport, limits: HTTPParserLimits) {
        self.stream = stream
        inbox = ByteInbox(capacity: 1024, maxCapacity: limits.maxStartLineBytes + limits.maxHeaderBytes + (16 << 10))
        parser = HTTPParser(kind: .response, limits: limits)
    }
}

/// One request and its response. Holds the connection and its pool permit until the
/// response body has been read to the end (then the connection goes back to the pool)
/// or the exchange is dropped (then it is closed).
final class ClientExchange: HTTPBodySource, @unchecked Sendable {
    // SAFETY (@unchecked Sendable): used by the task or fiber that made the request and
    // then by whoever reads the response body, one at a time (HTTPIncomingBody's rule).
    let client: HTTPClient
    let key: HTTPClient.PoolKey
    let permits: Semaphore
    let connection: ClientConnection
    let plan: RequestPlan
    private var info: HTTPHeadInfo?
    private(set) var trailers: HTTPFields?
    private var receivedAny = false
    private var finished = false
    private var ownsPermit = true

    init(client: HTTPClient, key: HTTPClient.PoolKey, permits: Semaphore, connection: ClientConnection, plan: RequestPlan) {
        self.client = client
        self.key = key
        self.permits = permits
        self.connection = connection
        self.plan = plan
    }

    deinit { end(recycle: false) }

    var bodySource: HTTPBodySource? { finished ? nil : self }

    /// Done with the connection: back to the pool or closed, and the permit released.
    private func end(recycle: Bool) {
        if finished { return }
        finished = true
        if recycle { client.recycle(connection, key: key) } else { connection.stream.close() }
        if ownsPermit { permits.release() }
    }

    /// A failed attempt whose permit the caller still holds (it retries or gives up).
    func abandonKeepingPermit() {
        ownsPermit = false
        end(recycle: false)
    }

    /// The error says the pooled connection was closed by the server before it answered
    /// anything: the request can be sent again on a new connection.
    func isStale(_ error: any Error) -> Bool {
        if receivedAny { return false }
        switch error {
        case SocketError.connectionReset, SocketError.brokenPipe, HTTPParseError.unexpectedEnd: return true
        default: return false
        }
    }

    // MARK: shared core

    private func requestBytes() -> (wire: [UInt8], stream: HTTPBody.Storage?) {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        let host = plan.url.authority
        switch plan.body.storage {
        case .bytes(let b):
            let method = plan.request.method
            let framing: HTTPBodyFraming = b.isEmpty && (method == .get || method == .head || method == .delete || method == .options || method == .trace) ? .none : .length(b.count)
            HTTPWire.appendRequestHead(plan.request, host: host, framing: framing, into: &out)
            out.append(contentsOf: b)
            return (out, nil)
        case .stream, .streamBlocking:
            HTTPWire.appendRequestHead(plan.request, host: host, framing: .chunked, into: &out)
            return (out, plan.body.storage)
        }
    }

    enum Step { case head(HTTPResponse), chunk([UInt8]), end, needInput }

    private func step() throws -> Step {
        while true {
            let s = try connection.parser.next(connection.inbox.bytes)
            switch s.event {
            case .response(let head, let i)?:
                connection.inbox.consume(s.consumed)
                if (100..<200).contains(head.status.code) && head.status.code != 101 {
                    continue   // 100 Continue and other interim responses: the real one follows
                }
                info = i
                return .head(head)
            case .body(let r)?:
                let c = connection.inbox.copy(r)
                connection.inbox.consume(s.consumed)
                return .chunk(c)
            case .end(let t)?:
                connection.inbox.consume(s.consumed)
                if info == nil { continue }   // the end of an interim response
                trailers = t
                end(recycle: info?.keepAlive == true)
                return .end
            case .request?:
                fatalError("Spindle fatal: a response parser returned a request (a bug in SpindleHTTP)")
            case nil:
                connection.inbox.consume(s.consumed)
                if s.consumed == 0 { return .needInput }
            }
        }
    }

    /// The peer closed: the end of a close-delimited body, or an error.
    private func closedByPeer() throws -> Step {
        if try connection.parser.finish() != nil {
            end(recycle: false)
            return .end
        }
        throw HTTPParseError.unexpectedEnd
    }

    private func timeoutError(_ error: any Error) -> any Error {
        if case SocketError.timedOut = error, let d = plan.deadline, d <= .now {
            return HTTPClientError.requestTimedOut(plan.requestTimeout ?? .zero)
        }
        return error
    }

    private func prepareParser() {
        connection.parser.nextResponseIsToHEAD = plan.request.method == .head
    }

    // MARK: tasks

    /// Sends the request and reads the response head.
    func run() async throws -> HTTPResponse {
        prepareParser()
        let (wire, streamBody) = requestBytes()
        do {
            try await connection.stream.write(wire[...], timeout: try plan.readLimit())
            if let streamBody {
                let writer = HTTPBodyWriter(socket: connection.stream, chunked: true, timeout: try plan.readLimit())
                switch streamBody {
                case .stream(let write): try await write(writer)
                case .streamBlocking(let write): try write(writer)
                case .bytes: break
                }
                try await writer.finish()
            }
            while true {
                switch try step() {
                case .head(let h):
                    if info?.framing == HTTPBodyFraming.none { _ = try step() }   // its end: recycles
                    return h
                case .chunk, .end: fatalError("Spindle fatal: body before the response head (a bug in SpindleHTTP)")
                case .needInput:
                    if try await fill() == 0 { _ = try closedByPeer() }
                }
            }
        } catch {
            throw timeoutError(error)
        }
    }

    private func fill() async throws -> Int {
        let n = try await connection.inbox.fill(from: connection.stream, timeout: try plan.readLimit())
        if n > 0 { receivedAny = true }
        return n
    }

    func nextChunk() async throws -> [UInt8]? {
        if finished { return nil }
        do {
            while true {
                switch try step() {
                case .chunk(let c): return c
                case .end: return nil
                case .head: fatalError("Spindle fatal: a second response head inside a body (a bug in SpindleHTTP)")
                case .needInput:
                    if try await fill() == 0 {
                        if case .end = try closedByPeer() { return nil }
                    }
                }
            }
        } catch {
            end(recycle: false)
            throw timeoutError(error)
        }
    }

    /// Reads and drops a redirect's body (a short one keeps the connection).
    func discard() async throws {
        var dropped = 0
        while let c = try await nextChunk() {
            dropped += c.count
            if dropped > 64 << 10 { end(recycle: false); return }
        }
    }

    // MARK: fibers

    @available(*, noasync)
    func runBlocking() throws -> HTTPResponse {
        prepareParser()
        let (wire, streamBody) = requestBytes()
        do {
            try connection.stream.write(wire[...], timeout: try plan.readLimit())
            if let streamBody {
                let writer = HTTPBodyWriter(socket: connection.stream, chunked: true, timeout: try plan.readLimit())
                switch streamBody {
                case .streamBlocking(let write): try write(writer)
                case .stream: throw HTTPServerMisuse.asyncStreamOnFiber
                case .bytes: break
                }
                try writer.finishBlocking()
            }
            while true {
                switch try step() {
                case .head(let h):
                    if info?.framing == HTTPBodyFraming.none { _ = try step() }   // its end: recycles
                    return h
                case .chunk, .end: fatalError("Spindle fatal: body before the response head (a bug in SpindleHTTP)")
                case .needInput:
                    if try fillBlocking() == 0 { _ = try closedByPeer() }
                }
            }
        } catch {
            throw timeoutError(error)
        }
    }

    @available(*, noasync)
    private func fillBlocking() throws -> Int {
        let n = try connection.inbox.fillBlocking(from: connection.stream, timeout: try plan.readLimit())
        if n > 0 { receivedAny = true }
        return n
    }

    @available(*, noasync)
    func nextChunkBlocking() throws -> [UInt8]? {
        if finished { return nil }
        do {
            while true {
                switch try step() {
                case .chunk(let c): return c
                case .end: return nil
                case .head: fatalError("Spindle fatal: a second response head inside a body (a bug in SpindleHTTP)")
                case .needInput:
                    if try fillBlocking() == 0 {
                        if case .end = try closedByPeer() { return nil }
                    }
                }
            }
        } catch {
            end(recycle: false)
            throw timeoutError(error)
        }
    }

    @available(*, noasync)
    func discardBlocking() throws {
        var dropped = 0
        while let c = try nextChunkBlocking() {
            dropped += c.count
            if dropped > 64 << 10 { end(recycle: false); return }
        }
    }
}

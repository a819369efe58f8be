// ServerConnection: one HTTP/1.1 connection of an HTTPServer, its request loop in both
// worlds (`serve`: a task; `serveBlocking`: a fiber) over one shared core of parsing,
// framing and bookkeeping.
//
// The loop: parse the next request head from the read buffer (reading more when the
// parser needs it), call the handler, read and discard what it left of the body, queue
// the response. Queued responses are written when the loop is about to wait for input
// (or past the flush threshold), so the answers to one batch of pipelined requests leave
// in one write, in order.
import HTTPTypes
import Spindle

final class ServerConnection: HTTPBodySource {
    let server: HTTPServer
    let id: Int
    let state: HTTPServer.ConnectionState
    let stream: Transport
    let config: HTTPServerConfiguration
    let inbox: ByteInbox
    var parser: HTTPParser
    var outbox: [UInt8] = []
    let date = DateCache()
    let peer: SocketAddress?

    // The request in progress.
    enum BodyState { case done, reading, failed(HTTPResponse.Status?, any Error) }
    var bodyState: BodyState = .done
    var continuePending = false
    var trailers: HTTPFields?

    init(server: HTTPServer, id: Int, state: HTTPServer.ConnectionState, stream: Transport) {
        self.server = server
        self.id = id
        self.state = state
        self.stream = stream
        config = server.configuration
        let limits = config.limits
        inbox = ByteInbox(capacity: 2048, maxCapacity: limits.maxStartLineBytes + limits.maxHeaderBytes + 4096)
        parser = HTTPParser(kind: .request, limits: limits)
        peer = stream.peerAddress
    }

    // MARK: the shared core

    /// What the parser makes of the buffered bytes: a head, or "read more".
    enum HeadStep { case request(HTTPRequest, HTTPHeadInfo), needInput, refused(HTTPParseError) }

    func nextHead() -> HeadStep {
        while true {
            do {
                let step = try parser.next(inbox.bytes)
                inbox.consume(step.consumed)
                switch step.event {
                case .request(let r, let i)?: return .request(r, i)
                case .end?: continue   // the end of the previous, bodyless request
                default: if step.consumed == 0 { return .needInput }
                }
            } catch {
                return .refused(error)
            }
        }
    }

    enum BodyStep { case chunk([UInt8]), end, needInput }

    func nextBodyStep() throws -> BodyStep {
        while true {
            let step: HTTPParser.Step
            do {
                step = try parser.next(inbox.bytes)
            } catch {
                bodyState = .failed(error.status, error)
                throw error
            }
            switch step.event {
            case .body(let r)?:
                let chunk = inbox.copy(r)
                inbox.consume(step.consumed)
                return .chunk(chunk)
            case .end(let t)?:
                inbox.consume(step.consumed)
                trailers = t
                bodyState = .done
                return .end
            case .request?, .response?:
                fatalError("Spindle fatal: the HTTP parser returned a head inside a body (a bug in SpindleHTTP)")
            case nil:
                inbox.consume(step.consumed)
                if step.consumed == 0 { return .needInput }
            }
        }
    }

    /// A body read could not go on: remember why (the server's answer), and say it.
    func bodyFailed(_ error: any Error) -> any Error {
        switch error {
        case SocketError.timedOut: bodyState = .failed(.requestTimeout, error)
        case is HTTPParseError: break   // already recorded
        default: bodyState = .failed(nil, error)
        }
        return error
    }

    func bodyEnded() -> any Error {
        bodyState = .failed(nil, HTTPParseError.unexpectedEnd)
        return HTTPParseError.unexpectedEnd
    }

    /// The status and text of a refusal.
    func queueRefusal(_ status: HTTPResponse.Status, _ why: String) {
        var fields = HTTPFields()
        fields[.contentType] = "text/plain; charset=utf-8"
        let body = Array((why + "\n").utf8)
        HTTPWire.appendResponseHead(HTTPResponse(status: status, headerFields: fields), minorVersion: 1,
                                    framing: .length(body.count), close: true, date: date, into: &outbox)
        outbox.append(contentsOf: body)
    }

    /// The handler's outcome, resolved into the response to send.
    func resolve(_ outcome: Result<HTTPServerResponse, any Error>) -> (HTTPServerResponse, forceClose: Bool) {
        switch outcome {
        case .success(let r):
            if case .failed = bodyState { return (r, true) }
            return (r, false)
        case .failure:
            if case .failed(let status?, let why) = bodyState {
                return (HTTPServerResponse(status: status, body: .string("\(why)\n")), true)
            }
            if case .failed(nil, _) = bodyState { return (HTTPServerResponse(status: .badRequest), true) }
            return (HTTPServerResponse(status: .internalServerError, body: "internal server error\n"), true)
        }
    }

    /// Queues the head of `response` (and its body if it is bytes). Returns the framing
    /// a streamed body must use, and whether the connection stays open.
    func queueHead(_ response: HTTPServerResponse, to request: HTTPRequest, _ info: HTTPHeadInfo,
                   keepAlive: Bool) -> (stream: HTTPBodyFraming?, keepAlive: Bool) {
        let code = response.head.status.code
        let bodyless = (100..<200).contains(code) || code == 204 || code == 304
        let isHEAD = request.method == .head
        var keep = keepAlive
        switch response.body.storage {
        case .bytes(let bytes):
            let framing: HTTPBodyFraming = bodyless ? .none : .length(bytes.count)
            var head = response.head
            if isHEAD && bytes.isEmpty, let advertised = head.headerFields[.contentLength] {
                // A HEAD answer may state the length its GET would have.
                head.headerFields[.contentLength] = nil
                HTTPWire.appendResponseHead(head, minorVersion: info.minorVersion, framing: .length(Int(advertised) ?? 0),
                                            close: !keep, date: date, into: &outbox)
            } else {
                HTTPWire.appendResponseHead(head, minorVersion: info.minorVersion, framing: framing,
                                            close: !keep, date: date, into: &outbox)
            }
            if !isHEAD && !bodyless { outbox.append(contentsOf: bytes) }
            return (nil, keep)
        case .stream, .streamBlocking:
            var framing: HTTPBodyFraming = .chunked
            if bodyless || isHEAD { framing = .none } else if info.minorVersion == 0 { framing = .untilClose; keep = false }
            HTTPWire.appendResponseHead(response.head, minorVersion: info.minorVersion, framing: framing,
                                        close: !keep, date: date, into: &outbox)
            return (framing == .none ? nil : framing, keep)
        }
    }

    func makeRequest(_ head: HTTPRequest, _ info: HTTPHeadInfo) -> HTTPServerRequest {
        bodyState = info.framing == .none ? .done : .reading
        continuePending = info.expectsContinue && info.framing != .none
        trailers = nil
        return HTTPServerRequest(head: head, minorVersion: info.minorVersion,
                                 body: .of(info.framing == .none ? nil : self), remoteAddress: peer)
    }

    var bodyUnread: Bool { if case .reading = bodyState { return true } else { return false } }

    /// About to wait for a request: idle, unless the server is draining (then close).
    func enterIdle() -> Bool {
        state.phase.store(HTTPServer.ConnectionState.idle, ordering: .sequentiallyConsistent)
        return !server.isDraining
    }

    /// Bytes arrived: busy again, unless shutdown has closed this connection meanwhile.
    func leaveIdle() -> Bool {
        state.phase.compareExchange(expected: HTTPServer.ConnectionState.idle, desired: HTTPServer.ConnectionState.busy,
                                    ordering: .sequentiallyConsistent).exchanged
    }

    /// The time left until `deadline`, at least a nanosecond (zero would mean "poll").
    static func left(_ deadline: ContinuousClock.Instant?) -> Duration? {
        guard let deadline else { return nil }
        return max(.nanoseconds(1), deadline - .now)
    }

    // MARK: tasks

    func serve(_ handler: HTTPServer.Handler) async {
        defer {
            stream.close()
            server.unregister(id)
        }
        do {
            while let (head, info) = try await readHead() {
                if info.unsupportedExpectation {
                    queueRefusal(.expectationFailed, "only Expect: 100-continue is supported")
                    try await flush()
                    return
                }
                let request = makeRequest(head, info)
                let outcome: Result<HTTPServerResponse, any Error>
                do { outcome = .success(try await handler(request)) } catch { outcome = .failure(error) }
                var (response, forceClose) = resolve(outcome)
                var keepAlive = info.keepAlive && !forceClose && !server.isDraining
                if keepAlive && bodyUnread {
                    if continuePending { keepAlive = false } else { keepAlive = (try? await drain()) == true }
                }
                if continuePending { keepAlive = false }
                let (streaming, keep) = queueHead(response, to: head, info, keepAlive: keepAlive)
                if let framing = streaming {
                    try await flush()
                    let writer = HTTPBodyWriter(socket: stream, chunked: framing == .chunked, timeout: config.writeTimeout)
                    switch response.body.storage {
                    case .stream(let write): try await write(writer)
                    case .streamBlocking(let write): try write(writer)
                    case .bytes: break
                    }
                    try await writer.finish()
                    response.body = .empty
                } else if outbox.count >= config.flushThreshold {
                    try await flush()
                }
                if !keep {
                    try await flushLast()
                    return
                }
            }
        } catch {
            // The peer went away, a write timed out, or a streamed body failed mid-way:
            // nothing more can be said on this connection.
        }
        try? await flush()
    }

    /// The next request head; nil when the connection should close (the peer closed,
    /// idle timeout, shutdown, or a refusal that has been sent).
    func readHead() async throws -> (HTTPRequest, HTTPHeadInfo)? {
        var deadline: ContinuousClock.Instant?
        while true {
            switch nextHead() {
            case .request(let r, let i): return (r, i)
            case .refused(let e):
                queueRefusal(e.status, e.description)
                try await refuseAndLinger()
                return nil
            case .needInput: break
            }
            try await flush()
            let idle = inbox.isEmpty && parser.isIdle
            if idle && !enterIdle() { return nil }
            if !idle && deadline == nil { deadline = config.headerTimeout.map { .now + $0 } }
            let n: Int
            do {
                n = try await inbox.fill(from: stream, timeout: idle ? config.idleTimeout : Self.left(deadline))
            } catch SocketError.timedOut {
                if idle { return nil }
                queueRefusal(.requestTimeout, "the request head did not arrive in time")
                try await refuseAndLinger()
                return nil
            } catch is HTTPInboxFull {
                queueRefusal(.requestHeaderFieldsTooLarge, "request head too large")
                try await refuseAndLinger()
                return nil
            }
            if idle && !leaveIdle() { return nil }
            if n == 0 { return nil }
            if deadline == nil { deadline = config.headerTimeout.map { .now + $0 } }
        }
    }

    func nextChunk() async throws -> [UInt8]? {
        switch bodyState {
        case .done: return nil
        case .failed(_, let e): throw e
        case .reading: break
        }
        if continuePending {
            continuePending = false
            outbox.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
        }
        while true {
            switch try nextBodyStep() {
            case .chunk(let c): return c
            case .end: return nil
            case .needInput: break
            }
            let n: Int
            do {
                try await flush()
                n = try await inbox.fill(from: stream, timeout: config.bodyReadTimeout)
            } catch {
                throw bodyFailed(error)
            }
            if n == 0 { throw bodyEnded() }
        }
    }

    /// Reads and drops the rest of the body, up to `maxDrainBytes`. True if it ended.
    func drain() async throws -> Bool {
        var dropped = 0
        while let c = try await nextChunk() {
            dropped += c.count
            if dropped > config.maxDrainBytes { return false }
        }
        return true
    }

    /// The connection's last flush: TLS's close_notify goes with it.
    func flushLast() async throws {
        if outbox.isEmpty { return await stream.endCleanly(timeout: config.writeTimeout) }
        defer { outbox.removeAll() }
        try await stream.writeLast(outbox[...], timeout: config.writeTimeout)
    }

    func flush() async throws {
        if outbox.isEmpty { return }
        defer { outbox.removeAll(keepingCapacity: outbox.capacity <= 1 << 20) }
        try await stream.write(outbox[...], timeout: config.writeTimeout)
    }

    /// Sends the queued refusal, then half-closes and reads for a moment, so the client
    /// sees the response rather than a reset for the bytes it was still sending.
    func refuseAndLinger() async throws {
        try await flush()
        let until = ContinuousClock.now + .seconds(1)
        try? await stream.shutdownWrite(timeout: Self.left(until))
        var dropped = 0
        while dropped < 256 << 10, let r = inbox.room() {
            guard let n = try? await stream.read(into: r, timeout: Self.left(until)), n > 0 else { break }
            dropped += n
        }
    }

    // MARK: fibers

    @available(*, noasync)
    func serveBlocking(_ handler: HTTPServer.BlockingHandler) {
        defer {
            stream.close()
            server.unregister(id)
        }
        do {
            while let (head, info) = try readHeadBlocking() {
                if info.unsupportedExpectation {
                    queueRefusal(.expectationFailed, "only Expect: 100-continue is supported")
                    try flushBlocking()
                    return
                }
                let request = makeRequest(head, info)
                let outcome: Result<HTTPServerResponse, any Error>
                do { outcome = .success(try handler(request)) } catch { outcome = .failure(error) }
                let (response, forceClose) = resolve(outcome)
                var keepAlive = info.keepAlive && !forceClose && !server.isDraining
                if keepAlive && bodyUnread {
                    if continuePending { keepAlive = false } else { keepAlive = (try? drainBlocking()) == true }
                }
                if continuePending { keepAlive = false }
                let (streaming, keep) = queueHead(response, to: head, info, keepAlive: keepAlive)
                if let framing = streaming {
                    try flushBlocking()
                    let writer = HTTPBodyWriter(socket: stream, chunked: framing == .chunked, timeout: config.writeTimeout)
                    switch response.body.storage {
                    case .streamBlocking(let write): try write(writer)
                    case .stream: throw HTTPServerMisuse.asyncStreamOnFiber
                    case .bytes: break
                    }
                    try writer.finishBlocking()
                } else if outbox.count >= config.flushThreshold {
                    try flushBlocking()
                }
                if !keep {
                    try flushLastBlocking()
                    return
                }
            }
        } catch {
            // As in `serve`: the connection is done.
        }
        try? flushBlocking()
    }

    @available(*, noasync)
    func readHeadBlocking() throws -> (HTTPRequest, HTTPHeadInfo)? {
        var deadline: ContinuousClock.Instant?
        while true {
            switch nextHead() {
            case .request(let r, let i): return (r, i)
            case .refused(let e):
                queueRefusal(e.status, e.description)
                try refuseAndLingerBlocking()
                return nil
            case .needInput: break
            }
            try flushBlocking()
            let idle = inbox.isEmpty && parser.isIdle
            if idle && !enterIdle() { return nil }
            if !idle && deadline == nil { deadline = config.headerTimeout.map { .now + $0 } }
            let n: Int
            do {
                n = try inbox.fillBlocking(from: stream, timeout: idle ? config.idleTimeout : Self.left(deadline))
            } catch SocketError.timedOut {
                if idle { return nil }
                queueRefusal(.requestTimeout, "the request head did not arrive in time")
                try refuseAndLingerBlocking()
                return nil
            } catch is HTTPInboxFull {
                queueRefusal(.requestHeaderFieldsTooLarge, "request head too large")
                try refuseAndLingerBlocking()
                return nil
            }
            if idle && !leaveIdle() { return nil }
            if n == 0 { return nil }
            if deadline == nil { deadline = config.headerTimeout.map { .now + $0 } }
        }
    }

    @available(*, noasync)
    func nextChunkBlocking() throws -> [UInt8]? {
        switch bodyState {
        case .done: return nil
        case .failed(_, let e): throw e
        case .reading: break
        }
        if continuePending {
            continuePending = false
            outbox.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
        }
        while true {
            switch try nextBodyStep() {
            case .chunk(let c): return c
            case .end: return nil
            case .needInput: break
            }
            let n: Int
            do {
                try flushBlocking()
                n = try inbox.fillBlocking(from: stream, timeout: config.bodyReadTimeout)
            } catch {
                throw bodyFailed(error)
            }
            if n == 0 { throw bodyEnded() }
        }
    }

    @available(*, noasync)
    func drainBlocking() throws -> Bool {
        var dropped = 0
        while let c = try nextChunkBlocking() {
            dropped += c.count
            if dropped > config.maxDrainBytes { return false }
        }
        return true
    }

    @available(*, noasync)
    func flushLastBlocking() throws {
        if outbox.isEmpty { return stream.endCleanly(timeout: config.writeTimeout) }
        defer { outbox.removeAll() }
        try stream.writeLast(outbox[...], timeout: config.writeTimeout)
    }

    @available(*, noasync)
    func flushBlocking() throws {
        if outbox.isEmpty { return }
        defer { outbox.removeAll(keepingCapacity: outbox.capacity <= 1 << 20) }
        try stream.write(outbox[...], timeout: config.writeTimeout)
    }

    @available(*, noasync)
    func refuseAndLingerBlocking() throws {
        try flushBlocking()
        let until = ContinuousClock.now + .seconds(1)
        try? stream.shutdownWrite(timeout: Self.left(until))
        var dropped = 0
        while dropped < 256 << 10, let r = inbox.room() {
            guard let n = try? stream.read(into: r, timeout: Self.left(until)), n > 0 else { break }
            dropped += n
        }
    }
}

/// A response body of the wrong world: an `async` stream from a blocking handler.
enum HTTPServerMisuse: Error, CustomStringConvertible {
    case asyncStreamOnFiber
    var description: String {
        "a blocking handler returned HTTPBody.stream (async); use HTTPBody.streamBlocking in blocking handlers"
    }
}

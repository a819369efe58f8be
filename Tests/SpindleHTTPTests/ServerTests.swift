import HTTPTypes
import Logging
import ServiceLifecycle
import Spindle
import SpindleHTTP
import Synchronization
import SpindleTestTools
import Testing

@Suite(.serialized) struct ServerTests {
    @Test(arguments: Mode.allCases)
    func keepAliveServesManyRequestsOnOneConnection(mode: Mode) async throws {
        let s = try TestServer(mode)
        let conn = try await RawConnection.open(port: s.port, on: s.runtime)
        for i in 0..<20 {
            try await conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(String(i).utf8.count)\r\n\r\n\(i)")
            let r = try await conn.readResponses(1)
            #expect(r.first?.text == "\(i)")
            #expect(r.first?.info.keepAlive == true)
            #expect(r.first?.response.headerFields[.date] != nil)
        }
        #expect(s.server.acceptedConnections == 1)
        conn.stream.close()
        await s.stop()
    }

    @Test(arguments: Mode.allCases)
    func pipelinedRequestsAreAnsweredInOrder(mode: Mode) async throws {
        let s = try TestServer(mode)
        let conn = try await RawConnection.open(port: s.port, on: s.runtime)
        var batch = ""
        for i in 0..<8 {
            batch += "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(String(i).utf8.count)\r\n\r\n\(i)"
            batch += "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
        }
        batch += "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        try await conn.send(batch)
        let r = try await conn.readResponses(17)
        let expected = (0..<8).flatMap { ["\($0)", "Hello, World!"] } + ["piece 0\npiece 1\npiece 2\n"]
        #expect(r.map(\.text) == expected)
        #expect(try await conn.readToEnd().isEmpty, "the connection closes after Connection: close")
        await s.stop()
    }

    @Test(arguments: Mode.allCases)
    func chunkedBothWays(mode: Mode) async throws {
        let s = try TestServer(mode)
        let conn = try await RawConnection.open(port: s.port, on: s.runtime)
        try await conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + "4;ext=x\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Sum: 7\r\n\r\n")
        let r = try await conn.readResponses(1)
        #expect(r.first?.text == "abcdefg")
        #expect(r.first?.response.headerFields[HTTPField.Name("x-trailers")!] == "1")
        try await conn.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        let c = try await conn.readResponses(1)
        #expect(c.first?.info.framing == .chunked)
        #expect(c.first?.text == "piece 0\npiece 1\npiece 2\n")
        // HTTP/1.0 cannot read chunked: the stream is delimited by the close instead.
        try await conn.send("GET /stream HTTP/1.0\r\n\r\n")
        let text = String(decoding: try await conn.readToEnd(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.0 200 OK\r\n") && text.hasSuffix("\r\n\r\npiece 0\npiece 1\npiece 2\n") && !text.contains("chunked"))
        await s.stop()
    }

    @Test(arguments: Mode.allCases)
    func expectContinueIsAnsweredWhenTheHandlerReadsTheBody(mode: Mode) async throws {
        let s = try TestServer(mode)
        let conn = try await RawConnection.open(port: s.port, on: s.runtime)
        try await conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        // The interim response comes before we send the body.
        var seen: [UInt8] = []
        while !String(decoding: seen, as: UTF8.self).contains("\r\n\r\n") { seen += try await conn.stream.read(upTo: 100) }
        #expect(String(decoding: seen, as: UTF8.self) == "HTTP/1.1 100 Continue\r\n\r\n")
        try await conn.send("hello")
        #expect(try await conn.readResponses(1).first?.text == "hello")
        // A handler that never reads the body: no 100, and the connection closes after
        // the answer (the client may or may not send the body).
        try await conn.send("POST /noread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        let text = String(decoding: try await conn.readToEnd(), as: UTF8.self)
        #expect(!text.contains("100 Continue"))
        #expect(text.hasPrefix("HTTP/1.1 200 OK") && text.contains("Connection: close") && text.hasSuffix("not read"))
        await s.stop()
    }

    static let refusals: [(String, Int)] = [
        ("GET /hello HTTP/1.1\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        ("GET /hello HTTP/1.1\r\nHost: t\r\nX: " + String(repeating: "a", count: 40000) + "\r\n\r\n", 431),
        ("GET /hello HTTP/1.1\r\nHost: t\r\n" + (0..<101).map { "X\($0): v\r\n" }.joined() + "\r\n", 431),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20000000\r\n\r\n", 413),
        ("GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx", 417),
        ("GET /hello HTTP/1.1\nHost: t\r\n\r\n", 400),
        ("GARBAGE\r\n\r\n", 400),
    ]

    /// Every malformed request gets its status and a clean close, while another
    /// connection is served throughout.
    @Test(arguments: Mode.allCases)
    func malformedRequestsGetTheirStatusAndAClose(mode: Mode) async throws {
        let s = try TestServer(mode)
        let bystander = try await RawConnection.open(port: s.port, on: s.runtime)
        for (request, status) in Self.refusals {
            let conn = try await RawConnection.open(port: s.port, on: s.runtime)
            try await conn.send(request)
            let text = String(decoding: try await conn.readToEnd(), as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 \(status) "), "\(request.prefix(60).debugDescription) → \(text.prefix(80).debugDescription)")
            #expect(text.contains("Connection: close"))
            try await bystander.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await bystander.readResponses(1).first?.text == "Hello, World!")
        }
        // A body longer than the limit in chunks: 413 once the limit is passed.
        var limits = HTTPServerConfiguration()
        limits.limits.maxBodyBytes = 10
        let small = try TestServer(mode, configuration: limits)
        let conn = try await RawConnection.open(port: small.port, on: small.runtime)
        try await conn.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
        let text = String(decoding: try await conn.readToEnd(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 413 "), "\(text.prefix(80).debugDescription)")
        bystander.stream.close()
        await small.stop()
        await s.stop()
    }

    @Test(arguments: Mode.allCases)
    func slowClientsAndIdleConnectionsAreTimedOut(mode: Mode) async throws {
        var config = HTTPServerConfiguration()
        config.headerTimeout = .milliseconds(200)
        config.idleTimeout = .milliseconds(200)
        let s = try TestServer(mode, configuration: config)
        // A head that never completes: 408, then the close.
        let slow = try await RawConnection.open(port: s.port, on: s.runtime)
        try await slow.send("GET /hello HTTP/1.1\r\nHost: t\r\n")
        let text = String(decoding: try await slow.readToEnd(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 408 "))
        // An idle keep-alive connection: closed without a word.
        let idle = try await RawConnection.open(port: s.port, on: s.runtime)
        try await idle.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await idle.readResponses(1).first?.text == "Hello, World!")
        #expect(try await idle.readToEnd().isEmpty)
        await s.stop()
    }

    /// Shutdown: stops accepting, closes idle connections at once, lets a request in
    /// flight finish (its response says Connection: close), and run() returns.
    @Test(arguments: Mode.allCases)
    func shutdownFinishesRequestsInFlight(mode: Mode) async throws {
        let s = try TestServer(mode)
        let idle = try await RawConnection.open(port: s.port, on: s.runtime)
        try await idle.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await idle.readResponses(1)
        let busy = try await RawConnection.open(port: s.port, on: s.runtime)
        try await busy.send("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await waitUntil { s.gate.arrived.load(ordering: .sequentiallyConsistent) == 1 })
        s.server.shutdown()
        #expect(try await idle.readToEnd().isEmpty, "the idle connection is closed")
        let finishedEarly = s.finished.load(ordering: .sequentiallyConsistent)
        #expect(!finishedEarly, "run() waits for the request in flight")
        do {
            let late = try await RawConnection.open(port: s.port, on: s.runtime)
            try? await late.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await late.readToEnd().isEmpty, "no new connection is served")
        } catch {
            // Refused: the listener is closed. Also right.
        }
        s.gate.open()
        let text = String(decoding: try await busy.readToEnd(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK") && text.contains("Connection: close") && text.hasSuffix("released"))
        await s.stop()
        #expect(s.runError.withLock { $0 } == nil)
    }

    /// Under a ServiceGroup: a graceful shutdown of the group stops the server.
    @Test func runsAsAServiceUnderAServiceGroup() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let server = try HTTPServer(address: SocketAddress("127.0.0.1:0"), on: rt) { _ in HTTPServerResponse(body: "svc") }
        let group = ServiceGroup(configuration: .init(services: [server], logger: .init(label: "test")))
        let running = Task(executorPreference: rt) { try await group.run() }
        let client = HTTPClient(on: rt)
        let body = try await client.get("http://\(server.localAddress)/").body.collect(upTo: 100)
        #expect(body == Array("svc".utf8))
        await group.triggerGracefulShutdown()
        try await running.value
        client.shutdown()
    }

    /// 10,000 requests over 100 connections, every body checked.
    @Test(arguments: Mode.allCases)
    func tenThousandRequestsOverAHundredConnections(mode: Mode) async throws {
        let s = try TestServer(mode)
        let clientRuntime = try Runtime(flavor: .multiThread, workers: 2)
        let client = HTTPClient(configuration: HTTPClientConfiguration(maxConnectionsPerHost: 100), on: clientRuntime)
        let perConnection = 100 / testScale
        let url = s.url + "/echo"
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for c in 0..<100 {
                group.addTask(executorPreference: clientRuntime) {
                    var bad = 0
                    for i in 0..<perConnection {
                        let payload = Array("conn \(c) request \(i) ".utf8) + [UInt8](repeating: UInt8(i & 0x7F), count: (c * 37 + i) % 3000)
                        let r = try await client.execute(.post, url, body: .bytes(payload))
                        if try await r.body.collect(upTo: 1 << 20) != payload { bad += 1 }
                    }
                    return bad
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(s.server.acceptedConnections <= 100)
        #expect(client.connectionsCreated <= 100)
        client.shutdown()
        clientRuntime.shutdown()
        await s.stop()
    }
}

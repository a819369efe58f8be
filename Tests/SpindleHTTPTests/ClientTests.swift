import HTTPTypes
import Spindle
import SpindleHTTP
import Synchronization
import SpindleTestTools
import Testing

/// A server that runs a script per connection (for what a correct server never does:
/// close a kept-alive connection unannounced, stall, delimit a body by closing).
final class ScriptedServer: Sendable {
    let listener: TCPListener
    let accepted = Atomic<Int>(0)

    init(on runtime: Runtime, _ script: @escaping @Sendable (TCPStream, Int) async throws -> Void) throws {
        listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: runtime)
        let l = listener
        Task(executorPreference: runtime) { [self] in
            while let conn = try? await l.accept() {
                let n = self.accepted.add(1, ordering: .sequentiallyConsistent).newValue
                Task(executorPreference: runtime) { try? await script(conn, n); conn.close() }
            }
        }
    }

    var url: String { "http://\(listener.localAddress)" }
    func stop() { listener.close() }
}

/// Reads one request head (up to the empty line) from `conn`; nil at the end.
func readRequestHead(_ conn: TCPStream) async throws -> String? {
    var seen: [UInt8] = []
    while !String(decoding: seen, as: UTF8.self).contains("\r\n\r\n") {
        let b = try await conn.read(upTo: 4096)
        if b.isEmpty { return nil }
        seen += b
    }
    return String(decoding: seen, as: UTF8.self)
}

@Suite(.serialized) struct ClientTests {
    @Test func pooledConnectionsAreReusedAndCountedAtTheServer() async throws {
        let s = try TestServer(.async)
        let client = HTTPClient(configuration: HTTPClientConfiguration(maxConnectionsPerHost: 2), on: s.runtime)
        for _ in 0..<10 {
            let r = try await client.get(s.url + "/hello")
            #expect(try await r.body.collect(upTo: 100) == Array("Hello, World!".utf8))
        }
        #expect(client.connectionsCreated == 1)
        #expect(s.server.acceptedConnections == 1)
        // Ten at once with a limit of two: never more than two connections.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    let r = try await client.get(s.url + "/big")
                    #expect(try await r.body.collect(upTo: 1 << 20).count == 100_000)
                }
            }
            try await group.waitForAll()
        }
        #expect(s.server.acceptedConnections <= 2)
        #expect(client.connectionsCreated <= 2)
        // A response dropped half-read: its connection is closed, not pooled.
        let before = client.connectionsCreated
        do { _ = try await client.get(s.url + "/big") }
        for _ in 0..<3 { _ = try await client.get(s.url + "/hello").body.collect(upTo: 100) }
        #expect(client.connectionsCreated <= before + 1)
        client.shutdown()
        await s.stop()
    }

    @Test func aStalePooledConnectionIsRetriedOnceForIdempotentRequests() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        // Answers one request per connection saying keep-alive, then closes silently.
        let server = try ScriptedServer(on: rt) { conn, n in
            guard try await readRequestHead(conn) != nil else { return }
            try await conn.write("HTTP/1.1 200 OK\r\nContent-Length: \(String(n).count)\r\n\r\n\(n)")
        }
        let client = HTTPClient(on: rt)
        #expect(try await client.get(server.url + "/").body.collect(upTo: 10) == Array("1".utf8))
        // Let the server's close arrive, so the pooled connection is stale for sure.
        #expect(await waitUntil { server.accepted.load(ordering: .sequentiallyConsistent) == 1 })
        let second = try await client.get(server.url + "/")
        #expect(try await second.body.collect(upTo: 10) == Array("2".utf8))
        #expect(client.connectionsCreated == 2)
        // POST is not idempotent: not retried, the error surfaces.
        await #expect(throws: (any Error).self) {
            _ = try await client.execute(.post, server.url + "/", body: "x")
        }
        server.stop()
        client.shutdown()
    }

    @Test(arguments: Mode.allCases)
    func redirectsAreFollowedUpToTheLimit(mode: Mode) async throws {
        let s = try TestServer(.async)
        let client = HTTPClient(on: s.runtime)
        switch mode {
        case .async:
            let r = try await client.get(s.url + "/redirect/5")
            #expect(r.status == .ok && r.url.path == "/redirect/0")
            #expect(try await r.body.collect(upTo: 10) == Array("done".utf8))
            await #expect(throws: HTTPClientError.tooManyRedirects(5)) { _ = try await client.get(s.url + "/redirect/6") }
            let seeOther = try await client.execute(.post, s.url + "/see-other", body: "data")
            #expect(seeOther.status == .ok && seeOther.url.path == "/hello")
        case .fiber:
            let (status, path, tooMany) = try await s.runtime.spawnFiber { () throws -> (Int, String, Bool) in
                let r = try client.get(s.url + "/redirect/5")
                _ = try r.body.collect(upTo: 10)
                var tooMany = false
                do { _ = try client.get(s.url + "/redirect/6") } catch HTTPClientError.tooManyRedirects(5) { tooMany = true }
                return (r.status.code, r.url.path, tooMany)
            }.value
            #expect(status == 200 && path == "/redirect/0" && tooMany)
        }
        let none = HTTPClient(configuration: HTTPClientConfiguration(maxRedirects: 0), on: s.runtime)
        #expect(try await none.get(s.url + "/redirect/1").status == .found)
        none.shutdown()
        client.shutdown()
        await s.stop()
    }

    @Test func timeouts() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let release = Semaphore(permits: 0)
        // Never answers / answers the head and stalls the body, until released.
        let server = try ScriptedServer(on: rt) { conn, _ in
            guard let head = try await readRequestHead(conn) else { return }
            if head.hasPrefix("GET /body") { try await conn.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") }
            try await release.acquire()
        }
        let readLimited = HTTPClient(configuration: HTTPClientConfiguration(readTimeout: .milliseconds(100)), on: rt)
        await #expect(throws: SocketError.timedOut) { _ = try await readLimited.get(server.url + "/head") }
        let r = try await readLimited.get(server.url + "/body")
        await #expect(throws: SocketError.timedOut) { _ = try await r.body.collect(upTo: 100) }
        let deadlined = HTTPClient(configuration: HTTPClientConfiguration(readTimeout: nil, requestTimeout: .milliseconds(150)), on: rt)
        await #expect(throws: HTTPClientError.requestTimedOut(.milliseconds(150))) { _ = try await deadlined.get(server.url + "/head") }
        let r2 = try await deadlined.get(server.url + "/body")
        await #expect(throws: HTTPClientError.requestTimedOut(.milliseconds(150))) { _ = try await r2.body.collect(upTo: 100) }
        // Nothing listens: refused at once, not after a timeout.
        let closedPort = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let deadPort = closedPort.localAddress.port!
        closedPort.close()
        await #expect(throws: SocketError.connectionRefused(try SocketAddress("127.0.0.1:\(deadPort)"))) {
            _ = try await readLimited.get("http://127.0.0.1:\(deadPort)/")
        }
        release.release(count: 10)
        server.stop()
        readLimited.shutdown()
        deadlined.shutdown()
    }

    /// A listener whose accept queue is full and that never accepts: the kernel drops
    /// further handshakes, so a connect waits until its timeout.
    @Test func connectTimeout() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let full = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), backlog: 0, on: rt)
        defer { full.close() }
        let port = full.localAddress.port!
        var fillers: [TCPStream] = []
        for _ in 0..<8 {
            if let s = try? await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .milliseconds(100), on: rt) { fillers.append(s) }
        }
        let client = HTTPClient(configuration: HTTPClientConfiguration(connectTimeout: .milliseconds(150), readTimeout: .seconds(5)), on: rt)
        await #expect(throws: SocketError.timedOut) { _ = try await client.get("http://127.0.0.1:\(port)/") }
        let fromFiber = try await rt.spawnFiber { () -> String in
            do { _ = try client.get("http://127.0.0.1:\(port)/"); return "connected" } catch { return "\(error)" }
        }.value
        #expect(fromFiber == "\(SocketError.timedOut)")
        for f in fillers { f.close() }
        client.shutdown()
    }

    @Test func bodiesOfEveryKind() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let server = try ScriptedServer(on: rt) { conn, _ in
            while let head = try await readRequestHead(conn) {
                if head.hasPrefix("GET /close") {
                    try await conn.write("HTTP/1.1 200 OK\r\n\r\nuntil the server closes")
                    return
                }
                if head.hasPrefix("GET /chunked") {
                    try await conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n")
                } else if head.hasPrefix("HEAD") {
                    try await conn.write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
                } else {
                    try await conn.write("HTTP/1.1 204 No Content\r\n\r\n")
                }
            }
        }
        let client = HTTPClient(on: rt)
        let c = try await client.get(server.url + "/chunked")
        #expect(try await c.body.collect(upTo: 100) == Array("abcde".utf8))
        #expect(c.body.trailers?[HTTPField.Name("T")!] == "1")
        let h = try await client.execute(.head, server.url + "/")
        #expect(h.head.headerFields[.contentLength] == "1234")
        #expect(try await h.body.collect(upTo: 10).isEmpty)
        let n = try await client.get(server.url + "/nothing")
        #expect(n.status == .noContent)
        #expect(try await n.body.collect(upTo: 10).isEmpty)
        #expect(client.connectionsCreated == 1, "chunked, HEAD and 204 all keep the connection")
        let e = try await client.get(server.url + "/close")
        var pieces: [[UInt8]] = []
        for try await piece in e.body { pieces.append(piece) }
        #expect(pieces.joined().elementsEqual("until the server closes".utf8))
        await #expect(throws: HTTPBodyTooLarge(limit: 3)) { _ = try await client.get(server.url + "/chunked").body.collect(upTo: 3) }
        server.stop()
        client.shutdown()
    }

    @Test func requestBodiesFixedAndStreamedInBothWorlds() async throws {
        let s = try TestServer(.fiber)
        let client = HTTPClient(on: s.runtime)
        let fixed = try await client.execute(.post, s.url + "/echo", body: "fixed body")
        #expect(try await fixed.body.collect(upTo: 100) == Array("fixed body".utf8))
        let streamed = try await client.execute(.post, s.url + "/echo", body: .stream { w in
            for i in 0..<5 { try await w.write("part\(i) ") }
            w.trailers = [HTTPField.Name("x-done")!: "yes"]
        })
        #expect(streamed.head.headerFields[HTTPField.Name("x-trailers")!] == "1")
        #expect(try await streamed.body.collect(upTo: 100) == Array("part0 part1 part2 part3 part4 ".utf8))
        let fromFiber = try await s.runtime.spawnFiber { () throws -> [UInt8] in
            let r = try client.execute(.post, s.url + "/echo", body: .streamBlocking { w in
                for i in 0..<3 { try w.write("f\(i)") }
            })
            var all: [UInt8] = []
            while let chunk = try r.body.read() { all += chunk }
            return all
        }.value
        #expect(fromFiber == Array("f0f1f2".utf8))
        client.shutdown()
        await s.stop()
    }

    @Test func clearErrors() async throws {
        let client = HTTPClient()
        await #expect(throws: HTTPURLError.self) { _ = try await client.get("not a url") }
        client.shutdown()
        await #expect(throws: HTTPClientError.shutDown) { _ = try await client.get("http://127.0.0.1:1/") }
    }
}

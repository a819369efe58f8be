import HTTPTypes
import Spindle
import SpindleHTTP
import SpindleTestTools
import Testing

/// Against software nobody here wrote: curl and Python's http.client as clients of
/// Spindle's server, Python's http.server as the server of Spindle's client.
/// (.ci/run installs curl when it is missing; without it these tests are skipped with
/// the reason printed.)
@Suite(.serialized) struct InteropTests {
    @Test(.enabled(if: haveProgram("curl"), "curl is not installed (apt-get install curl)"), arguments: Mode.allCases)
    func curlReusesOneConnectionAndSendsAChunkedPost(mode: Mode) async throws {
        let s = try TestServer(mode)
        let urls = (0..<4).map { _ in s.url + "/hello" }
        let (status, out) = try runProgram("curl", ["-sS", "--write-out", "|%{num_connects}\n"] + urls)
        #expect(status == 0, "\(out)")
        #expect(out == String(repeating: "Hello, World!|X\n", count: 4).replacingFirst("X", "1").replacingAll("X", "0"), "\(out)")
        #expect(s.server.acceptedConnections == 1)
        let payload = Array((0..<50_000).map { UInt8(0x41 + $0 % 26) })
        let (st2, echoed) = try runProgram("curl", ["-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", s.url + "/echo"], stdin: payload)
        #expect(st2 == 0)
        #expect(echoed == String(decoding: payload, as: UTF8.self))
        await s.stop()
    }

    static let pythonClient = """
    import http.client, sys
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
    for i in range(5):
        c.request("GET", "/hello")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"Hello, World!", "hello"
    c.request("POST", "/echo", body=iter([b"ab", b"cd", b"ef"]), encode_chunked=True)
    r = c.getresponse()
    assert r.read() == b"abcdef", "chunked echo"
    c.request("GET", "/stream")
    r = c.getresponse()
    assert r.read() == b"piece 0\\npiece 1\\npiece 2\\n", "chunked response"
    c.request("GET", "/status/404")
    r = c.getresponse(); r.read()
    assert r.status == 404
    print("OK", c.sock.getsockname()[1])
    """

    @Test(.enabled(if: haveProgram("python3"), "python3 is not installed"), arguments: Mode.allCases)
    func pythonHTTPClientTalksToTheServer(mode: Mode) async throws {
        let s = try TestServer(mode)
        let (status, out) = try runProgram("python3", ["-c", Self.pythonClient, "\(s.port)"])
        #expect(status == 0, "\(out)")
        #expect(out.hasPrefix("OK "), "\(out)")
        #expect(s.server.acceptedConnections == 1, "http.client kept one connection")
        await s.stop()
    }

    static let pythonServer = """
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = ("you asked for " + self.path).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_POST(self):
            n = int(self.headers["Content-Length"])
            body = self.rfile.read(n)[::-1]
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """

    @Test(.enabled(if: haveProgram("python3"), "python3 is not installed"), arguments: Mode.allCases)
    func theClientTalksToPythonsServer(mode: Mode) async throws {
        let python = try BackgroundProcess("python3", ["-c", Self.pythonServer])
        defer { python.stop() }
        let port = try #require(Int(python.firstLine))
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let client = HTTPClient(on: rt)
        defer { client.shutdown() }
        let base = "http://127.0.0.1:\(port)"
        switch mode {
        case .async:
            for i in 0..<3 {
                let r = try await client.get(base + "/item/\(i)")
                #expect(try await r.body.collect(upTo: 1000) == Array("you asked for /item/\(i)".utf8))
            }
            let p = try await client.execute(.post, base + "/", body: "stressed")
            #expect(p.status.code == 201)
            #expect(try await p.body.collect(upTo: 100) == Array("desserts".utf8))
        case .fiber:
            let bodies = try await rt.spawnFiber { () throws -> [String] in
                var out: [String] = []
                for i in 0..<3 { out.append(String(decoding: try client.get(base + "/item/\(i)").body.collect(upTo: 1000), as: UTF8.self)) }
                out.append(String(decoding: try client.execute(.post, base + "/", body: "stressed").body.collect(upTo: 100), as: UTF8.self))
                return out
            }.value
            #expect(bodies == ["you asked for /item/0", "you asked for /item/1", "you asked for /item/2", "desserts"])
        }
        #expect(client.connectionsCreated == 1)
    }
}

extension String {
    func replacingFirst(_ a: String, _ b: String) -> String {
        guard let r = firstRange(of: a) else { return self }
        return self[..<r.lowerBound] + b + self[r.upperBound...]
    }
    func replacingAll(_ a: String, _ b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}

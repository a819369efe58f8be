// HTTPS: SpindleHTTP's server and client over SpindleTLS, against curl and Python's
// https (software nobody here wrote) and against each other. Certificates come from a
// throw-away authority made at test time (TLSThrowawayAuthority), in memory; curl and
// Python read its CA from a temporary file.
import HTTPTypes
import Spindle
import SpindleHTTP
import SpindleTLS
import SpindleTestTools
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One authority for the suite, its CA in a file for the programs that need a path.
final class TestAuthority: Sendable {
    let ca: TLSThrowawayAuthority
    let caFile: String
    let localhost: TLSServerContext

    static let shared: Result<TestAuthority, TLSError> = Result { () throws(TLSError) in try TestAuthority() }

    private init() throws(TLSError) {
        ca = try TLSThrowawayAuthority(name: "SpindleHTTP test CA")
        localhost = try TLSServerContext(configuration: TLSServerConfiguration(
            identity: try ca.issue(for: ["localhost", "127.0.0.1"]), applicationProtocols: ["http/1.1"]))
        var template = Array("/tmp/spindle-https-ca-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        caFile = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bytes = Array(ca.certificatePEM.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    var client: HTTPClientConfiguration {
        HTTPClientConfiguration(tls: TLSClientConfiguration(trustRoots: .certificates(.pem(ca.certificatePEM))))
    }
}

@Suite(.serialized) struct HTTPSTests {
    /// curl verifies the server's certificate against the throw-away CA, negotiates
    /// http/1.1 by ALPN over TLS 1.3, keeps one connection for several requests, and
    /// posts a chunked body.
    @Test(.enabled(if: haveProgram("curl"), "curl is not installed (apt-get install curl)"), arguments: Mode.allCases)
    func curlOverHTTPS(mode: Mode) async throws {
        let a = try TestAuthority.shared.get()
        let s = try TestServer(mode, tls: a.localhost)
        let urls = (0..<3).map { _ in s.url + "/hello" }
        let (status, out) = try runProgram("curl", ["-sS", "--cacert", a.caFile, "--write-out", "|%{num_connects}|%{http_version}\n"] + urls)
        #expect(status == 0, "\(out)")
        #expect(out == "Hello, World!|1|1.1\nHello, World!|0|1.1\nHello, World!|0|1.1\n", "\(out)")
        #expect(s.server.acceptedConnections == 1)
        let verbose = try runProgram("curl", ["-sS", "-v", "--cacert", a.caFile, s.url + "/hello"])
        #expect(verbose.output.contains("SSL connection using TLSv1.3"), "\(verbose.output)")
        #expect(verbose.output.contains("ALPN: server accepted http/1.1") || verbose.output.contains("ALPN, server accepted to use http/1.1"), "\(verbose.output)")
        let payload = Array((0..<100_000).map { UInt8(0x41 + $0 % 26) })
        let (st2, echoed) = try runProgram("curl", ["-sS", "--cacert", a.caFile, "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", s.url + "/echo"], stdin: payload)
        #expect(st2 == 0)
        #expect(echoed == String(decoding: payload, as: UTF8.self))
        // Without the CA, curl refuses the server (and the server counts the failure).
        let refused = try runProgram("curl", ["-sS", s.url + "/hello"])
        #expect(refused.status == 60, "\(refused.output)")
        #expect(await waitUntil { s.server.handshakeFailures == 1 })
        await s.stop()
    }

    /// Spindle's client and server over HTTPS in both worlds: bodies of every size, one
    /// pooled connection reused, and a new connection resuming the TLS session.
    @Test(arguments: Mode.allCases)
    func clientAndServer(mode: Mode) async throws {
        let a = try TestAuthority.shared.get()
        let s = try TestServer(mode, tls: a.localhost)
        let client = HTTPClient(configuration: a.client, on: s.runtime)
        switch mode {
        case .async:
            for _ in 0..<3 {
                let r = try await client.get(s.url + "/hello")
                #expect(r.status == .ok)
                #expect(try await r.body.collect(upTo: 100) == Array("Hello, World!".utf8))
            }
            let big = try await client.get(s.url + "/big")
            #expect(try await big.body.collect(upTo: 1 << 20).count == 100_000)
            let echo = try await client.execute(.post, s.url + "/echo", body: .bytes([UInt8](repeating: 7, count: 300_000)))
            #expect(try await echo.body.collect(upTo: 1 << 20) == [UInt8](repeating: 7, count: 300_000))
        case .fiber:
            let (ok, bigCount, echoed) = try await s.runtime.spawnFiber { () throws -> (Bool, Int, Bool) in
                var ok = true
                for _ in 0..<3 {
                    let r = try client.get(s.url + "/hello")
                    let body = try r.body.collect(upTo: 100)
                    ok = ok && r.status == .ok && body == Array("Hello, World!".utf8)
                }
                let big = try client.get(s.url + "/big").body.collect(upTo: 1 << 20).count
                let echo = try client.execute(.post, s.url + "/echo", body: .bytes([UInt8](repeating: 7, count: 300_000)))
                return (ok, big, try echo.body.collect(upTo: 1 << 20) == [UInt8](repeating: 7, count: 300_000))
            }.value
            #expect(ok && bigCount == 100_000 && echoed)
        }
        #expect(client.connectionsCreated == 1)
        #expect(s.server.acceptedConnections == 1)
        // A second client sharing the first's TLS context resumes its session.
        let tls = try client.tls()
        #expect(tls.cachedSessions == 1)
        let second = HTTPClient(configuration: a.client, tls: tls, on: s.runtime)
        #expect(try await second.get(s.url + "/hello").status == .ok)
        #expect(second.connectionsCreated == 1 && s.server.acceptedConnections == 2)
        second.shutdown()
        client.shutdown()
        await s.stop()
    }

    /// Python's urllib (https, verifying against the CA) as a client of Spindle's server,
    /// and Python's http.server wrapped in ssl as the server of Spindle's client.
    @Test(.enabled(if: haveProgram("python3"), "python3 is not installed"), arguments: Mode.allCases)
    func python(mode: Mode) async throws {
        let a = try TestAuthority.shared.get()
        let s = try TestServer(mode, tls: a.localhost)
        let client = """
        import ssl, sys, urllib.request
        ctx = ssl.create_default_context(cafile=sys.argv[1])
        with urllib.request.urlopen(sys.argv[2] + "/hello", context=ctx) as r:
            print(r.status, r.read().decode())
        """
        let (status, out) = try runProgram("python3", ["-c", client, a.caFile, s.url])
        #expect(status == 0 && out == "200 Hello, World!\n", "\(out)")
        await s.stop()

        let server = """
        import http.server, ssl, sys
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                body = b"secure " + self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a): pass
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        print(httpd.server_address[1], flush=True)
        httpd.serve_forever()
        """
        let identity = try a.ca.issue(for: ["localhost", "127.0.0.1"])
        guard case .pem(let chain) = identity.certificateChain, case .pem(let key) = identity.privateKey else { return }
        let chainFile = a.caFile + ".chain.pem", keyFile = a.caFile + ".key.pem"
        for (path, text) in [(chainFile, chain), (keyFile, key)] {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        let py = try BackgroundProcess("python3", ["-c", server, chainFile, keyFile])
        defer { py.stop() }
        let port = try #require(Int(py.firstLine))
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let c = HTTPClient(configuration: a.client, on: rt)
        for host in ["localhost", "127.0.0.1"] {
            let url = "https://\(host):\(port)/path"
            let body: [UInt8]
            switch mode {
            case .async: body = try await c.get(url).body.collect(upTo: 100)
            case .fiber: body = try await rt.spawnFiber { try c.get(url).body.collect(upTo: 100) }.value
            }
            #expect(body == Array("secure /path".utf8), "\(host)")
        }
        c.shutdown()
    }

    /// A close the server chooses ends with close_notify (so a client reading to the end
    /// can tell a complete answer from a cut one): after `Connection: close`, and after an
    /// HTTP/1.0 body delimited by the close.
    @Test(arguments: Mode.allCases)
    func serverClosesWithCloseNotify(mode: Mode) async throws {
        let a = try TestAuthority.shared.get()
        let s = try TestServer(mode, tls: a.localhost)
        let context = try TLSClientContext(configuration: TLSClientConfiguration(trustRoots: .certificates(.pem(a.ca.certificatePEM))))
        for (request, ending) in [("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "Hello, World!"),
                                  ("GET /stream HTTP/1.0\r\n\r\n", "piece 2\n")] {
            let tls = try await TLSStream.connect(over: try await TCPStream.connect(host: "127.0.0.1", port: s.port, on: s.runtime),
                                                  serverName: "localhost", context: context)
            try await tls.write(request)
            var all: [UInt8] = []
            while true {
                let piece = try await tls.read(upTo: 4096) // throws closedWithoutCloseNotify if cut
                if piece.isEmpty { break }
                all += piece
            }
            let text = String(decoding: all, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.") && text.contains(" 200 OK\r\n") && text.hasSuffix(ending), "\(text)")
            tls.close()
        }
        await s.stop()
    }

    /// A certificate that does not verify fails the request with its TLSError; plain HTTP
    /// to an HTTPS port and HTTPS to a plain port fail cleanly, and the servers go on.
    @Test func failures() async throws {
        let a = try TestAuthority.shared.get()
        let expired = try TLSServerContext(configuration: TLSServerConfiguration(identity: try a.ca.issue(for: ["localhost", "127.0.0.1"], days: -1)))
        let s = try TestServer(.async, tls: expired)
        let client = HTTPClient(configuration: a.client, on: s.runtime)
        await #expect(throws: TLSError.certificateVerifyFailed(code: 10, reason: "certificate has expired")) { _ = try await client.get(s.url + "/hello") }
        let wrongName = try TLSServerContext(configuration: TLSServerConfiguration(identity: try a.ca.issue(for: ["elsewhere.test"])))
        let w = try TestServer(.fiber, tls: wrongName)
        await #expect(throws: TLSError.certificateVerifyFailed(code: 64, reason: "IP address mismatch")) { _ = try await client.get(w.url + "/hello") }
        // Plain HTTP to the HTTPS port: the server refuses the "handshake".
        let plain = HTTPClient(on: s.runtime)
        await #expect(throws: (any Error).self) { _ = try await plain.get("http://\(s.server.localAddress)/hello") }
        #expect(await waitUntil { s.server.handshakeFailures == 2 })
        // HTTPS to a plain server.
        let p = try TestServer(.async)
        do {
            _ = try await client.get("https://\(p.server.localAddress)/hello")
            Issue.record("https to a plain HTTP server succeeded")
        } catch let e as TLSError {
            #expect("\(e)".contains("TLS handshake failed"), "\(e)")
        }
        #expect(try await HTTPClient(on: p.runtime).get(p.url + "/hello").status == .ok)
        client.shutdown()
        plain.shutdown()
        await p.stop()
        await w.stop()
        await s.stop()
    }
}

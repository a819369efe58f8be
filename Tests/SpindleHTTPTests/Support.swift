import HTTPTypes
import Spindle
import SpindleHTTP
import SpindleTLS
import Synchronization
import SpindleTestTools
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The two worlds a server's handler (and a client's calls) can live in.
enum Mode: String, CaseIterable, Sendable, CustomStringConvertible {
    case async, fiber
    var description: String { rawValue }
}

/// Scale for the heaviest loops (SPINDLE_TEST_SCALE, as in SpindleTests): smaller under
/// sanitizers, same assertions.
let testScale: Int = {
    if let p = getenv("SPINDLE_TEST_SCALE"), let n = Int(String(cString: p)), n > 0 { return n }
    return 1
}()

/// A gate handlers wait on, and a count of handlers that reached it.
final class Gate: Sendable {
    let semaphore = Semaphore(permits: 0)
    let arrived = Atomic<Int>(0)
    func open(_ n: Int = 1) { semaphore.release(count: n) }
}

/// The routes every test server serves, written once per world:
///   /hello            "Hello, World!"
///   /echo             the request body, with x-trailers: the number of trailer fields
///   /stream           a chunked body: "piece 0\n" ... "piece 2\n"
///   /redirect/N       302 to /redirect/N-1; /redirect/0 says "done"
///   /see-other        303 to /hello
///   /status/CODE      an empty response with that status
///   /noread           200 without reading the body
///   /wait             waits for the gate, then "released"
///   /big              100,000 bytes
enum Routes {
    static func fixed(_ request: HTTPServerRequest) -> HTTPServerResponse? {
        let path = request.head.path ?? "/"
        switch path {
        case "/hello": return HTTPServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: "Hello, World!")
        case "/noread": return HTTPServerResponse(status: .ok, body: "not read")
        case "/see-other": return HTTPServerResponse(status: .seeOther, headerFields: [.location: "/hello"])
        case "/big": return HTTPServerResponse(status: .ok, body: .bytes([UInt8](repeating: 0x62, count: 100_000)))
        default: break
        }
        if path.hasPrefix("/redirect/"), let n = Int(path.dropFirst("/redirect/".count)) {
            if n == 0 { return HTTPServerResponse(status: .ok, body: "done") }
            return HTTPServerResponse(status: .found, headerFields: [.location: "/redirect/\(n - 1)"])
        }
        if path.hasPrefix("/status/"), let code = Int(path.dropFirst("/status/".count)) {
            return HTTPServerResponse(status: .init(code: code))
        }
        return nil
    }

    static func async(_ gate: Gate) -> HTTPServer.Handler {
        { request in
            if let r = fixed(request) { return r }
            switch request.head.path ?? "/" {
            case "/echo":
                let body = try await request.body.collect(upTo: 4 << 20)
                return HTTPServerResponse(status: .ok, headerFields: [HTTPField.Name("x-trailers")!: "\(request.body.trailers?.count ?? 0)"], body: .bytes(body))
            case "/stream":
                return HTTPServerResponse(status: .ok, body: .stream { w in for i in 0..<3 { try await w.write("piece \(i)\n") } })
            case "/wait":
                gate.arrived.add(1, ordering: .sequentiallyConsistent)
                try await gate.semaphore.acquire()
                return HTTPServerResponse(status: .ok, body: "released")
            default:
                return HTTPServerResponse(status: .notFound)
            }
        }
    }

    static func blocking(_ gate: Gate) -> HTTPServer.BlockingHandler {
        { request in
            if let r = fixed(request) { return r }
            switch request.head.path ?? "/" {
            case "/echo":
                let body = try request.body.collect(upTo: 4 << 20)
                return HTTPServerResponse(status: .ok, headerFields: [HTTPField.Name("x-trailers")!: "\(request.body.trailers?.count ?? 0)"], body: .bytes(body))
            case "/stream":
                return HTTPServerResponse(status: .ok, body: .streamBlocking { w in for i in 0..<3 { try w.write("piece \(i)\n") } })
            case "/wait":
                gate.arrived.add(1, ordering: .sequentiallyConsistent)
                try gate.semaphore.acquire()
                return HTTPServerResponse(status: .ok, body: "released")
            default:
                return HTTPServerResponse(status: .notFound)
            }
        }
    }
}

/// A running test server on its own runtime, in `mode`.
final class TestServer: Sendable {
    let runtime: Runtime
    let server: HTTPServer
    let gate = Gate()
    let finished = Atomic<Bool>(false)
    let runError = Lock<String?>(nil)
    let scheme: String

    init(_ mode: Mode, configuration: HTTPServerConfiguration = HTTPServerConfiguration(), workers: Int = 2,
         tls: TLSServerContext? = nil) throws {
        runtime = try Runtime(flavor: .multiThread, workers: workers)
        let address = try SocketAddress("127.0.0.1:0")
        switch mode {
        case .async: server = try HTTPServer(address: address, configuration: configuration, tls: tls, on: runtime, handler: Routes.async(gate))
        case .fiber: server = try HTTPServer(address: address, configuration: configuration, tls: tls, on: runtime, blockingHandler: Routes.blocking(gate))
        }
        scheme = tls == nil ? "http" : "https"
        let s = server
        Task(executorPreference: runtime) { [self] in
            do { try await s.run() } catch { runError.withLock { $0 = "\(error)" } }
            finished.store(true, ordering: .sequentiallyConsistent)
        }
    }

    var url: String { "\(scheme)://\(server.localAddress)" }
    var port: Int { server.localAddress.port! }

    /// Shuts the server down and waits for `run` to return.
    func stop() async {
        server.shutdown()
        #expect(await waitUntil { finished.load(ordering: .sequentiallyConsistent) }, "the server's run() did not return after shutdown")
        runtime.shutdown()
    }
}

/// A raw connection for protocol-level tests: write bytes, read what comes back.
struct RawConnection {
    let stream: TCPStream

    static func open(port: Int, on runtime: Runtime) async throws -> RawConnection {
        RawConnection(stream: try await TCPStream.connect(host: "127.0.0.1", port: port, on: runtime))
    }

    func send(_ text: String) async throws { try await stream.write(text) }
    func send(_ bytes: [UInt8]) async throws { try await stream.write(bytes) }

    /// Everything until the server closes the connection (each read bounded by `timeout`).
    func readToEnd(timeout: Duration = .seconds(20)) async throws -> [UInt8] {
        // SAFETY: allocated here, freed on return; the read writes only inside it.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
        defer { buffer.deallocate() }
        var all: [UInt8] = []
        while true {
            let n = try await stream.read(into: buffer, timeout: timeout)
            if n == 0 { return all }
            all += buffer[..<n]
        }
    }

    /// Reads parsed responses until `count` have arrived (or the connection ends).
    func readResponses(_ count: Int, toHEAD: Bool = false) async throws -> [ParsedMessage] {
        var parser = HTTPParser(kind: .response)
        parser.nextResponseIsToHEAD = toHEAD
        var pending: [UInt8] = []
        var out: [ParsedMessage] = []
        var current: ParsedMessage?
        while out.count < count {
            var progressed = true
            while progressed {
                progressed = false
                let step = try pending.withUnsafeBytes { try parser.next($0) }
                if let event = step.event {
                    switch event {
                    case .response(let head, let info): current = ParsedMessage(response: head, info: info)
                    case .body(let r): current?.body += pending[r]
                    case .end(let t): current?.trailers = t; if let c = current { out.append(c) }; current = nil
                    case .request: break
                    }
                    progressed = true
                }
                pending.removeFirst(step.consumed)
                if step.consumed > 0 { progressed = true }
                if out.count == count { return out }
            }
            let chunk = try await stream.read(upTo: 65536)
            if chunk.isEmpty {
                if let e = try parser.finish(), case .end = e, let c = current { out.append(c) }
                return out
            }
            pending += chunk
        }
        return out
    }
}

struct ParsedMessage: Sendable {
    var response: HTTPResponse
    var info: HTTPHeadInfo
    var body: [UInt8] = []
    var trailers: HTTPFields?
    var text: String { String(decoding: body, as: UTF8.self) }
}

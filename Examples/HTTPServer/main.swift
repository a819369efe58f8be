// An HTTP/1.1 server on SpindleHTTP, in either world: handlers as tasks (`async`) or on a
// fiber per connection (`fiber`, blocking-style code, no `await`). Routes:
//   GET /      "Hello, World!"
//   GET /4k    4096 bytes
//   POST /echo the request body back
//   GET /stream  a chunked body in 4 pieces
//
//   swift run -c release http-server --port 8080 --mode async --workers 1
//   swift run -c release http-server --tls-cert cert.pem --tls-key key.pem   (HTTPS)
// Stops on SIGINT or SIGTERM (graceful: requests in flight finish).
import HTTPTypes
import Spindle
import SpindleHTTP
import SpindleTLS

var port = 8080
var mode = "async"
var workers: Int?
var host = "127.0.0.1"
var tlsCert: String?
var tlsKey: String?
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--port": port = Int(args.popFirst() ?? "") ?? port
    case "--mode": mode = args.popFirst() ?? mode
    case "--workers": workers = Int(args.popFirst() ?? "")
    case "--host": host = args.popFirst() ?? host
    case "--tls-cert": tlsCert = args.popFirst()
    case "--tls-key": tlsKey = args.popFirst()
    default:
        print("usage: http-server [--host H] [--port P] [--mode async|fiber] [--workers N] [--tls-cert PEM --tls-key PEM]")
        exit(2)
    }
}
guard mode == "async" || mode == "fiber" else {
    print("http-server: --mode is async or fiber")
    exit(2)
}
guard (tlsCert == nil) == (tlsKey == nil) else {
    print("http-server: HTTPS needs both --tls-cert (the chain, leaf first) and --tls-key")
    exit(2)
}
// HTTPS: the certificate chain and key, loaded once (a bad file fails here, not per connection).
let tls = try tlsCert.map { cert in
    try TLSServerContext(configuration: TLSServerConfiguration(
        identity: .files(certificateChain: cert, privateKey: tlsKey!), applicationProtocols: ["http/1.1"]))
}

let hello: [UInt8] = Array("Hello, World!".utf8)
let fourK = [UInt8](repeating: UInt8(ascii: "a"), count: 4096)
let plain: HTTPFields = [.contentType: "text/plain"]

@Sendable func route(_ request: HTTPServerRequest, body: () throws -> [UInt8]) rethrows -> HTTPServerResponse {
    switch (request.head.method, request.head.path ?? "/") {
    case (.get, "/"), (.head, "/"): return HTTPServerResponse(status: .ok, headerFields: plain, body: .bytes(hello))
    case (.get, "/4k"): return HTTPServerResponse(status: .ok, headerFields: plain, body: .bytes(fourK))
    case (.post, "/echo"): return HTTPServerResponse(status: .ok, body: .bytes(try body()))
    default: return HTTPServerResponse(status: .notFound, body: "not found\n")
    }
}

try Runtime.main(configuration: Runtime.Configuration(flavor: .multiThread, workerCount: workers)) {
    let address = try SocketAddress(host: host, port: port)
    let server: HTTPServer
    if mode == "async" {
        server = try HTTPServer(address: address, tls: tls) { request in
            if request.head.path == "/stream" {
                return HTTPServerResponse(status: .ok, body: .stream { w in
                    for i in 0..<4 { try await w.write("piece \(i)\n") }
                })
            }
            let body = request.head.method == .post ? try await request.body.collect(upTo: 16 << 20) : []
            return route(request) { body }
        }
    } else {
        server = try HTTPServer(address: address, tls: tls, blockingHandler: { request in
            if request.head.path == "/stream" {
                return HTTPServerResponse(status: .ok, body: .streamBlocking { w in
                    for i in 0..<4 { try w.write("piece \(i)\n") }
                })
            }
            return try route(request) { try request.body.collect(upTo: 16 << 20) }
        })
    }
    print("http-server (\(mode)\(tls == nil ? "" : ", HTTPS")) listening on \(server.localAddress)")
    let signals = try SignalStream([.interrupt, .terminate])
    Task {
        _ = try await signals.next()
        server.shutdown()
    }
    try await server.run()
    signals.stop()
}

#if canImport(Glibc)
import Glibc
#endif

// The Hummingbird 2 HTTP peer server: a Router with the two routes, Application's default
// HTTP/1.1 server, on a MultiThreadedEventLoopGroup of one event loop (run.sh also pins it
// to one CPU).
//
//   hb-server [--port PORT] [--threads N]          (defaults: 8080, 1)
//
// GET / answers "Hello, World!" (text/plain), GET /4k answers 4096 bytes of 'a'; any other
// path is Hummingbird's 404. Each answer is a Response built around a ByteBuffer made once
// (as the other servers write static bytes), not a String converted per request. The
// listen backlog is 1024 (Hummingbird's default is 256, which 1000 connecting at once can
// overflow; Tokio's is 1024, Go's the kernel's somaxconn). Keep-alive is Hummingbird's
// default. Logging stays at Hummingbird's default level (info: one line at start).
// Prints `listening on ADDR` once the server runs. SIGTERM stops it gracefully.
import Hummingbird
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One line to stdout (or `fd`), unbuffered, so a caller reading a pipe or a log sees it at once.
func say(_ line: String, fd: Int32 = 1) {
    var l = line + "\n"
    l.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

enum Bodies {
    static let hello = ByteBuffer(string: "Hello, World!")
    static let fourK = ByteBuffer(repeating: UInt8(ascii: "a"), count: 4096)
}

func text(_ body: ByteBuffer) -> Response {
    Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: body))
}

func usage() -> Never {
    say("usage: hb-server [--port PORT] [--threads N]", fd: 2)
    exit(2)
}

func intArgument(_ value: String?) -> Int {
    guard let value, let n = Int(value), n >= 0 else { usage() }
    return n
}

@main
struct HBServer {
    static func main() async throws {
        var port = 8080
        var threads = 1
        var args = CommandLine.arguments.dropFirst()
        while let arg = args.popFirst() {
            switch arg {
            case "--port": port = intArgument(args.popFirst())
            case "--threads": threads = intArgument(args.popFirst())
            default: usage()
            }
        }
        let listenPort = port  // a constant, for the @Sendable closure below
        let router = Router()
        router.get("/") { _, _ in text(Bodies.hello) }
        router.get("/4k") { _, _ in text(Bodies.fourK) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), backlog: 1024),
            onServerRunning: { channel in
                say("listening on 127.0.0.1:\(channel.localAddress?.port ?? listenPort)")
            },
            eventLoopGroupProvider: .shared(group)
        )
        try await app.runService()
    }
}

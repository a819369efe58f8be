// The SwiftNIO HTTP peer server: ServerBootstrap, configureHTTPServerPipeline (NIOHTTP1's
// decoder, encoder and pipelining helper, with its error handler) and one handler of ours
// for the two routes, on a MultiThreadedEventLoopGroup of one event loop (run.sh also pins
// it to one CPU).
//
//   nio-server [--port PORT] [--threads N]          (defaults: 8080, 1)
//
// GET / answers "Hello, World!" (text/plain), GET /4k answers 4096 bytes of 'a'; any other
// path is a 404, any other method a 405. Keep-alive follows the request
// (HTTPRequestHead.isKeepAlive: HTTP/1.1 unless `Connection: close`); when it is off the
// response says `Connection: close` and the channel closes after it. Responses carry
// Content-Type and Content-Length but no Date header (NIOHTTP1 adds none; Go, hyper and
// Hummingbird do). Prints `listening on ADDR` once bound.
import NIOCore
import NIOHTTP1
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

final class RouteHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break  // the two routes take no body; any that comes is dropped
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context: context, to: h)
        }
    }

    private func respond(context: ChannelHandlerContext, to request: HTTPRequestHead) {
        var status = HTTPResponseStatus.ok
        var body: ByteBuffer?
        switch request.uri {
        case "/": body = Bodies.hello
        case "/4k": body = Bodies.fourK
        default: status = .notFound
        }
        if body != nil, request.method != .GET, request.method != .HEAD {
            status = .methodNotAllowed
            body = nil
        }
        let keepAlive = request.isKeepAlive
        var headers = HTTPHeaders()
        if let body {
            headers.add(name: "Content-Type", value: "text/plain")
            headers.add(name: "Content-Length", value: String(body.readableBytes))
        } else {
            headers.add(name: "Content-Length", value: "0")
        }
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if request.version.major == 1, request.version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if let body, request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

func usage() -> Never {
    say("usage: nio-server [--port PORT] [--threads N]", fd: 2)
    exit(2)
}

func intArgument(_ value: String?) -> Int {
    guard let value, let n = Int(value), n >= 0 else { usage() }
    return n
}

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

let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(RouteHandler())
        }
    }
let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
say("listening on 127.0.0.1:\(channel.localAddress?.port ?? port)")
try channel.closeFuture.wait()

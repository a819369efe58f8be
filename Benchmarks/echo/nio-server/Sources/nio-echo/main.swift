// The SwiftNIO echo server: the canonical EchoHandler on a MultiThreadedEventLoopGroup
// with one event loop per core.
//
//   nio-echo [HOST] [PORT] [LOOPS]
// LOOPS defaults to System.coreCount, which honours cgroup limits but not the affinity
// mask: under `taskset -c 0` it still says 2 on a 2-core machine, so run.sh passes the
// number of CPUs the server may use (`nproc`), as Spindle, Go and Tokio count them.
import NIOCore
import NIOPosix

final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }
    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

let args = CommandLine.arguments
let host = args.count > 1 ? args[1] : "127.0.0.1"
let port = args.count > 2 ? Int(args[2]) ?? 7000 : 7000
let loops = args.count > 3 ? Int(args[3]) ?? System.coreCount : System.coreCount
let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
    }
let channel = try bootstrap.bind(host: host, port: port).wait()
try channel.closeFuture.wait()

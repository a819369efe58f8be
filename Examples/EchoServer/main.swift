// An echo server, twice: once with async tasks, once with fibers and plain blocking-style
// calls. Same runtime, same sockets, same behaviour. Spindle is installed as Swift's
// executor for the whole program (`Runtime.main`), so plain `Task {}` runs on it.
//
//   swift run -c release echo-server async 127.0.0.1:7000
//   swift run -c release echo-server fiber 127.0.0.1:7000
// Stops on SIGINT or SIGTERM.
import Spindle

let args = CommandLine.arguments
guard args.count == 3, args[1] == "async" || args[1] == "fiber" else {
    print("usage: echo-server async|fiber HOST:PORT")
    exit(2)
}
let mode = args[1]
let address = try SocketAddress(args[2])

// MARK: the async version: a task per connection.
@Sendable func serveAsync(_ listener: TCPListener) async throws {
    while true {
        let conn = try await listener.accept()
        Task {
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let n = try await conn.read(into: &buffer)
                if n == 0 { return }
                try await conn.write(buffer[..<n])
            }
        }
    }
}

// MARK: the fiber version: a fiber per connection, no `await` anywhere.
@Sendable func serveFibers(_ listener: TCPListener) throws {
    while true {
        let conn = try listener.accept()
        _ = try Fiber.spawn {
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let n = try conn.read(into: &buffer)
                if n == 0 { return }
                try conn.write(buffer[..<n])
            }
        }
    }
}

try Runtime.main {
    let runtime = Runtime.global!
    let listener = try TCPListener.bind(to: address)
    print("echo-server (\(mode)) listening on \(listener.localAddress)")
    let signals = try SignalStream([.interrupt, .terminate])
    if mode == "async" {
        Task { try await serveAsync(listener) }
    } else {
        _ = runtime.spawnFiber { try serveFibers(listener) }
    }
    let signal = try await signals.next()
    print("echo-server: \(signal.map { "\($0)" } ?? "stop"), shutting down")
    // Thread hops: jobs that ran on another worker than the one that queued them, and
    // fibers woken from another thread, per readiness event (≈ per request).
    let stats = runtime.statistics
    let hops = stats.stolenJobs + stats.remoteFiberResumes
    print("echo-server: \(stats.ioEvents) I/O events, \(stats.stolenJobs) stolen jobs, "
        + "\(stats.remoteFiberResumes) remote fiber resumes: "
        + "\(stats.ioEvents > 0 ? Double(hops) / Double(stats.ioEvents) : 0) thread hops per event, "
        + "\(stats.stallRescues) stall rescues")
    listener.close()
    signals.stop()
}

#if canImport(Glibc)
import Glibc
#endif

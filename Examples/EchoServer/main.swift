// An echo server, twice: once with async tasks, once with fibers and plain blocking-style
// calls. Same runtime, same sockets, same behaviour.
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
let address = try SocketAddress(args[2])
let runtime = try Runtime()
let listener = try TCPListener.bind(to: address, on: runtime)
print("echo-server (\(args[1])) listening on \(listener.localAddress)")

// MARK: the async version: a task per connection.
@Sendable func serveAsync(_ listener: TCPListener, _ runtime: Runtime) async throws {
    while true {
        let conn = try await listener.accept()
        Task(executorPreference: runtime) {
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

let signals = try SignalStream([.interrupt, .terminate], on: runtime)
if args[1] == "async" {
    Task(executorPreference: runtime) { [listener, runtime] in try await serveAsync(listener, runtime) }
} else {
    _ = runtime.spawnFiber { [listener] in try serveFibers(listener) }
}
// Wait for a signal, then stop.
let signal = try runtime.run { try await signals.next() }
print("echo-server: \(signal.map { "\($0)" } ?? "stop"), shutting down")
listener.close()
signals.stop()
runtime.shutdown(timeout: .seconds(1))

#if canImport(Glibc)
import Glibc
#endif

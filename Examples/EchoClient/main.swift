// An echo client, twice: async tasks or fibers. Opens CONNECTIONS connections, sends
// ROUNDS messages of SIZE bytes on each, checks every echo, and prints the round trips
// per second and the median and p99 latency.
//
//   swift run -c release echo-client async 127.0.0.1:7000 [CONNECTIONS] [ROUNDS] [SIZE]
//   swift run -c release echo-client fiber 127.0.0.1:7000 [CONNECTIONS] [ROUNDS] [SIZE]
import Spindle

let args = CommandLine.arguments
guard args.count >= 3, args[1] == "async" || args[1] == "fiber" else {
    print("usage: echo-client async|fiber HOST:PORT [CONNECTIONS] [ROUNDS] [SIZE]")
    exit(2)
}
let address = try SocketAddress(args[2])
let connections = args.count > 3 ? Int(args[3]) ?? 10 : 10
let rounds = args.count > 4 ? Int(args[4]) ?? 1000 : 1000
let size = args.count > 5 ? Int(args[5]) ?? 64 : 64
let runtime = try Runtime()
let message = [UInt8](repeating: 0x61, count: size)

// MARK: one connection, async.
@Sendable func clientAsync(_ address: SocketAddress, _ rounds: Int, _ message: [UInt8]) async throws -> [Int64] {
    let size = message.count
    let s = try await TCPStream.connect(to: address, timeout: .seconds(5))
    var latencies: [Int64] = []
    for _ in 0..<rounds {
        let t0 = ContinuousClock.now
        try await s.write(message)
        let back = try await s.read(exactly: size)
        precondition(back == message, "echo mismatch")
        latencies.append((ContinuousClock.now - t0).nanoseconds)
    }
    return latencies
}

// MARK: the same, as a fiber: no await.
@Sendable func clientFiber(_ address: SocketAddress, _ rounds: Int, _ message: [UInt8]) throws -> [Int64] {
    let size = message.count
    let s = try TCPStream.connect(to: address, timeout: .seconds(5))
    var latencies: [Int64] = []
    for _ in 0..<rounds {
        let t0 = ContinuousClock.now
        try s.write(message)
        let back = try s.read(exactly: size)
        precondition(back == message, "echo mismatch")
        latencies.append((ContinuousClock.now - t0).nanoseconds)
    }
    return latencies
}

let start = ContinuousClock.now
var all: [Int64] = []
if args[1] == "async" {
    all = try runtime.run { [address, rounds, message, connections] in
        try await withThrowingTaskGroup(of: [Int64].self) { g in
            for _ in 0..<connections { g.addTask { try await clientAsync(address, rounds, message) } }
            return try await g.reduce(into: []) { $0 += $1 }
        }
    }
} else {
    let fibers = (0..<connections).map { _ in runtime.spawnFiber { [address, rounds, message] in try clientFiber(address, rounds, message) } }
    for f in fibers { all += try f.join() }
}
let elapsed = ContinuousClock.now - start
all.sort()
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("\(all.count) round trips in \(elapsed): \(Int(Double(all.count) / seconds)) per second, p50 \(all[all.count / 2] / 1000) µs, p99 \(all[all.count * 99 / 100] / 1000) µs")
runtime.shutdown()

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

#if canImport(Glibc)
import Glibc
#endif

// The I/O and time rows of `spindle bench`: TCP round trips between two tasks, two fibers,
// and (for comparison) two plain threads doing blocking reads and writes; the cost of a
// timer; the memory of an idle connection.
import ArgumentParser
import Foundation
import CSpindleBench
import Spindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

enum IOMeasurements {
    /// Waits until every worker of `rt` is parked (nothing left to run), at most 10 s.
    static func waitUntilIdle(_ rt: Runtime) {
        let giveUp = Clock.nanos() + 10_000_000_000
        while rt.statistics.parkedWorkers < rt.workerCount && Clock.nanos() < giveUp { usleep(1_000) }
    }

    /// ns per 1-byte round trip over loopback TCP, client and server both tasks, with
    /// Spindle installed as Swift's executor (system `spindle`, as programs use it).
    static func tcpRTTTasksGlobal(iterations: Int, workers: Int?) throws -> Double {
        try Runtime.main(configuration: .init(flavor: .multiThread, workerCount: workers)) { () async throws -> Double in
            try await Task.detached {
                try await taskRTT(iterations: iterations) { serve in Task.detached { try await serve() } }
            }.value
        }
    }

    /// The same on a `Runtime` reached by executor preference, Swift's default executor
    /// still installed (system `spindle-preference`).
    static func tcpRTTTasks(iterations: Int, workers: Int?) throws -> Double {
        let rt = try Runtime(flavor: .multiThread, workers: workers)
        defer { rt.shutdown() }
        return try rt.run {
            try await taskRTT(iterations: iterations) { serve in Task(executorPreference: rt) { try await serve() } }
        }
    }

    /// The round trips themselves; `start` runs the server as a task of the caller's shape.
    private static func taskRTT(
        iterations: Int, start: (@escaping @Sendable () async throws -> Void) -> Task<Void, any Error>
    ) async throws -> Double {
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"))
        let server = start {
            let c = try await listener.accept()
            var buf: [UInt8] = [0]
            while try await c.read(into: &buf) == 1 { try await c.write(buf) }
        }
        let s = try await TCPStream.connect(to: listener.localAddress)
        var buf: [UInt8] = [7]
        for _ in 0..<1_000 { try await s.write(buf); _ = try await s.read(into: &buf) } // warm-up
        let t0 = Window.begin()
        for _ in 0..<iterations { try await s.write(buf); _ = try await s.read(into: &buf) }
        let dt = Window.end(t0, ops: iterations)
        s.close()
        _ = await server.result
        return Double(dt) / Double(iterations)
    }

    /// The same with two fibers and the blocking calls, on the runtime installed as
    /// Swift's executor (system `spindle`, like the other rows).
    static func tcpRTTFibersGlobal(iterations: Int, workers: Int?) throws -> Double {
        try Runtime.main(configuration: .init(flavor: .multiThread, workerCount: workers)) { () async throws -> Double in
            let (server, client) = try startFiberRTT(on: Runtime.global!, iterations: iterations)
            let v = try await client.value
            _ = try? await server.value
            return v
        }
    }

    /// The same on a runtime of its own (no global install).
    static func tcpRTTFibers(iterations: Int, workers: Int?) throws -> Double {
        let rt = try Runtime(flavor: .multiThread, workers: workers)
        defer { rt.shutdown() }
        let (server, client) = try startFiberRTT(on: rt, iterations: iterations)
        let v = try client.join()
        try? server.join()
        return v
    }

    private static func startFiberRTT(on rt: Runtime, iterations: Int) throws -> (FiberHandle<Void>, FiberHandle<Double>) {
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let server = rt.spawnFiber { () throws -> Void in
            let c = try listener.accept()
            var buf: [UInt8] = [0]
            while try c.read(into: &buf) == 1 { try c.write(buf) }
        }
        let client = rt.spawnFiber { () throws -> Double in
            let s = try TCPStream.connect(to: listener.localAddress)
            var buf: [UInt8] = [7]
            for _ in 0..<1_000 { try s.write(buf); _ = try s.read(into: &buf) }
            let t0 = Window.begin()
            for _ in 0..<iterations { try s.write(buf); _ = try s.read(into: &buf) }
            let dt = Window.end(t0, ops: iterations)
            s.close()
            return Double(dt) / Double(iterations)
        }
        return (server, client)
    }

    /// The same between two plain threads with blocking sockets (no runtime at all).
    static func tcpRTTThreads(iterations: Int) -> Double {
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(lfd, $0, len) } }
        listen(lfd, 16)
        withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(lfd, $0, &len) } }
        let port = addr.sin_port
        let serverDone = PosixSemaphore()
        let serverThread = ThreadBox {
            let c = accept(lfd, nil, nil)
            var one: Int32 = 1
            setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
            var b: UInt8 = 0
            while read(c, &b, 1) == 1 { _ = write(c, &b, 1) }
            close(c)
            serverDone.signal()
        }
        serverThread.start()
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        to.sin_port = port
        withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var b: UInt8 = 7
        for _ in 0..<1_000 { _ = write(s, &b, 1); _ = read(s, &b, 1) }
        let t0 = Window.begin()
        for _ in 0..<iterations { _ = write(s, &b, 1); _ = read(s, &b, 1) }
        let dt = Window.end(t0, ops: iterations)
        close(s)
        serverDone.wait()
        close(lfd)
        return Double(dt) / Double(iterations)
    }

    /// Extra ns per timer when `count` tasks each sleep 1 ms at once, over the same tasks
    /// not sleeping: (T_sleep − T_plain − 1 ms) / count. Spindle's `sleep(for:)` on a
    /// Spindle runtime, or `Task.sleep` on Swift's default executor.
    static func timerCost(count: Int, spindle: Bool) async -> Double {
        func batch(sleeping: Bool) async -> Int64 {
            let t0 = Clock.nanos()
            await withTaskGroup(of: Void.self) { g in
                for _ in 0..<count {
                    g.addTask {
                        guard sleeping else { return }
                        if spindle { try? await Spindle.sleep(for: .milliseconds(1)) } else { try? await Task.sleep(for: .milliseconds(1)) }
                    }
                }
            }
            return Clock.nanos() - t0
        }
        _ = await batch(sleeping: true) // warm up
        // One pair (a plain batch, a sleeping batch) is one sample of "what the 1 ms sleep
        // added beyond its own 1 ms"; a single sample could come out negative on a noisy
        // machine, so take the median of 7 interleaved pairs.
        var samples: [Double] = []
        for _ in 0..<7 {
            let plain = await batch(sleeping: false)
            Window.beginCounting() // allocs and switches per sleeping task, its spawn included
            let sleeping = await batch(sleeping: true)
            Window.endCounting(ops: count)
            samples.append(Double(sleeping - plain - 1_000_000) / Double(count))
        }
        return samples.sorted()[samples.count / 2]
    }

    /// RSS bytes per task while `count` tasks sleep for an hour, or (`afterCancel`) per task
    /// still held once they have all been cancelled and have finished: over the RSS before
    /// they were spawned. Spindle's `sleep` or `Task.sleep` on Swift's default executor.
    static func sleepMemory(count: Int, spindle: Bool, afterCancel: Bool) async -> Double {
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let started = Count()
        Window.beginCounting()
        let before = ProcessStats.residentBytes()
        var sleeping = 0
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<count {
                g.addTask {
                    started.value.add(1, ordering: .relaxed)
                    if spindle { try? await Spindle.sleep(for: .seconds(3600)) } else { try? await Task.sleep(for: .seconds(3600)) }
                }
            }
            while started.value.load(ordering: .relaxed) < count { try? await Spindle.sleep(for: .milliseconds(5)) }
            try? await Spindle.sleep(for: .milliseconds(200)) // the last ones reach their sleep
            sleeping = ProcessStats.residentBytes()
            if !afterCancel { Window.endCounting(ops: count) }
            g.cancelAll()
        }
        try? await Spindle.sleep(for: .milliseconds(200))
        // Freed memory stays in malloc's arenas (RSS) until trimmed; trimming shows what is
        // actually free, the same for both systems.
        spindle_bench_trim_heap()
        let after = ProcessStats.residentBytes()
        if afterCancel { Window.endCounting(ops: count) }
        return Double((afterCancel ? after : sleeping) - before) / Double(count)
    }

    /// Median ns by which a 1 ms sleep is late (200 sleeps, one after another, idle runtime).
    static func sleepLateness(spindle: Bool) async -> Double {
        var late: [Int64] = []
        Window.beginCounting()
        defer { Window.endCounting(ops: 200) }
        for _ in 0..<200 {
            let t0 = Clock.nanos()
            if spindle { try? await Spindle.sleep(for: .milliseconds(1)) } else { try? await Task.sleep(for: .milliseconds(1)) }
            late.append(Clock.nanos() - t0 - 1_000_000)
        }
        late.sort()
        return Double(late[late.count / 2])
    }

    /// RSS bytes per idle open connection: `count` connections, each server side a task
    /// (or a fiber) waiting in read, each client side an open TCPStream.
    static func idleConnectionMemory(count: Int, fibers: Bool) throws -> Double {
        raiseDescriptorLimit()
        let rt = try Runtime(flavor: .multiThread)
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), backlog: 4096, on: rt)
        var clients: [TCPStream] = []
        clients.reserveCapacity(count)
        let accepted = Counter()
        let acceptor = Task(executorPreference: rt) {
            while true {
                let c = try await listener.accept()
                accepted.add()
                if fibers {
                    _ = rt.spawnFiber { _ = try? c.read(upTo: 1) }
                } else {
                    Task(executorPreference: rt) { _ = try? await c.read(upTo: 1) }
                }
            }
        }
        // The warm-up: 200 connections opened, served and closed, so the allocator's arenas
        // and the runtime's tables exist before the baseline is read.
        var warm: [TCPStream] = []
        for _ in 0..<200 { warm.append(try TCPStream.connect(to: listener.localAddress, on: rt)) }
        while accepted.value < 200 { usleep(1_000) }
        for c in warm { c.close() }
        warm.removeAll()
        accepted.reset()
        waitUntilIdle(rt)
        Window.beginCounting()
        let before = ProcessStats.residentBytes()
        for _ in 0..<count { clients.append(try TCPStream.connect(to: listener.localAddress, on: rt)) }
        while accepted.value < count { usleep(1_000) }
        // Every reader is suspended in its read once the workers have nothing left to run.
        waitUntilIdle(rt)
        let after = ProcessStats.residentBytes()
        Window.endCounting(ops: count)
        acceptor.cancel()
        for c in clients { c.close() }
        return Double(after - before) / Double(count)
    }

    /// RSS bytes per idle connection held by this process, with `count` connections whose
    /// client ends live in another process (`spindle hold-connections`), each server end a
    /// task waiting in read. With 10,000 connections this process holds 10,000 sockets
    /// (the descriptor limit here is 20,000).
    static func idleConnectionsHeld(count: Int) throws -> Double {
        raiseDescriptorLimit()
        let rt = try Runtime(flavor: .multiThread)
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), backlog: 4096, on: rt)
        let accepted = Counter()
        let holder = Holder()
        let acceptor = Task(executorPreference: rt) {
            while true {
                let c = try await listener.accept()
                holder.keep(c)
                accepted.add()
                Task(executorPreference: rt) { _ = try? await c.read(upTo: 1) }
            }
        }
        waitUntilIdle(rt) // the acceptor is suspended in accept
        Window.beginCounting()
        let before = ProcessStats.residentBytes()
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let clients = Process()
        clients.executableURL = exe
        clients.arguments = ["hold-connections", "\(listener.localAddress)", "\(count)"]
        let stdin = Pipe()
        clients.standardInput = stdin
        try clients.run()
        let giveUp = Date().addingTimeInterval(60)
        while accepted.value < count && Date() < giveUp && clients.isRunning { usleep(1_000) }
        waitUntilIdle(rt) // every reader is suspended in its read
        let after = ProcessStats.residentBytes()
        Window.endCounting(ops: count)
        let got = accepted.value
        try stdin.fileHandleForWriting.close()
        clients.waitUntilExit()
        acceptor.cancel()
        holder.closeAll()
        guard got == count else { throw ValidationError("only \(got) of \(count) connections were accepted") }
        return Double(after - before) / Double(count)
    }

    static func raiseDescriptorLimit() {
        var l = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        l.rlim_cur = l.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
    }
}

final class Counter: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the count is only touched under the mutex.
    private var n = 0
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    func add() { pthread_mutex_lock(&m); n += 1; pthread_mutex_unlock(&m) }
    var value: Int { pthread_mutex_lock(&m); defer { pthread_mutex_unlock(&m) }; return n }
    func reset() { pthread_mutex_lock(&m); n = 0; pthread_mutex_unlock(&m) }
}

/// A plain pthread running one closure (for the `threads` comparison).
final class ThreadBox: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `body` is immutable; the thread handle is written
    // once in start() by the starting thread.
    let body: @Sendable () -> Void
    var thread = pthread_t()
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    func start() {
        let unmanaged = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { raw in
            // SAFETY: the retained ThreadBox passed to pthread_create, released here once.
            let box = Unmanaged<ThreadBox>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, unmanaged.toOpaque())
        pthread_detach(thread)
    }
}

final class Holder: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the list is only touched under the mutex.
    private var streams: [TCPStream] = []
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    func keep(_ s: TCPStream) { pthread_mutex_lock(&m); streams.append(s); pthread_mutex_unlock(&m) }
    func closeAll() { pthread_mutex_lock(&m); for s in streams { s.close() }; streams = []; pthread_mutex_unlock(&m) }
}

/// `spindle hold-connections ADDRESS COUNT`: opens COUNT connections and holds them until
/// stdin closes (the client side of the `tcp.idle.10k` row). Not for people.
struct HoldConnections: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hold-connections", shouldDisplay: false)
    @Argument var address: String
    @Argument var count: Int

    func run() throws {
        IOMeasurements.raiseDescriptorLimit()
        let rt = try Runtime(flavor: .multiThread)
        let to = try SocketAddress(address)
        var held: [TCPStream] = []
        for _ in 0..<count { held.append(try TCPStream.connect(to: to, on: rt)) }
        _ = FileHandle.standardInput.readDataToEndOfFile()
        for s in held { s.close() }
        rt.shutdown()
    }
}

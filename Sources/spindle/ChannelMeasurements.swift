// The channel rows of `spindle bench`: Spindle's Channel from tasks and from fibers, and,
// on Swift's default executor, AsyncStream and swift-async-algorithms' AsyncChannel.
import AsyncAlgorithms
import Spindle

enum ChannelMeasurements {
    // MARK: round trips: A sends on `ab` and waits on `ba`; B echoes.

    /// ns per round trip between two tasks through two rendezvous Spindle channels.
    static func rttSpindleTasks(iterations: Int) async -> Double {
        let ab = Channel<Int>(capacity: 0), ba = Channel<Int>(capacity: 0)
        let echo = Task.detached {
            while let v = try await ab.receive() { try await ba.send(v) }
        }
        let r = await Task.detached { () async throws -> Double in
            for i in 0..<1_000 { try await ab.send(i); _ = try await ba.receive() }
            let t0 = Window.begin()
            for i in 0..<iterations { try await ab.send(i); _ = try await ba.receive() }
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }.result
        ab.close()
        _ = await echo.result
        return (try? r.get()) ?? .nan
    }

    /// The same with two fibers on a one-worker runtime (blocking calls, no await).
    static func rttSpindleFibers(iterations: Int) throws -> Double {
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let ab = Channel<Int>(capacity: 0), ba = Channel<Int>(capacity: 0)
        let outer = rt.spawnFiber { () throws -> Double in
            let echo = try Fiber.spawn { while let v = try ab.receive() { try ba.send(v) } }
            for i in 0..<1_000 { try ab.send(i); _ = try ba.receive() }
            let t0 = Window.begin()
            for i in 0..<iterations { try ab.send(i); _ = try ba.receive() }
            let dt = Window.end(t0, ops: iterations)
            ab.close()
            try echo.join()
            return Double(dt) / Double(iterations)
        }
        return try outer.join()
    }

    /// AsyncStream pair (unbounded; the closest thing the standard library has).
    static func rttAsyncStream(iterations: Int) async -> Double {
        let (abStream, ab) = AsyncStream.makeStream(of: Int.self)
        let (baStream, ba) = AsyncStream.makeStream(of: Int.self)
        let echo = Task.detached {
            for await v in abStream { ba.yield(v) }
            ba.finish()
        }
        let r = await Task.detached { () async -> Double in
            var it = baStream.makeAsyncIterator()
            for i in 0..<1_000 { ab.yield(i); _ = await it.next() }
            let t0 = Window.begin()
            for i in 0..<iterations { ab.yield(i); _ = await it.next() }
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }.value
        ab.finish()
        await echo.value
        return r
    }

    /// swift-async-algorithms' AsyncChannel pair (rendezvous, like ours with capacity 0).
    static func rttAsyncChannel(iterations: Int) async -> Double {
        let ab = AsyncChannel<Int>(), ba = AsyncChannel<Int>()
        let echo = Task.detached {
            for await v in ab { await ba.send(v) }
            ba.finish()
        }
        let r = await Task.detached { () async -> Double in
            var it = ba.makeAsyncIterator()
            for i in 0..<1_000 { await ab.send(i); _ = await it.next() }
            let t0 = Window.begin()
            for i in 0..<iterations { await ab.send(i); _ = await it.next() }
            return Double(Window.end(t0, ops: iterations)) / Double(iterations)
        }.value
        ab.finish()
        await echo.value
        return r
    }

    // MARK: throughput: `producers` tasks send `messages` in all into one consumer task.

    static func throughputSpindle(producers: Int, messages: Int, capacity: Int) async -> Double {
        let ch = Channel<Int>(capacity: capacity)
        let per = messages / producers
        let t0 = Window.begin()
        let consumer = Task.detached { () async throws -> Int in
            var n = 0
            while try await ch.receive() != nil { n += 1 }
            return n
        }
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<producers {
                g.addTask { for i in 0..<per { try? await ch.send(i) } }
            }
        }
        ch.close()
        let n = (try? await consumer.value) ?? 0
        return Double(n) / (Double(Window.end(t0, ops: n)) / 1e9)
    }

    static func throughputAsyncStream(producers: Int, messages: Int) async -> Double {
        let (stream, cont) = AsyncStream.makeStream(of: Int.self)
        let per = messages / producers
        let t0 = Window.begin()
        let consumer = Task.detached { () async -> Int in
            var n = 0
            for await _ in stream { n += 1 }
            return n
        }
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<producers {
                g.addTask { for i in 0..<per { cont.yield(i) } }
            }
        }
        cont.finish()
        let n = await consumer.value
        return Double(n) / (Double(Window.end(t0, ops: n)) / 1e9)
    }

    static func throughputAsyncChannel(producers: Int, messages: Int) async -> Double {
        let ch = AsyncChannel<Int>()
        let per = messages / producers
        let t0 = Window.begin()
        let consumer = Task.detached { () async -> Int in
            var n = 0
            for await _ in ch { n += 1 }
            return n
        }
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<producers {
                g.addTask { for i in 0..<per { await ch.send(i) } }
            }
        }
        ch.finish()
        let n = await consumer.value
        return Double(n) / (Double(Window.end(t0, ops: n)) / 1e9)
    }
}

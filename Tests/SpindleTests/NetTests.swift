@testable import Spindle
import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

private func makeRuntime(_ workers: Int = 2) throws -> Runtime {
    try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: workers, name: "net"))
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The number of open descriptors once it has stopped changing (for 50 ms; at most 5 s).
/// A runtime closes its own descriptors (epoll, eventfd) when it is freed, which is when
/// its last worker thread has let go of it, just after its shutdown returned: the previous
/// test's runtime can still be closing them when the next test starts, and a baseline
/// counted then is higher than what this test can ever get back to.
private func settledDescriptorCount() -> Int {
    var last = ProcessStats.openDescriptors()
    var stableSince = Sys.nowNanos()
    let giveUp = stableSince + 5_000_000_000
    while Sys.nowNanos() - stableSince < 50_000_000 && Sys.nowNanos() < giveUp {
        Sys.sleepThread(untilNanos: Sys.nowNanos() + 1_000_000)
        let now = ProcessStats.openDescriptors()
        if now != last { last = now; stableSince = Sys.nowNanos() }
    }
    return last
}

@Suite struct SocketAddressTests {
    @Test func parsesIPv4IPv6AndUnix() throws {
        let a = try SocketAddress("127.0.0.1:8080")
        #expect(a.host == "127.0.0.1" && a.port == 8080 && !a.isIPv6)
        #expect(a.description == "127.0.0.1:8080")
        let b = try SocketAddress("[::1]:443")
        #expect(b.host == "::1" && b.port == 443 && b.isIPv6)
        #expect(b.description == "[::1]:443")
        let c = try SocketAddress("unix:/tmp/x.sock")
        #expect(c.unixPath == "/tmp/x.sock" && c.port == nil)
        #expect(try SocketAddress(host: "10.1.2.3", port: 0).description == "10.1.2.3:0")
        #expect(SocketAddress.loopbackV6(port: 1) == (try SocketAddress("[::1]:1")))
    }

    @Test(arguments: [
        ("127.0.0.1", "missing ':port'"),
        ("127.0.0.1:http", "is not a number"),
        ("127.0.0.1:70000", "outside 0-65535"),
        ("::1:80", "must be written [address]:port"),
        ("[::1:80", "missing ']'"),
        ("300.1.1.1:80", "not a numeric IPv4 or IPv6 address"),
        ("example.com:80", "resolve host names"),
        (":80", "empty host"),
    ])
    func rejectsBadAddressesWithAReason(text: String, reason: String) {
        do {
            _ = try SocketAddress(text)
            Issue.record("\(text) parsed")
        } catch {
            guard case .invalidAddress(let t, let r) = error else { Issue.record("wrong error \(error)"); return }
            #expect(t == text)
            #expect(r.contains(reason), "\(r)")
        }
    }

    @Test func unixPathLimit() {
        #expect(throws: SocketError.self) { try SocketAddress(unixPath: String(repeating: "a", count: 108)) }
    }

    @Test func resolvesLocalhostOnTheBlockingPool() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let addrs = try rt.run { try await SocketAddress.resolve(host: "localhost", port: 80) }
        #expect(!addrs.isEmpty)
        #expect(addrs.allSatisfy { $0.port == 80 })
        let bad = try rt.run { () async -> SocketError? in
            do { _ = try await SocketAddress.resolve(host: "no-such-host.invalid", port: 80); return nil } catch { return error as? SocketError }
        }
        guard case .hostNotFound("no-such-host.invalid", _)? = bad else { Issue.record("got \(String(describing: bad))"); return }
    }
}

@Suite(.serialized) struct TCPTests {
    /// A task server echoing `n` bytes back per connection, a task client.
    @Test(arguments: ["127.0.0.1:0", "[::1]:0"])
    func taskEcho(address: String) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress(address), on: rt)
        let port = listener.localAddress.port!
        #expect(port != 0)
        let got = try rt.run { () async throws -> [UInt8] in
            let server = Task {
                let c = try await listener.accept()
                let msg = try await c.read(exactly: 5)
                try await c.write(msg.reversed())
                c.shutdownWriteQuietly()
            }
            let client = try await TCPStream.connect(to: listener.localAddress)
            #expect(client.noDelay)
            #expect(client.peerAddress?.port == port)
            try await client.write("hello")
            let back = try await client.read(exactly: 5)
            #expect(try await client.read(upTo: 10) == []) // the server half-closed
            try await server.value
            return back
        }
        #expect(got == bytes("olleh"))
    }

    /// The same client and server bodies, run as fibers with the blocking calls.
    @Test func fiberEchoManyRoundTrips() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let rounds = 1_000 / testScale
        let server = rt.spawnFiber { () throws -> Int in
            let c = try listener.accept()
            var n = 0
            while true {
                let b = try c.read(upTo: 1)
                if b.isEmpty { return n }
                try c.write(b)
                n += 1
            }
        }
        let client = rt.spawnFiber { () throws -> Int in
            let s = try TCPStream.connect(to: listener.localAddress)
            for i in 0..<rounds {
                try s.write([UInt8(i & 0xff)])
                let b = try s.read(exactly: 1)
                #expect(b == [UInt8(i & 0xff)])
            }
            try s.shutdownWrite()
            return rounds
        }
        // join blocks: from plain threads (inside this test's task it refuses).
        #expect(try onPlainThread { try client.join() } == rounds)
        #expect(try onPlainThread { try server.join() } == rounds)
    }

    /// A task's socket waits without a deadline reuse one waiter, kept by the descriptor
    /// between waits (no allocation per wait); a wait with a deadline that expires never
    /// leaves its waiter as that spare (its timeout holds it), and the bytes all arrive.
    @Test func taskSocketWaitsReuseTheDescriptorsSpare() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let rounds = 200 / testScale
        let (got, spares, timedOutSpareKept) = try rt.run { () async throws -> ([UInt8], Int, Bool) in
            let server = Task { () async throws -> TCPStream in
                let c = try await listener.accept()
                for _ in 0..<rounds { try await c.write(try await c.read(exactly: 1)) }
                return c
            }
            let client = try await TCPStream.connect(to: listener.localAddress)
            var got: [UInt8] = []
            var seen = Set<ObjectIdentifier>()
            for i in 0..<rounds {
                try await client.write([UInt8(i & 0x7f)])
                got += try await client.read(exactly: 1)
                if let spare = client.io.state.withLock({ $0.spare }) { seen.insert(ObjectIdentifier(spare)) }
            }
            let c = try await server.value
            // Nothing comes: this read's deadline passes.
            let before = client.io.state.withLock { $0.spare.map(ObjectIdentifier.init) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
            defer { buffer.deallocate() }
            do {
                _ = try await client.read(into: buffer, timeout: .milliseconds(1))
                Issue.record("a read with nothing sent returned")
            } catch SocketError.timedOut {}
            let after = client.io.state.withLock { $0.spare.map(ObjectIdentifier.init) }
            c.close()
            client.close()
            return (got, seen.count, before == after || after == nil)
        }
        var want: [UInt8] = []
        for i in 0..<rounds { want.append(UInt8(i & 0x7f)) }
        #expect(got == want)
        #expect(spares == 1)
        #expect(timedOutSpareKept)
    }

    /// A fiber whose waits alternate between a socket (its own waiter for `Void`), a
    /// channel of another element type (its own waiter changes type) and a read with a
    /// deadline that expires (a fresh waiter, whose timeout withdraws it after the call):
    /// every byte and value still arrives, in order, and a wait after an expired one is
    /// not cancelled by that old timeout.
    @Test func fiberWaitsAlternateBetweenSocketsChannelsAndDeadlines() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let rounds = 300 / testScale
        let relay = Channel<Int>(capacity: 0)
        let server = rt.spawnFiber { () throws -> [Int] in
            let c = try listener.accept()
            var got: [Int] = []
            var buffer = [UInt8](repeating: 0, count: 1)
            for _ in 0..<rounds {
                // Nothing is sent before this deadline: it expires.
                do {
                    _ = try buffer.withUnsafeMutableBytes { try c.read(into: $0, timeout: .milliseconds(1)) }
                    Issue.record("a read with nothing sent returned")
                } catch SocketError.timedOut {}
                try relay.send(-1)                      // let the client write
                let b = try c.read(exactly: 1)          // own waiter, type Void
                got.append(Int(b[0]))
                guard let v = try relay.receive() else { break } // own waiter, type Int
                got.append(v)
            }
            return got
        }
        let client = rt.spawnFiber { () throws -> Void in
            let s = try TCPStream.connect(to: listener.localAddress)
            for i in 0..<rounds {
                _ = try relay.receive()
                try s.write([UInt8(i & 0x7f)])
                try relay.send(1_000 + i)
            }
        }
        try onPlainThread { try client.join() }
        let got = try onPlainThread { try server.join() }
        var want: [Int] = []
        for i in 0..<rounds { want += [i & 0x7f, 1_000 + i] }
        #expect(got == want)
    }

    /// A fiber server and task clients, and a plain-thread client, on one listener.
    @Test func mixedWorlds() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let server = rt.spawnFiber { () throws -> Void in
            for _ in 0..<3 {
                let c = try listener.accept()
                try Fiber.spawn {
                    let b = try c.read(upTo: 100)
                    try c.write(b + b)
                }
            }
        }
        let fromTasks = try rt.run { () async throws -> [[UInt8]] in
            var out: [[UInt8]] = []
            for w in ["a", "b"] {
                let s = try await TCPStream.connect(to: listener.localAddress)
                try await s.write(w)
                out.append(try await s.read(exactly: 2))
            }
            return out
        }
        #expect(fromTasks == [bytes("aa"), bytes("bb")])
        // A plain thread with the blocking calls (inside this test's task they refuse); the
        // stream stays open until the end, as before.
        let (s, echoed) = try onPlainThread { () throws -> (TCPStream, [UInt8]) in
            let s = try TCPStream.connect(to: listener.localAddress, on: rt)
            try s.write("z")
            return (s, try s.read(exactly: 2))
        }
        #expect(echoed == bytes("zz"))
        try onPlainThread { try server.join() }
        withExtendedLifetime(s) {}
    }

    @Test func largeTransfersArriveIntact() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let size = 8 << 20 / testScale
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let echoed = try rt.run { () async throws -> [UInt8] in
            let server = Task {
                let c = try await listener.accept()
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = try await c.read(into: &buf)
                    if n == 0 { break }
                    try await c.write(Array(buf[0..<n]))
                }
                try c.shutdownWrite()
            }
            let s = try await TCPStream.connect(to: listener.localAddress)
            // Write and read at once: neither side's buffers can hold 8 MiB.
            let writer = Task { try await s.write(payload); try s.shutdownWrite() }
            var back: [UInt8] = []
            while true {
                let chunk = try await s.read(upTo: 65536)
                if chunk.isEmpty { break }
                back += chunk
            }
            try await writer.value
            try await server.value
            return back
        }
        #expect(echoed.count == payload.count)
        #expect(echoed == payload)
    }

    /// Data and the peer's FIN reported by one event, that event counted before the read:
    /// a short read must not make the next read wait for another event (none comes), the
    /// next read returns the end of the stream. Hung with the short-read shortcut before
    /// hang-ups were remembered.
    @Test(arguments: [false, true])
    func endOfStreamAfterAShortReadIsSeen(fiber: Bool) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let reads = try rt.run { () async throws -> [Int] in
            let client = try await TCPStream.connect(to: listener.localAddress)
            let server = try await listener.accept()
            try await server.write([UInt8](repeating: 7, count: 100))
            server.close()
            // Let an idle worker's reactor poll count the data-and-FIN event first.
            try await Spindle.sleep(for: .milliseconds(50))
            // A failure hangs; the watchdog turns the hang into a thrown `closed`.
            let watchdog = Task(executorPreference: rt) {
                try await Spindle.sleep(for: .seconds(10))
                client.close()
            }
            defer { watchdog.cancel() }
            if fiber {
                return try await rt.spawnFiber { () throws -> [Int] in
                    var buf = [UInt8](repeating: 0, count: 1000)
                    return [try client.read(into: &buf), try client.read(into: &buf)]
                }.value
            }
            var buf = [UInt8](repeating: 0, count: 1000)
            return [try await client.read(into: &buf), try await client.read(into: &buf)]
        }
        #expect(reads == [100, 0])
    }

    @Test func connectionRefused() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let addr = l.localAddress
        l.close()
        let e = try rt.run { () async -> SocketError? in
            do { _ = try await TCPStream.connect(to: addr); return nil } catch { return error as? SocketError }
        }
        #expect(e == .connectionRefused(addr))
        #expect(e?.description.contains("connection refused by 127.0.0.1") == true)
        // The blocking form, from a plain thread (inside this test's task it refuses).
        #expect(throws: SocketError.connectionRefused(addr)) { try onPlainThread { try TCPStream.connect(to: addr, on: rt) } }
    }

    @Test func addressInUse() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        #expect(throws: SocketError.addressInUse(l.localAddress)) {
            try TCPListener.bind(to: l.localAddress, on: rt)
        }
        // SO_REUSEPORT lets two listeners share a port.
        let a = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), reusePort: true, on: rt)
        let b = try TCPListener.bind(to: a.localAddress, reusePort: true, on: rt)
        #expect(a.localAddress == b.localAddress)
    }

    @Test func addressNotAvailable() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let addr = try SocketAddress("192.0.2.1:0") // TEST-NET-1: not this machine's
        #expect(throws: SocketError.addressNotAvailable(addr)) { try TCPListener.bind(to: addr, on: rt) }
    }

    /// A listener whose accept queue is full drops new SYNs: connect waits, then times out.
    @Test func connectTimesOut() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), backlog: 0, on: rt)
        // The blocking form, from a plain thread (inside this test's task it refuses); the
        // connections it made stay held until the end, as before.
        let (held, timedOut) = try onPlainThread { () throws -> ([TCPStream], Bool) in
            var held: [TCPStream] = []
            var timedOut = false
            for _ in 0..<16 {
                do {
                    held.append(try TCPStream.connect(to: l.localAddress, timeout: .milliseconds(200), on: rt))
                } catch SocketError.timedOut {
                    timedOut = true
                    break
                }
            }
            return (held, timedOut)
        }
        #expect(timedOut)
        // The async form.
        let e = try rt.run { () async -> SocketError? in
            do { _ = try await TCPStream.connect(to: l.localAddress, timeout: .milliseconds(100)); return nil } catch { return error as? SocketError }
        }
        #expect(e == .timedOut)
        #expect(rt.timers.count == 0)
        withExtendedLifetime(held) {}
    }

    /// Closing a socket with unread data sends a reset: the peer's read throws
    /// connectionReset and its writes fail (never with SIGPIPE).
    @Test func resetByPeerAndBrokenPipe() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let errors = try rt.run { () async throws -> (SocketError?, SocketError?) in
            let client = try await TCPStream.connect(to: l.localAddress)
            let server = try await l.accept()
            try await client.write("unread")
            // Wait until the data is in the server's receive buffer, then close unread.
            let fd = server.io.fd
            #expect(await waitUntil {
                var peek = [UInt8](repeating: 0, count: 16)
                return recv(fd, &peek, peek.count, Int32(MSG_PEEK | MSG_DONTWAIT)) == 6
            })
            server.close()
            var readError: SocketError?
            do { _ = try await client.read(upTo: 10) } catch { readError = error as? SocketError }
            var writeError: SocketError?
            for _ in 0..<100 {
                do { try await client.write("more") } catch { writeError = error as? SocketError; break }
            }
            return (readError, writeError)
        }
        #expect(errors.0 == .connectionReset)
        #expect(errors.1 == .brokenPipe || errors.1 == .connectionReset)
    }

    @Test func closingWakesAWaitingReaderWithAnError() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let e = try rt.run { () async throws -> SocketError? in
            let client = try await TCPStream.connect(to: l.localAddress)
            let server = try await l.accept()
            let reader = Task { () async -> SocketError? in
                do { _ = try await client.read(upTo: 10); return nil } catch { return error as? SocketError }
            }
            #expect(await waitUntil { client.io.state.withLock { $0.readers.count } == 1 }) // it waits
            client.close()
            _ = server
            return await reader.value
        }
        #expect(e == .closed)
        // A fiber blocked in accept, woken by close.
        let waiter = rt.spawnFiber { () throws -> Void in _ = try l.accept() }
        #expect(waitUntil { l.core.io.state.withLock { $0.readers.count } == 1 }) // it waits
        l.close()
        #expect(throws: SocketError.closed) { try onPlainThread { try waiter.join() } }  // join blocks: a plain thread's
    }

    @Test func cancellingAWaitingReadThrowsCancellation() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let wasCancel = try rt.run { () async throws -> Bool in
            let client = try await TCPStream.connect(to: l.localAddress)
            let t = Task { () async -> Bool in
                do { _ = try await client.read(upTo: 1); return false } catch { return error is CancellationError }
            }
            #expect(await waitUntil { client.io.state.withLock { $0.readers.count } == 1 }) // it waits
            t.cancel()
            return await t.value
        }
        #expect(wasCancel)
    }

    @Test func blockingCallsAreRefusedFromWorkerTasks() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let refused = try rt.run { () async -> Bool in
            do { _ = try { () throws -> TCPStream in try l.accept() }() } catch FiberError.blockingOnWorker { return true } catch {}
            return false
        }
        #expect(refused)
    }

    /// A fiber's sockets move to its worker's own backend when it first waits on them, so
    /// their events wake that worker and never cross threads, whichever workers the two
    /// fibers start on; tasks waiting on such a socket still get its events; closing one
    /// while a fiber waits fails the wait; nothing leaks (checked by the next test too).
    @Test func fiberSocketsAreWatchedByTheirOwnWorker() throws {
        let before = settledDescriptorCount()
        do {
            let rt = try makeRuntime()
            defer { rt.shutdown() }
            let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
            let server = rt.spawnFiber { () throws -> TCPStream in
                let c = try l.accept()
                var buf: [UInt8] = [0]
                for _ in 0..<500 { _ = try c.read(into: &buf); try c.write(buf) }
                return c
            }
            let hopsAfterWarmUp = Atomic<Int>(-1)
            let client = rt.spawnFiber { () throws -> TCPStream in
                let s = try TCPStream.connect(to: l.localAddress)
                var buf: [UInt8] = [7]
                for i in 0..<500 {
                    // By now both fibers have waited on their sockets, so both sockets sit in
                    // their workers' own backends.
                    if i == 20 { hopsAfterWarmUp.store(rt.statistics.remoteFiberResumes, ordering: .relaxed) }
                    try s.write([UInt8(truncatingIfNeeded: i)])
                    _ = try s.read(into: &buf)
                    if buf[0] != UInt8(truncatingIfNeeded: i) { throw SocketError.unexpectedEOF(expected: 1, received: 0) }
                }
                return s
            }
            // join blocks: from plain threads (inside this test's task it refuses).
            let (c, s) = try onPlainThread { (try server.join(), try client.join()) }
            // Once adopted, no event of theirs crosses threads. Before (the first accept and
            // connect), a listener's event may still be polled by the shared reactor on the
            // other worker, once: seen in 1 of ~7 full-suite runs, since the Monitor can hand
            // the shared reactor to the other worker while this one's thread is preempted.
            let warm = hopsAfterWarmUp.load(ordering: .relaxed)
            #expect(warm >= 0 && warm <= 2, "\(warm) thread hops while the sockets were adopted")
            #expect(rt.statistics.remoteFiberResumes == warm, "events of adopted sockets crossed threads")
            // A task now reads from the client's socket (watched by a worker's own backend).
            let got = try rt.run { () async throws -> [UInt8] in
                async let r = s.read(exactly: 3)
                #expect(await waitUntil { s.io.state.withLock { $0.readers.count } == 1 }) // the read waits first
                try await c.write([1, 2, 3])
                return try await r
            }
            #expect(got == [1, 2, 3])
            // A fiber waiting on such a socket wakes with `closed` when it is closed.
            let waiting = rt.spawnFiber { () throws -> Int in
                var buf: [UInt8] = [0]
                return try c.read(into: &buf)
            }
            #expect(waitUntil { c.io.state.withLock { $0.readers.count } == 1 }) // it waits
            c.close()
            #expect(throws: SocketError.closed) { try onPlainThread { try waiting.join() } }
            s.close()
            l.close()
        }
        let giveUp = Sys.nowNanos() + 5_000_000_000
        while ProcessStats.openDescriptors() != before && Sys.nowNanos() < giveUp {
            Sys.sleepThread(untilNanos: Sys.nowNanos() + 1_000_000)
        }
        #expect(ProcessStats.openDescriptors() == before)
    }

    @Test func noDescriptorLeaks() throws {
        let before = ProcessStats.openDescriptors()
        do {
            let rt = try makeRuntime()
            let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
            try rt.run {
                for _ in 0..<50 {
                    let c = try await TCPStream.connect(to: l.localAddress)
                    let s = try await l.accept()
                    try await c.write("x")
                    _ = try await s.read(exactly: 1)
                }
                // Failures must not leak either.
                _ = try? await TCPStream.connect(to: SocketAddress("127.0.0.1:1"))
                _ = try? TCPListener.bind(to: l.localAddress)
            }
            let u = try UDPSocket.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
            _ = u
            let (a, b) = try UnixStream.pair(on: rt)
            _ = (a, b)
            rt.shutdown()
        }
        // The runtime's own descriptors (epoll, eventfd) close when it is freed, which is
        // when its last worker thread has let go of it: shortly after shutdown returns.
        let giveUp = Sys.nowNanos() + 5_000_000_000
        while ProcessStats.openDescriptors() != before && Sys.nowNanos() < giveUp {
            Sys.sleepThread(untilNanos: Sys.nowNanos() + 1_000_000)
        }
        #expect(ProcessStats.openDescriptors() == before)
    }

    @Test func socketOptions() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let l = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        // The blocking forms, from plain threads (inside this test's task they refuse).
        let s = try onPlainThread { try TCPStream.connect(to: l.localAddress, on: rt) }
        #expect(s.noDelay)
        try s.setNoDelay(false)
        #expect(!s.noDelay)
        #expect(!s.keepAlive)
        try s.setKeepAlive(true)
        #expect(s.keepAlive)
        #expect(s.localAddress?.host == "127.0.0.1")
        s.close()
        #expect(throws: SocketError.closed) { try s.setNoDelay(true) }
        #expect(throws: SocketError.closed) { try onPlainThread { try s.write("x") } }
    }
}

@Suite(.serialized) struct UDPAndUnixTests {
    @Test func udpSendAndReceiveWithAddresses() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let a = try UDPSocket.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let b = try UDPSocket.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let got = try rt.run { () async throws -> Datagram in
            try await a.send(bytes("ping"), to: b.localAddress!)
            return try await b.receive()
        }
        #expect(got.bytes == bytes("ping"))
        #expect(got.sender == a.localAddress)
        // Connected, from a fiber.
        let f = rt.spawnFiber { () throws -> [UInt8] in
            try b.connect(to: a.localAddress!)
            try b.send(bytes("pong"))
            return try a.receive(maxBytes: 100).bytes
        }
        // The blocking forms, from plain threads (inside this test's task they refuse).
        #expect(try onPlainThread { try f.join() } == bytes("pong"))
        // IPv6.
        let c = try UDPSocket.bind(to: SocketAddress("[::1]:0"), on: rt)
        let six = try onPlainThread { () throws -> [UInt8] in
            try c.send(bytes("six"), to: c.localAddress!)
            return try c.receive().bytes
        }
        #expect(six == bytes("six"))
    }

    @Test func unixListenerAndPair() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let path = "/tmp/spindle-test-\(getpid()).sock"
        let l = try UnixListener.bind(path: path, removeExisting: true, on: rt)
        #expect(throws: SocketError.addressInUse(try SocketAddress(unixPath: path))) {
            try UnixListener.bind(path: path, on: rt)
        }
        let got = try rt.run { () async throws -> [UInt8] in
            let server = Task {
                let c = try await l.accept()
                try await c.write(try await c.read(exactly: 3))
            }
            let s = try await UnixStream.connect(path: path)
            try await s.write("abc")
            let r = try await s.read(exactly: 3)
            try await server.value
            return r
        }
        #expect(got == bytes("abc"))
        l.close()
        #expect(access(path, F_OK) != 0) // the socket file is gone
        let (x, y) = try UnixStream.pair(on: rt)
        let f = rt.spawnFiber { () throws -> [UInt8] in try y.read(exactly: 2) }
        // The blocking forms, from plain threads (inside this test's task they refuse).
        try onPlainThread { try x.write("hi") }
        #expect(try onPlainThread { try f.join() } == bytes("hi"))
    }
}

extension StreamSocket {
    func shutdownWriteQuietly() { try? shutdownWrite() }
}

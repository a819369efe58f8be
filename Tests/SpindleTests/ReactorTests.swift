@testable import Spindle
import CSpindle
import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The reactor's contract, driven by hand through the fake backend: this test thread is
/// the poller, plain threads are the waiters.
@Suite(.serialized) struct ReactorTests {
    private func descriptor() -> Int32 { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }

    @Test func anEventWakesTheWaiterOfItsDirectionOnly() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "r"))
        defer { rt.shutdown() }
        let fake = FakeBackend()
        let reactor = Reactor(backend: fake)
        let h = try IOHandle(fd: descriptor(), runtime: rt, reactor: reactor)
        let token = try #require(fake.token(of: h.fd))
        let readerDone = Flag()
        let ticket = h.ticket(.read)
        let reader = try startThread {
            try? h.block(.read, since: ticket)
            readerDone.set()
        }
        while h.state.withLock({ $0.readers.count }) == 0 { sched_yield() }
        // A write event: the reader stays.
        fake.inject(token: token, .writable)
        #expect(reactor.poll(timeoutNanos: 0) == 1)
        #expect(!readerDone.isSet)
        #expect(h.state.withLock { $0.readers.count } == 1)
        fake.inject(token: token, .readable)
        reactor.poll(timeoutNanos: 0)
        reader.join()
        #expect(readerDone.isSet)
        // An event that arrived after the ticket completes a later wait at once.
        try h.block(.read, since: ticket)
        h.close()
    }

    @Test func staleTokensOfAReusedSlotAreDropped() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "r"))
        defer { rt.shutdown() }
        let fake = FakeBackend()
        let reactor = Reactor(backend: fake)
        let old = try IOHandle(fd: descriptor(), runtime: rt, reactor: reactor)
        let oldToken = try #require(fake.token(of: old.fd))
        old.close()
        #expect(reactor.registrationCount == 0)
        let new = try IOHandle(fd: descriptor(), runtime: rt, reactor: reactor)
        let newToken = try #require(fake.token(of: new.fd))
        #expect(newToken >> Reactor.generationBits == oldToken >> Reactor.generationBits) // same slot
        #expect(newToken != oldToken) // another generation
        let before = new.ticket(.read)
        fake.inject(token: oldToken, .readable)
        #expect(reactor.poll(timeoutNanos: 0) == 0)
        #expect(new.ticket(.read) == before)
        fake.inject(token: newToken, .readable)
        #expect(reactor.poll(timeoutNanos: 0) == 1)
        #expect(new.ticket(.read) == before + 1)
        new.close()
    }

    @Test func wakeEndsAPollAndClosingFailsWaiters() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "r"))
        defer { rt.shutdown() }
        let fake = FakeBackend()
        let reactor = Reactor(backend: fake)
        let poller = try startThread { reactor.poll(timeoutNanos: nil) }
        while fake.pollCount == 0 { sched_yield() }
        fake.wake()
        poller.join() // returns: the wake ended the endless poll

        let h = try IOHandle(fd: descriptor(), runtime: rt, reactor: reactor)
        let failure = Lock<(any Error)?>(nil)
        let t = h.ticket(.write)
        let waiter = try startThread {
            do { try h.block(.write, since: t) } catch { failure.withLock { $0 = error } }
        }
        while h.state.withLock({ $0.writers.count }) == 0 { sched_yield() }
        h.close()
        waiter.join()
        #expect(failure.withLock { $0 as? SocketError } == .closed)
        #expect(throws: SocketError.closed) { try h.enter() }
    }

    @Test func shutdownFailsEveryWaiter() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "r"))
        let (a, b) = try UnixStream.pair(on: rt)
        defer { withExtendedLifetime(b) {} } // the peer stays open: reads would wait
        let f = rt.spawnFiber { () throws -> Void in _ = try a.read(upTo: 1) }
        Sys.sleepThread(untilNanos: Sys.nowNanos() + 10_000_000)
        rt.shutdown()
        // The blocking forms, from plain threads (inside this test's task they refuse).
        #expect(throws: (any Error).self) { try onPlainThread { try f.join() } }
        #expect(throws: SocketError.runtimeShutDown) { _ = try onPlainThread { try a.read(upTo: 1) } }
    }

    /// The real backend: readiness reaches a task through a parked worker.
    @Test func epollDeliversToATaskOnAParkedRuntime() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "r"))
        defer { rt.shutdown() }
        let (a, b) = try UnixStream.pair(on: rt)
        let reader = Task(executorPreference: rt) { try await a.read(exactly: 3) }
        Sys.sleepThread(untilNanos: Sys.nowNanos() + 20_000_000) // every worker parks
        try onPlainThread { try b.write("abc") } // blocking form: a plain thread's
        let got = try rt.run { try await reader.value }
        #expect(got == Array("abc".utf8))
    }
}

@Suite(.serialized) struct SignalTests {
    @Test func deliveredSignalsArriveInTheStream() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "sig"))
        defer { rt.shutdown() }
        let stream = try SignalStream([.user1, .user2], on: rt)
        #expect(throws: SignalError.alreadyWatched(.user1)) { try SignalStream([.user1], on: rt) }
        #expect(throws: SignalError.cannotWatch(UnixSignal(rawValue: SIGKILL))) { try SignalStream([UnixSignal(rawValue: SIGKILL)], on: rt) }
        let got = try rt.run { () async throws -> [UnixSignal] in
            kill(getpid(), SIGUSR1)
            var out: [UnixSignal] = []
            out.append(try await stream.next()!)
            kill(getpid(), SIGUSR2)
            out.append(try await stream.next()!)
            return out
        }
        #expect(got == [.user1, .user2])
        // From a fiber.
        let f = rt.spawnFiber { () throws -> UnixSignal? in try stream.next() }
        Sys.sleepThread(untilNanos: Sys.nowNanos() + 10_000_000)
        kill(getpid(), SIGUSR2)
        // The blocking forms, from plain threads (inside this test's task they refuse).
        #expect(try onPlainThread { try f.join() } == .user2)
        stream.stop()
        #expect(try onPlainThread { try stream.next() } == nil)
        // Watchable again once stopped.
        let again = try SignalStream([.user1], on: rt)
        again.stop()
    }
}

/// Running out of descriptors: connect reports it as a typed error, accept backs off
/// instead of spinning, and the server keeps serving the connection it already has.
@Suite(.serialized) struct DescriptorExhaustionTests {
    @Test func acceptBacksOffAndTheServerKeepsServing() throws {
        var original = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original)
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "fd"))
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let served = Lock(0)
        // After its first connection the server waits for this gate, so the clients below
        // take every spare descriptor and leave their connections queued in the kernel:
        // only then must accept run out. (Accepting as they came in, the server could take
        // half the spare descriptors itself, leave nothing queued, and never run out: a
        // loaded machine's scheduling decided it, and one full-suite run did so.)
        let gate = Channel<Void>(capacity: 1)
        let server = Task(executorPreference: rt) {
            var first = true
            while true {
                let c = try await listener.accept()
                served.withLock { $0 += 1 }
                Task(executorPreference: rt) {
                    while true {
                        let b = try await c.read(upTo: 16)
                        if b.isEmpty { return }
                        try await c.write(b)
                    }
                }
                if first {
                    first = false
                    _ = try await gate.receive()
                }
            }
        }
        // The blocking forms, from plain threads (inside this test's task they refuse).
        let first = try onPlainThread { try TCPStream.connect(to: listener.localAddress, on: rt) }
        try onPlainThread { try first.write("1") }
        #expect(try onPlainThread { try first.read(exactly: 1) } == Array("1".utf8))

        // Leave room for a few descriptors only.
        var limited = original
        limited.rlim_cur = rlim_t(ProcessStats.openDescriptors() + 4)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limited)
        let (clients, connectError) = try onPlainThread { () -> ([TCPStream], SocketError?) in
            var clients: [TCPStream] = []
            var connectError: SocketError?
            for _ in 0..<16 {
                do { clients.append(try TCPStream.connect(to: listener.localAddress, timeout: .seconds(2), on: rt)) } catch {
                    connectError = error as? SocketError
                    break
                }
            }
            return (clients, connectError)
        }
        #expect(connectError == .tooManyOpenFiles)
        #expect(!clients.isEmpty)
        try onPlainThread { try gate.send(()) }
        // Some connections wait in the kernel's queue: accept must be backing off.
        let giveUp = Sys.nowNanos() + 5_000_000_000
        while listener.descriptorBackoffCount == 0 && Sys.nowNanos() < giveUp {
            Sys.sleepThread(untilNanos: Sys.nowNanos() + 5_000_000)
        }
        #expect(listener.descriptorBackoffCount > 0)
        // Not spinning: count what a spinning accept loop would do (retry accept, get a
        // readiness event per retry) over a 100 ms window, instead of budgeting CPU time
        // (which a loaded machine cannot honour). With the backoff (5 ms, doubling) at most
        // ~5 waits start in 100 ms, and a loaded machine only makes that fewer; a loop
        // without backoff would retry thousands of times. The bounds are generous: 4×.
        let backoffsBefore = listener.descriptorBackoffCount
        let eventsBefore = rt.statistics.ioEvents
        Sys.sleepThread(untilNanos: Sys.nowNanos() + 100_000_000)
        #expect(listener.descriptorBackoffCount - backoffsBefore <= 20)
        #expect(rt.statistics.ioEvents - eventsBefore <= 40)
        // The existing connection is still served.
        try onPlainThread { try first.write("2") }
        #expect(try onPlainThread { try first.read(exactly: 1) } == Array("2".utf8))

        // Descriptors back: the queued connections are accepted.
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &original)
        let queued = clients.count
        let want = 1 + queued
        let deadline = Sys.nowNanos() + 5_000_000_000
        while served.withLock({ $0 }) < want && Sys.nowNanos() < deadline {
            Sys.sleepThread(untilNanos: Sys.nowNanos() + 5_000_000)
        }
        #expect(served.withLock { $0 } == want)
        server.cancel()
        listener.close()
    }
}

/// Runtime.statistics: what the echo benchmark reports as thread hops per request.
@Suite(.serialized) struct StatisticsTests {
    @Test func oneWorkerCountsEventsAndNoHops() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "stats"))
        defer { rt.shutdown() }
        let listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let before = rt.statistics
        try rt.run {
            let client = try await TCPStream.connect(to: listener.localAddress)
            let server = try await listener.accept()
            async let served: Void = {
                var buf: [UInt8] = [0]
                for _ in 0..<100 { _ = try await server.read(into: &buf); try await server.write(buf) }
            }()
            var buf: [UInt8] = [0]
            for _ in 0..<100 { try await client.write([1]); _ = try await client.read(into: &buf) }
            try await served
        }
        let after = rt.statistics
        // One worker: the client's read runs before the server task can answer, so each of
        // its 100 reads found nothing and waited for an event.
        #expect(after.ioEvents - before.ioEvents >= 100)
        #expect(after.stolenJobs == 0) // nobody to steal from
        #expect(after.remoteFiberResumes == 0)
    }

    @Test func hopsAreCounted() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "stats"))
        defer { rt.shutdown() }
        // A parked fiber woken by a plain thread: its resume crosses threads. (If the send
        // came before the fiber parked, nothing parked: try again, bounded.)
        let ch = Channel<Int>(capacity: 0)
        for round in 0..<50 where rt.statistics.remoteFiberResumes == 0 {
            let fiber = rt.spawnFiber { () throws -> Int? in try ch.receive() }
            Sys.sleepThread(untilNanos: Sys.nowNanos() + 10_000_000)
            // From a plain thread (inside this test's task the blocking forms refuse).
            try onPlainThread { try ch.send(round) }
            #expect(try onPlainThread { try fiber.join() } == round)
        }
        #expect(rt.statistics.remoteFiberResumes >= 1)
        // Jobs queued on one worker and run by the other: batches of spinning tasks from one
        // task, until the idle worker has stolen some (bounded: 5 s).
        let deadline = Sys.nowNanos() + 5_000_000_000
        while rt.statistics.stolenJobs == 0 && Sys.nowNanos() < deadline {
            try rt.run {
                await withTaskGroup(of: Void.self) { g in
                    for _ in 0..<200 {
                        g.addTask { let end = Sys.nowNanos() + 20_000; while Sys.nowNanos() < end {} }
                    }
                }
            }
        }
        #expect(rt.statistics.stolenJobs > 0)
    }
}

/// A plain thread to join.
final class TestThread: Sendable {
    private let finished = Flag()
    init(_ body: @escaping @Sendable () -> Void) throws {
        try OSThread.spawn(name: "test") { [finished] in
            body()
            finished.set()
        }
    }
    func join() { while !finished.isSet { Sys.sleepThread(untilNanos: Sys.nowNanos() + 100_000) } }
}

func startThread(_ body: @escaping @Sendable () -> Void) throws -> TestThread { try TestThread(body) }

// Sizes that come from outside (a length prefix sent by a peer, a caller's argument) must
// neither trap nor make the process allocate what never arrives: negative sizes throw a
// typed error, and read buffers grow with the bytes received.
@testable import Spindle
import Testing
#if canImport(Glibc)
import Glibc
#endif

private func makeRuntime() throws -> Runtime {
    try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "input"))
}

/// The error `body` throws, if any.
private func error(of body: () async throws -> Void) async -> (any Error)? {
    do { try await body(); return nil } catch { return error }
}

private func error(of body: () throws -> Void) -> (any Error)? {
    do { try body(); return nil } catch { return error }
}

/// True if `e` is `SocketError.invalidArgument` whose text names `value`.
private func isInvalidArgument(_ e: (any Error)?, naming value: String) -> Bool {
    guard case .invalidArgument(let why)? = e as? SocketError else { return false }
    return why.contains(value)
}

private let tenBytes = Array("0123456789".utf8)
private let huge = 1 << 40
/// Far below the 1 TiB asked for, far above what a 64 KiB first buffer costs.
private let rssLimit = 100 << 20

// The blocking calls run on plain threads (onPlainThread): inside a task, which is where
// Swift Testing runs a synchronous test, the blocking forms refuse (BlockingPolicy).
@Suite(.serialized) struct InputHardeningTests {
    /// Before: `read(exactly: -1)` trapped (an array of count -1: the test process died);
    /// `read(upTo: -1)` and `receive(maxBytes: -1)` quietly read one byte.
    @Test func negativeSizesThrowATypedError() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let (x, y) = try UnixStream.pair(on: rt)
        try onPlainThread { try x.write(tenBytes) }
        let udp = try UDPSocket.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        try onPlainThread { _ = try udp.send(tenBytes, to: udp.localAddress!) }
        // Tasks.
        let fromTask = try rt.run { () async -> [Bool] in
            [
                isInvalidArgument(await error { _ = try await y.read(exactly: -1) }, naming: "-1"),
                isInvalidArgument(await error { _ = try await y.read(upTo: -1) }, naming: "-1"),
                isInvalidArgument(await error { _ = try await udp.receive(maxBytes: -1) }, naming: "-1"),
            ]
        }
        #expect(fromTask == [true, true, true])
        // Fibers.
        let fromFiber = try onPlainThread { try rt.spawnFiber { () -> [Bool] in
            [
                isInvalidArgument(error { _ = try y.read(exactly: -5) }, naming: "-5"),
                isInvalidArgument(error { _ = try y.read(upTo: -5) }, naming: "-5"),
                isInvalidArgument(error { _ = try udp.receive(maxBytes: -5) }, naming: "-5"),
            ]
        }.join() }
        #expect(fromFiber == [true, true, true])
        // Nothing was consumed by the refused calls.
        #expect(try onPlainThread { try y.read(exactly: 10) } == tenBytes)
        #expect(try onPlainThread { try udp.receive().bytes } == tenBytes)
        let e = SocketError.invalidArgument("read(exactly:) needs a byte count of 0 or more, got -1")
        #expect(e.description.contains("invalid argument"))
    }

    /// A peer announces 1 TiB, sends 10 bytes and hangs up. Before: the read allocated
    /// and zeroed the whole 1 TiB up front (the allocation failed: the process died).
    @Test(arguments: [false, true])
    func aHugeExactReadOfAShortStreamThrowsEOFWithoutAllocating(fiber: Bool) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let (x, y) = try UnixStream.pair(on: rt)
        try onPlainThread { try x.write(tenBytes) }
        x.close()
        let before = ProcessStats.residentBytes()
        let e: (any Error)?
        if fiber {
            e = try onPlainThread { try rt.spawnFiber { () -> (any Error)? in error { _ = try y.read(exactly: huge) } }.join() }
        } else {
            e = try rt.run { await error { _ = try await y.read(exactly: huge) } }
        }
        #expect(e as? SocketError == .unexpectedEOF(expected: huge, received: 10), "\(String(describing: e))")
        #expect(ProcessStats.residentBytes() - before < rssLimit)
    }

    /// Before: the same up-front allocation of the maximum.
    @Test(arguments: [false, true])
    func aHugeReadUpToReturnsWhatArrived(fiber: Bool) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let (x, y) = try UnixStream.pair(on: rt)
        try onPlainThread { try x.write(tenBytes) }
        let before = ProcessStats.residentBytes()
        let got: [UInt8]
        if fiber {
            got = try onPlainThread { try rt.spawnFiber { () throws -> [UInt8] in try y.read(upTo: huge) }.join() }
        } else {
            got = try rt.run { try await y.read(upTo: huge) }
        }
        #expect(got == tenBytes)
        #expect(ProcessStats.residentBytes() - before < rssLimit)
    }

    /// The first buffer is small, but a read still returns everything that has arrived,
    /// up to the maximum: 100 KiB queued before the call come back in one call.
    @Test(arguments: [false, true])
    func aReadUpToReturnsMoreThanItsFirstBufferWhenMoreHasArrived(fiber: Bool) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let (x, y) = try UnixStream.pair(on: rt)
        let payload = (0..<(100 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try onPlainThread { try x.write(payload) }
        x.close()
        let reads: [[UInt8]]
        if fiber {
            reads = try onPlainThread { try rt.spawnFiber { () throws -> [[UInt8]] in [try y.read(upTo: 1 << 20), try y.read(upTo: 1 << 20)] }.join() }
        } else {
            reads = try rt.run { [try await y.read(upTo: 1 << 20), try await y.read(upTo: 1 << 20)] }
        }
        #expect(reads.first == payload)
        #expect(reads.last == [])
        // And never more than asked for.
        let (a, b) = try UnixStream.pair(on: rt)
        try onPlainThread { try a.write(payload) }
        #expect(try onPlainThread { try b.read(upTo: 70_000).count } == 70_000)
        #expect(try onPlainThread { try b.read(upTo: 1 << 20).count } == payload.count - 70_000)
    }

    /// An exact read larger than the first buffer, fed in pieces by a writer, arrives
    /// intact (the buffer grows as bytes come).
    @Test(arguments: [false, true])
    func aLargeExactReadGrowsItsBufferAsBytesCome(fiber: Bool) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let (x, y) = try UnixStream.pair(on: rt)
        let size = (3 << 20) + 12_345
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 3) }
        let writer = rt.spawnFiber { () throws in
            var sent = 0
            while sent < size {
                let n = min(50_000, size - sent)
                try x.write(payload[sent..<(sent + n)])
                sent += n
            }
        }
        let got: [UInt8]
        if fiber {
            got = try onPlainThread { try rt.spawnFiber { () throws -> [UInt8] in try y.read(exactly: size) }.join() }
        } else {
            got = try rt.run { try await y.read(exactly: size) }
        }
        try onPlainThread { try writer.join() }
        #expect(got.count == size)
        #expect(got == payload)
    }

    /// A datagram is at most 65,535 bytes, so a larger maximum needs no larger buffer.
    /// Before: 1 TiB allocated (the process died).
    @Test(arguments: [false, true])
    func aHugeDatagramMaximumAllocatesOnlyWhatADatagramCanHold(fiber: Bool) throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let a = try UDPSocket.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let b = try UDPSocket.bind(to: SocketAddress("127.0.0.1:0"), on: rt)
        let big = [UInt8](repeating: 9, count: 65_507) // IPv4's largest UDP payload
        try onPlainThread {
            _ = try a.send(tenBytes, to: b.localAddress!)
            _ = try a.send(big, to: b.localAddress!)
        }
        let before = ProcessStats.residentBytes()
        let got: [Datagram]
        if fiber {
            got = try onPlainThread { try rt.spawnFiber { () throws -> [Datagram] in [try b.receive(maxBytes: huge), try b.receive(maxBytes: huge)] }.join() }
        } else {
            got = try rt.run { [try await b.receive(maxBytes: huge), try await b.receive(maxBytes: huge)] }
        }
        #expect(got.map(\.bytes) == [tenBytes, big])
        #expect(got.first?.sender == a.localAddress)
        #expect(ProcessStats.residentBytes() - before < rssLimit)
    }
}

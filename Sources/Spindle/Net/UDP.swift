// UDP: datagram sockets over IPv4 and IPv6, for tasks and fibers (same-name async and
// blocking calls, as for streams).
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

/// One received datagram and who sent it.
public struct Datagram: Sendable, Equatable {
    public var bytes: [UInt8]
    public var sender: SocketAddress?
    public init(bytes: [UInt8], sender: SocketAddress?) {
        self.bytes = bytes
        self.sender = sender
    }
}

public final class UDPSocket: Sendable, CustomStringConvertible {
    let io: IOHandle

    init(io: IOHandle) { self.io = io }

    deinit { io.close() }

    /// A socket bound to `address` (port 0: any free port).
    /// - Throws: ``SocketError/addressInUse(_:)``, ``SocketError/addressNotAvailable(_:)``…
    public static func bind(to address: SocketAddress, reuseAddress: Bool = false, on runtime: Runtime? = nil) throws(SocketError) -> UDPSocket {
        if address.unixPath != nil { throw .invalidAddress(address.description, reason: "a UDP socket needs an IP address") }
        let rt = try Runtime.forIO(runtime)
        let fd: Int32
        do { fd = try Sys.socket(family: address.family, type: spindle_sock_dgram_type) } catch { throw SocketError(error, address: address) }
        let io = try IOHandle(fd: fd, runtime: rt)
        do throws(SysError) {
            if reuseAddress { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
            try address.withSockAddr { sa, len throws(SysError) in try Sys.bind(fd, sa, len) }
        } catch {
            io.close()
            throw SocketError(error, address: address)
        }
        return UDPSocket(io: io)
    }

    /// Sets the default peer: `send(_:)` goes there and only its datagrams are received.
    public func connect(to address: SocketAddress) throws(SocketError) {
        try io.withDescriptor { fd throws(SysError) in
            guard case .ok = try address.withSockAddr({ sa, len throws(SysError) in try Sys.connect(fd, sa, len) }) else {
                throw SysError(errno: EAGAIN, call: "connect")
            }
        }
    }

    public var localAddress: SocketAddress? { try? io.withDescriptor { fd throws(SysError) in Sys.localAddress(fd) } }

    /// Sends one datagram to `address`; returns the bytes sent (all of them).
    @discardableResult
    public func send(_ bytes: [UInt8], to address: SocketAddress) async throws -> Int {
        try await io.perform(.write, address: address) { fd throws(SysError) in try UDPSocket.sendTo(fd, bytes, address) }
    }

    /// Sends one datagram to the connected peer.
    @discardableResult
    public func send(_ bytes: [UInt8]) async throws -> Int {
        try await io.perform(.write) { fd throws(SysError) in try UDPSocket.sendTo(fd, bytes, nil) }
    }

    /// Receives one datagram (truncated to `maxBytes`). A datagram holds at most 65,535
    /// bytes, so no larger buffer is ever allocated, whatever `maxBytes` says.
    /// - Throws: ``SocketError/invalidArgument(_:)`` if `maxBytes` is negative.
    public func receive(maxBytes: Int = 65536) async throws -> Datagram {
        var buf = try UDPSocket.receiveBuffer(maxBytes)
        let (n, from) = try await io.perform(.read) { fd throws(SysError) in
            try buf.withUnsafeMutableBytes { b in Result { () throws(SysError) in try Sys.receiveFrom(fd, b) } }.get()
        }
        buf.removeSubrange(n...)
        return Datagram(bytes: buf, sender: from)
    }

    /// Fiber/thread form of ``send(_:to:)-([UInt8],_)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    @discardableResult
    public func send(_ bytes: [UInt8], to address: SocketAddress) throws -> Int {
        try io.performBlocking("UDPSocket.send(_:to:)", .write, address: address) { fd throws(SysError) in try UDPSocket.sendTo(fd, bytes, address) }
    }

    /// Fiber/thread form of ``send(_:)-([UInt8])``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    @discardableResult
    public func send(_ bytes: [UInt8]) throws -> Int {
        try io.performBlocking("UDPSocket.send(_:)", .write) { fd throws(SysError) in try UDPSocket.sendTo(fd, bytes, nil) }
    }

    /// Fiber/thread form of ``receive(maxBytes:)-(Int)``.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func receive(maxBytes: Int = 65536) throws -> Datagram {
        var buf = try UDPSocket.receiveBuffer(maxBytes)
        let (n, from) = try io.performBlocking("UDPSocket.receive(maxBytes:)", .read) { fd throws(SysError) in
            try buf.withUnsafeMutableBytes { b in Result { () throws(SysError) in try Sys.receiveFrom(fd, b) } }.get()
        }
        buf.removeSubrange(n...)
        return Datagram(bytes: buf, sender: from)
    }

    /// Closes the socket; waiting calls throw ``SocketError/closed``.
    public func close() { io.close() }

    public var description: String { "UDPSocket(\(localAddress.map { "\($0)" } ?? "?"))" }

    /// The largest UDP payload: a 16-bit length (IPv4 leaves 65,507 of it for data).
    static let largestDatagram = 65_535

    private static func receiveBuffer(_ maxBytes: Int) throws(SocketError) -> [UInt8] {
        if maxBytes < 0 { throw .invalidArgument("receive(maxBytes:) needs a maximum of 0 or more bytes, got \(maxBytes)") }
        return [UInt8](repeating: 0, count: min(max(1, maxBytes), largestDatagram))
    }

    private static func sendTo(_ fd: Int32, _ bytes: [UInt8], _ address: SocketAddress?) throws(SysError) -> Sys.Outcome<Int> {
        try bytes.withUnsafeBytes { b in
            Result { () throws(SysError) in
                if let address {
                    return try address.withSockAddr { sa, len throws(SysError) in try Sys.sendTo(fd, b, sa, len) }
                }
                return try Sys.sendTo(fd, b, nil, 0)
            }
        }.get()
    }
}

// Transport: the byte stream under one HTTP connection, plain TCP or TLS over it, with
// the few calls the HTTP code makes, in both worlds. An enum rather than a protocol, so
// the plain path is a switch, not an existential call.
import Spindle
import SpindleTLS

enum Transport: Sendable {
    case plain(TCPStream)
    case tls(TLSStream)

    /// The TCP connection (closing it wakes every wait, TLS ones included).
    var tcp: TCPStream {
        switch self {
        case .plain(let s): return s
        case .tls(let s): return s.socket
        }
    }

    var runtime: Runtime { tcp.runtime }
    var peerAddress: SocketAddress? { tcp.peerAddress }
    var isTLS: Bool { if case .tls = self { return true } else { return false } }

    func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) async throws -> Int {
        switch self {
        case .plain(let s): return try await s.read(into: buffer, timeout: timeout)
        case .tls(let s): return try await s.read(into: buffer, timeout: timeout)
        }
    }

    func write(_ bytes: ArraySlice<UInt8>, timeout: Duration?) async throws {
        switch self {
        case .plain(let s): try await s.write(bytes, timeout: timeout)
        case .tls(let s): try await s.write(bytes, timeout: timeout)
        }
    }

    /// Ends the sending side: TLS sends close_notify first (within `timeout`).
    func shutdownWrite(timeout: Duration?) async throws {
        switch self {
        case .plain(let s): try s.shutdownWrite()
        case .tls(let s): try await s.shutdownWrite(timeout: timeout)
        }
    }

    /// The last bytes on a connection the server chose to close: TLS adds close_notify
    /// (in the same send when they fit), so a client reading to the end knows the data was
    /// not cut short. Plain TCP just writes.
    func writeLast(_ bytes: ArraySlice<UInt8>, timeout: Duration?) async throws {
        switch self {
        case .plain(let s): try await s.write(bytes, timeout: timeout)
        case .tls(let s): try await s.writeAndShutdown(bytes, timeout: timeout)
        }
    }

    @available(*, noasync)
    func writeLast(_ bytes: ArraySlice<UInt8>, timeout: Duration?) throws {
        switch self {
        case .plain(let s): try s.write(bytes, timeout: timeout)
        case .tls(let s): try s.writeAndShutdown(bytes, timeout: timeout)
        }
    }

    /// Before a close the server chose, with nothing left to write: TLS says
    /// close_notify. Best effort, within `timeout`.
    func endCleanly(timeout: Duration?) async {
        if case .tls(let s) = self, !s.isClosed { try? await s.shutdownWrite(timeout: timeout) }
    }

    func close() { tcp.close() }

    @available(*, noasync)
    func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) throws -> Int {
        switch self {
        case .plain(let s): return try s.read(into: buffer, timeout: timeout)
        case .tls(let s): return try s.read(into: buffer, timeout: timeout)
        }
    }

    @available(*, noasync)
    func write(_ bytes: ArraySlice<UInt8>, timeout: Duration?) throws {
        switch self {
        case .plain(let s): try s.write(bytes, timeout: timeout)
        case .tls(let s): try s.write(bytes, timeout: timeout)
        }
    }

    @available(*, noasync)
    func shutdownWrite(timeout: Duration?) throws {
        switch self {
        case .plain(let s): try s.shutdownWrite()
        case .tls(let s): try s.shutdownWrite(timeout: timeout)
        }
    }

    @available(*, noasync)
    func endCleanly(timeout: Duration?) {
        if case .tls(let s) = self, !s.isClosed { try? s.shutdownWrite(timeout: timeout) }
    }
}

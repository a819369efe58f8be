// Listener: what TCPListener and UnixListener share: bind + listen, and an accept that
// survives running out of descriptors.
//
// EMFILE/ENFILE on accept: the pending connection stays in the kernel's queue, so the
// listener stays readable and a naive loop would spin. Here accept backs off instead
// (5 ms, doubling to 1 s, Go's net/http schedule), sleeping on the runtime's timers, and
// the process keeps serving the connections it has; once a descriptor is free the next
// attempt succeeds. `descriptorBackoffs` counts the waits.
import CSpindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class ListenerCore: Sendable {
    let io: IOHandle
    let address: SocketAddress
    let backoffs = Atomic<Int>(0)

    init(address: SocketAddress, backlog: Int, reuseAddress: Bool, reusePort: Bool, runtime: Runtime) throws(SocketError) {
        let fd: Int32
        do { fd = try Sys.socket(family: address.family, type: spindle_sock_stream_type) } catch { throw SocketError(error, address: address) }
        let io = try IOHandle(fd: fd, runtime: runtime)
        do throws(SysError) {
            if address.unixPath == nil {
                if reuseAddress { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
                if reusePort { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            }
            try address.withSockAddr { sa, len throws(SysError) in try Sys.bind(fd, sa, len) }
            try Sys.listen(fd, backlog: Int32(clamping: backlog))
        } catch {
            io.close()
            throw SocketError(error, address: address)
        }
        self.io = io
        self.address = Sys.localAddress(fd) ?? address
    }

    /// One accept attempt, with EMFILE/ENFILE reported separately so the caller backs off.
    /// A connection that failed while it waited in the backlog (ECONNABORTED, and the
    /// network errors Linux passes on from a pending connection: accept(2), "Error
    /// handling") is not the listener's failure: take the next one, as Go does.
    private static func attempt(_ fd: Int32) throws(SysError) -> Sys.Outcome<(Int32, SocketAddress?)> {
        while true {
            do {
                return try Sys.accept(fd)
            } catch where ListenerCore.pendingConnectionFailed(error.errno) {
                continue
            }
        }
    }

    static func pendingConnectionFailed(_ e: Int32) -> Bool {
        switch e {
        case ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH: return true
        default: return false
        }
    }

    private func warnBackoff(_ pause: Duration) {
        let name = io.runtime.configuration.name
        RuntimeWarning.emit(.descriptorBackoff, runtime: name,
                            "accept on \(address) found the process out of file descriptors; pausing \(pause) before the next try (raise the limit with ulimit -n, or close idle connections)")
    }

    func accept() async throws -> (Int32, SocketAddress?) {
        var backoff = Tuning.acceptFirstBackoff
        while true {
            do {
                return try await io.perform(.read, address: address) { fd throws(SysError) in try ListenerCore.attempt(fd) }
            } catch SocketError.tooManyOpenFiles {
                backoffs.add(1, ordering: .relaxed)
                warnBackoff(backoff)
                try await sleep(for: backoff)
                backoff = min(backoff * 2, Tuning.acceptMaxBackoff)
            }
        }
    }

    func acceptBlocking() throws -> (Int32, SocketAddress?) {
        var backoff = Tuning.acceptFirstBackoff
        while true {
            do {
                return try io.performBlocking("accept()", .read, address: address) { fd throws(SysError) in try ListenerCore.attempt(fd) }
            } catch SocketError.tooManyOpenFiles {
                backoffs.add(1, ordering: .relaxed)
                warnBackoff(backoff)
                try sleep(for: backoff)
                backoff = min(backoff * 2, Tuning.acceptMaxBackoff)
            }
        }
    }
}

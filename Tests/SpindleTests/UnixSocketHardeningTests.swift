// Unix-domain sockets and the files and descriptors they own: a listener removes only the
// socket file it created, once; a failed `UnixStream.pair()` closes both descriptors.
@testable import Spindle
import Testing
#if canImport(Glibc)
import Glibc
#endif

private func makeRuntime() throws -> Runtime {
    try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "unix"))
}

private func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// A backend that accepts `allowed` registrations, then refuses with ENOSPC, which is what
/// epoll_ctl says once the user's `max_user_watches` is used up.
private final class RefusingBackend: ReactorBackend, Sendable {
    private let inner = FakeBackend()
    private let left: Lock<Int>
    init(allowed: Int) { left = Lock(allowed) }

    func register(fd: Int32, token: UInt64) throws(SysError) {
        let ok = left.withLock { n -> Bool in
            if n == 0 { return false }
            n -= 1
            return true
        }
        if !ok { throw SysError(errno: ENOSPC, call: "epoll_ctl") }
        try inner.register(fd: fd, token: token)
    }
    func deregister(fd: Int32) { inner.deregister(fd: fd) }
    func poll(timeoutNanos: Int64?, _ body: (UInt64, Readiness) -> Void) { inner.poll(timeoutNanos: timeoutNanos, body) }
    func wake() { inner.wake() }
    func close() {}
}

@Suite(.serialized) struct UnixSocketHardeningTests {
    /// Listener A is closed (its file goes), B binds the same path, then A is dropped.
    /// Before: A's deinit unlinked the path again, deleting B's socket file, and B could
    /// no longer be reached (connect: ENOENT).
    @Test func droppingAClosedListenerLeavesANewerListenersFileAlone() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let path = "/tmp/spindle-unix-hardening-\(getpid()).sock"
        unlink(path)
        var a: UnixListener? = try UnixListener.bind(path: path, on: rt)
        a?.close()
        #expect(!exists(path))
        let b = try UnixListener.bind(path: path, on: rt)
        a = nil
        #expect(exists(path), "dropping the closed listener removed the new listener's file")
        // On a plain thread: inside a task (a synchronous test runs in one) the blocking
        // forms refuse.
        let got = try onPlainThread { () throws -> [UInt8] in
            let c = try UnixStream.connect(path: path, on: rt)
            let s = try b.accept()
            try c.write("ok")
            return try s.read(exactly: 2)
        }
        #expect(got == Array("ok".utf8))
        b.close()
        #expect(!exists(path))
    }

    /// A listener removes its path only while the file there is still the socket it bound:
    /// not a file that replaced it, and a listener dropped without `close()` still removes
    /// its own.
    @Test func aListenerRemovesOnlyItsOwnSocketFile() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let path = "/tmp/spindle-unix-hardening-\(getpid())-b.sock"
        unlink(path)
        // Replaced by another program's file while listening: close leaves that file.
        let l = try UnixListener.bind(path: path, on: rt)
        unlink(path)
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        close(fd)
        l.close()
        #expect(exists(path), "close removed a file this listener did not create")
        unlink(path)
        // Dropped without close: its own file goes.
        do { _ = try UnixListener.bind(path: path, on: rt) }
        #expect(!exists(path))
    }

    /// The second registration of `pair()` refused: before, the first stream's handle was
    /// dropped without closing, leaking its descriptor and its reactor registration.
    @Test func aPairWhoseSecondRegistrationFailsClosesBothDescriptors() throws {
        let rt = try makeRuntime()
        defer { rt.shutdown() }
        let reactor = Reactor(backend: RefusingBackend(allowed: 1))
        let before = ProcessStats.openDescriptors()
        #expect(throws: SocketError.system(SysError(errno: ENOSPC, call: "epoll_ctl"))) {
            try UnixStream.pair(runtime: rt, reactor: reactor)
        }
        #expect(ProcessStats.openDescriptors() == before)
        #expect(reactor.registrationCount == 0)
        // The first registration refused: nothing leaks either.
        let refusing = Reactor(backend: RefusingBackend(allowed: 0))
        #expect(throws: SocketError.self) { try UnixStream.pair(runtime: rt, reactor: refusing) }
        #expect(ProcessStats.openDescriptors() == before)
        #expect(refusing.registrationCount == 0)
    }
}

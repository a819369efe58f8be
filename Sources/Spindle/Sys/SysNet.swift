// SysNet: the socket half of the syscall layer (Sys.swift holds the policy). UNSAFE FILE:
// raw descriptors and buffers. Every call goes through `Sys.call`, so EINTR is retried,
// EAGAIN becomes `.wouldBlock`, EBADF/EFAULT stop the process (the runtime's own
// bookkeeping broke), and everything else is thrown as a SysError for the socket types to
// turn into a SocketError.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

/// Socket types as glibc defines them (an enum in Swift's view of the headers).
let spindle_sock_stream_type = Int32(spindle_sock_stream())
let spindle_sock_dgram_type = Int32(spindle_sock_dgram())

extension Sys {
    /// Closes a descriptor the runtime owns. EINTR on close still closed it on Linux (no
    /// retry: the number may already be reused); EBADF means double ownership: fatal.
    static func closeDescriptor(_ fd: Int32) {
        if Glibc.close(fd) != 0 && spindle_errno() == EBADF {
            spindleFatal("close(\(fd)) failed with EBADF: a descriptor the runtime owns was closed twice")
        }
    }

    static func socket(family: Int32, type: Int32) throws(SysError) -> Int32 {
        guard case .ok(let fd) = try call("socket", { spindle_socket(family, type) }) else {
            throw SysError(errno: EAGAIN, call: "socket")
        }
        return fd
    }

    /// Two connected, non-blocking, close-on-exec Unix-domain sockets.
    static func socketPair(type: Int32) throws(SysError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard case .ok = try call("socketpair", { socketpair(AF_UNIX, type | flags, 0, &fds) }) else {
            throw SysError(errno: EAGAIN, call: "socketpair")
        }
        return (fds[0], fds[1])
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SysError) {
        _ = try call("setsockopt") { spindle_set_int_option(fd, level, name, value) }
    }

    static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32) throws(SysError) -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = try call("getsockopt") { getsockopt(fd, level, name, &v, &len) }
        return v
    }

    static func bind(_ fd: Int32, _ sa: UnsafePointer<sockaddr>, _ len: socklen_t) throws(SysError) {
        _ = try call("bind") { Glibc.bind(fd, sa, len) }
    }

    static func listen(_ fd: Int32, backlog: Int32) throws(SysError) {
        _ = try call("listen") { Glibc.listen(fd, backlog) }
    }

    /// A non-blocking connect: `.ok` if it finished at once, `.wouldBlock` if in progress
    /// (EINPROGRESS: wait for writability, then read `pendingError`).
    static func connect(_ fd: Int32, _ sa: UnsafePointer<sockaddr>, _ len: socklen_t) throws(SysError) -> Outcome<Void> {
        while true {
            if Glibc.connect(fd, sa, len) == 0 { return .ok(()) }
            let e = spindle_errno()
            switch e {
            case EINTR, EINPROGRESS, EALREADY, EAGAIN: return .wouldBlock
            case EISCONN: return .ok(())
            case EBADF, EFAULT: spindleFatal("connect failed with errno \(e): a descriptor or pointer the runtime owns is invalid")
            default: throw SysError(errno: e, call: "connect")
            }
        }
    }

    /// SO_ERROR: the result of a finished non-blocking connect (0: connected).
    static func pendingError(_ fd: Int32) -> Int32 {
        let r = spindle_socket_error(fd)
        return r < 0 ? -r : r
    }

    static func accept(_ fd: Int32) throws(SysError) -> Outcome<(Int32, SocketAddress?)> {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = try withUnsafeMutablePointer(to: &ss) { p throws(SysError) in
            // SAFETY: sockaddr_storage is large enough for any address the kernel returns.
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SysError) in
                try call("accept4") { spindle_accept(fd, sa, &len) }
            }
        }
        switch r {
        case .ok(let client): return .ok((client, SocketAddress(ss, length: len)))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// A socket read: recv(2), not read(2), which on a socket pays for the VFS layer
    /// (vfs_read, fdget_pos: ~5% of an echo server's kernel samples).
    static func read(_ fd: Int32, _ buf: UnsafeMutableRawBufferPointer) throws(SysError) -> Outcome<Int> {
        try call("recv") { Glibc.recv(fd, buf.baseAddress, buf.count, 0) }
    }

    /// Bytes queued for reading on socket `fd` (FIONREAD); 0 if the socket cannot say.
    static func queuedBytes(_ fd: Int32) -> Int {
        max(0, Int(spindle_socket_queued(fd)))
    }

    static func send(_ fd: Int32, _ buf: UnsafeRawBufferPointer) throws(SysError) -> Outcome<Int> {
        try call("send") { spindle_send(fd, buf.baseAddress!, buf.count) }
    }

    static func sendTo(_ fd: Int32, _ buf: UnsafeRawBufferPointer, _ sa: UnsafePointer<sockaddr>?, _ len: socklen_t) throws(SysError) -> Outcome<Int> {
        // SAFETY: an empty buffer may have no base address; the kernel reads no byte of a
        // zero-length send, so any non-null pointer will do for the C signature.
        try call("sendto") { spindle_sendto(fd, buf.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, buf.count, sa, len) }
    }

    static func receiveFrom(_ fd: Int32, _ buf: UnsafeMutableRawBufferPointer) throws(SysError) -> Outcome<(Int, SocketAddress?)> {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = try withUnsafeMutablePointer(to: &ss) { p throws(SysError) in
            // SAFETY: sockaddr_storage is large enough for any address the kernel returns.
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(SysError) in
                try call("recvfrom") { recvfrom(fd, buf.baseAddress, buf.count, 0, sa, &len) }
            }
        }
        switch r {
        case .ok(let n): return .ok((n, SocketAddress(ss, length: len)))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// Which file a path names: device and inode (lstat: a symbolic link is not followed),
    /// for a socket file only; nil if the path names nothing or something else.
    static func socketFileIdentity(_ path: String) -> SocketFileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK else { return nil }
        return SocketFileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Removes the name `path`. A failure (already gone, no permission) leaves nothing for
    /// the caller to undo, so it is not reported.
    static func unlink(_ path: String) {
        _ = Glibc.unlink(path)
    }

    static func shutdown(_ fd: Int32, _ how: Int32) throws(SysError) {
        _ = try call("shutdown") { Glibc.shutdown(fd, how) }
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        addressQuery(fd, getsockname)
    }

    static func peerAddress(_ fd: Int32) -> SocketAddress? {
        addressQuery(fd, getpeername)
    }

    private static func addressQuery(_ fd: Int32, _ f: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> SocketAddress? {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &ss) { p in
            // SAFETY: sockaddr_storage is large enough for any address.
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { f(fd, $0, &len) }
        }
        return r == 0 ? SocketAddress(ss, length: len) : nil
    }

    /// Open descriptors of this process (entries of /proc/self/fd), for leak checks.
    static func openDescriptorCount() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var n = 0
        while readdir(dir) != nil { n += 1 }
        return n - 3 // ".", "..", and the directory's own descriptor
    }
}

/// A file's identity (st_dev, st_ino): the same path may name another file later.
struct SocketFileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64
}

extension ProcessStats {
    /// Open file descriptors of this process (/proc/self/fd).
    package static func openDescriptors() -> Int { Sys.openDescriptorCount() }
}

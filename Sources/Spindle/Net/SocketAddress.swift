// SocketAddress: an IPv4, IPv6 or Unix-domain address, parsed with clear errors, and
// host-name resolution on the blocking pool. UNSAFE FILE: sockaddr structures.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    enum Storage: Sendable, Hashable {
        /// Address in network byte order, port in host order.
        case v4(UInt32, port: UInt16)
        case v6([UInt8], port: UInt16, scope: UInt32)
        case unix(String)
    }
    let storage: Storage

    init(storage: Storage) { self.storage = storage }

    /// Parses "host:port" with a numeric host: `127.0.0.1:8080`, `[::1]:8080`,
    /// `[fe80::1%2]:80`; or `unix:/path/to/socket`.
    /// - Throws: ``SocketError/invalidAddress(_:reason:)`` saying what is wrong.
    public init(_ text: String) throws(SocketError) {
        if text.hasPrefix("unix:") {
            self = try SocketAddress(unixPath: String(text.dropFirst(5)))
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidAddress(text, reason: "missing ']' after an IPv6 address") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .invalidAddress(text, reason: "missing ':port' after ']'") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw .invalidAddress(text, reason: "missing ':port'") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw .invalidAddress(text, reason: "an IPv6 address with a port must be written [address]:port") }
        }
        guard let port = Int(portText) else { throw .invalidAddress(text, reason: "port \"\(portText)\" is not a number") }
        self = try SocketAddress(host: String(host), port: port, original: text)
    }

    /// A numeric IPv4 or IPv6 host and a port (0-65535). For names, use ``resolve(host:port:)-(String,Int)``.
    public init(host: String, port: Int) throws(SocketError) {
        try self.init(host: host, port: port, original: "\(host):\(port)")
    }

    private init(host: String, port: Int, original: String) throws(SocketError) {
        guard (0...65535).contains(port) else { throw .invalidAddress(original, reason: "port \(port) is outside 0-65535") }
        if host.isEmpty { throw .invalidAddress(original, reason: "empty host") }
        var a4 = in_addr()
        if inet_pton(AF_INET, host, &a4) == 1 {
            storage = .v4(a4.s_addr, port: UInt16(port))
            return
        }
        var name = host
        var scope: UInt32 = 0
        if let pct = host.firstIndex(of: "%") {
            name = String(host[..<pct])
            let zone = String(host[host.index(after: pct)...])
            if let n = UInt32(zone) { scope = n } else {
                let idx = if_nametoindex(zone)
                if idx == 0 { throw .invalidAddress(original, reason: "unknown interface \"\(zone)\"") }
                scope = idx
            }
        }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, name, &a6) == 1 {
            let bytes = withUnsafeBytes(of: a6) { Array($0) }
            storage = .v6(bytes, port: UInt16(port), scope: scope)
            return
        }
        throw .invalidAddress(original, reason: "\"\(host)\" is not a numeric IPv4 or IPv6 address (resolve host names with SocketAddress.resolve)")
    }

    /// A Unix-domain socket path (at most 107 bytes).
    public init(unixPath path: String) throws(SocketError) {
        if path.isEmpty { throw .invalidAddress("unix:", reason: "empty path") }
        if path.utf8.count > 107 { throw .invalidAddress("unix:" + path, reason: "path longer than 107 bytes") }
        storage = .unix(path)
    }

    /// The IPv4 loopback address with `port`.
    public static func loopbackV4(port: Int) -> SocketAddress {
        SocketAddress(storage: .v4(UInt32(0x7f00_0001).bigEndian, port: UInt16(clamping: port)))
    }

    /// The IPv6 loopback address with `port`.
    public static func loopbackV6(port: Int) -> SocketAddress {
        SocketAddress(storage: .v6([UInt8](repeating: 0, count: 15) + [1], port: UInt16(clamping: port), scope: 0))
    }

    /// The port, for IP addresses.
    public var port: Int? {
        switch storage {
        case .v4(_, let p), .v6(_, let p, _): return Int(p)
        case .unix: return nil
        }
    }

    /// The path, for Unix-domain addresses.
    public var unixPath: String? {
        if case .unix(let p) = storage { return p }
        return nil
    }

    public var isIPv6: Bool { if case .v6 = storage { return true } else { return false } }

    /// The host part as text ("127.0.0.1", "::1"), for IP addresses.
    public var host: String? {
        var buf = [CChar](repeating: 0, count: 64)
        switch storage {
        case .v4(let a, _):
            var addr = in_addr(s_addr: a)
            guard inet_ntop(AF_INET, &addr, &buf, 64) != nil else { return nil }
        case .v6(let bytes, _, _):
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: bytes) }
            guard inet_ntop(AF_INET6, &addr, &buf, 64) != nil else { return nil }
        case .unix: return nil
        }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String {
        switch storage {
        case .v4(_, let p): return "\(host ?? "?"):\(p)"
        case .v6(_, let p, let scope): return "[\(host ?? "?")\(scope != 0 ? "%\(scope)" : "")]:\(p)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    var family: Int32 {
        switch storage {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }

    /// Calls `body` with this address as a `sockaddr` and its length. The typed structure
    /// is built as a value and its bytes copied into a `sockaddr_storage`, so no memory is
    /// accessed through a type it is not bound to (only the final, sanctioned rebinding to
    /// `sockaddr` for the call).
    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var ss = sockaddr_storage()
        let len: socklen_t
        switch storage {
        case .v4(let a, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = in_addr(s_addr: a)
            len = socklen_t(MemoryLayout<sockaddr_in>.size)
            SocketAddress.copy(sin, into: &ss)
        case .v6(let bytes, let port, let scope):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scope
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            len = socklen_t(MemoryLayout<sockaddr_in6>.size)
            SocketAddress.copy(sin6, into: &ss)
        case .unix(let path):
            var sun = sockaddr_un()
            sun.sun_family = sa_family_t(AF_UNIX)
            // The path fits with its NUL: checked ≤ 107 bytes at init (sun_path is 108).
            withUnsafeMutableBytes(of: &sun.sun_path) { dst in
                let utf8 = Array(path.utf8)
                dst.copyBytes(from: utf8)
                dst[utf8.count] = 0
            }
            len = socklen_t(MemoryLayout<sa_family_t>.size + path.utf8.count + 1)
            SocketAddress.copy(sun, into: &ss)
        }
        return try withUnsafePointer(to: &ss) { p throws(E) -> R in
            // SAFETY: sockaddr_storage is the type the sockets API defines for holding any
            // sockaddr_*; viewing it as `sockaddr` for the duration of the call is exactly
            // what the C API expects, and `len` says how many bytes are meaningful.
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(E) -> R in try body(sa, len) }
        }
    }

    /// Copies the bytes of a `sockaddr_*` value into the front of a `sockaddr_storage`
    /// (128 bytes: every family fits).
    private static func copy<T>(_ value: T, into ss: inout sockaddr_storage) {
        precondition(MemoryLayout<T>.size <= MemoryLayout<sockaddr_storage>.size)
        withUnsafeBytes(of: value) { src in
            withUnsafeMutableBytes(of: &ss) { dst in dst.copyMemory(from: src) }
        }
    }

    /// Reads a kernel-filled `sockaddr_storage` (accept, recvfrom, getsockname).
    init?(_ ss: sockaddr_storage, length: socklen_t) {
        var copy = ss
        let family = Int32(ss.ss_family)
        let parsed: Storage? = withUnsafeBytes(of: &copy) { raw -> Storage? in
            switch family {
            case AF_INET:
                // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
                let sin = raw.load(as: sockaddr_in.self)
                return .v4(sin.sin_addr.s_addr, port: UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
                let sin6 = raw.load(as: sockaddr_in6.self)
                let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
                return .v6(bytes, port: UInt16(bigEndian: sin6.sin6_port), scope: sin6.sin6_scope_id)
            case AF_UNIX:
                let offset = MemoryLayout<sa_family_t>.size
                let n = max(0, Int(length) - offset)
                let pathBytes = raw[offset..<(offset + min(n, 108))].prefix { $0 != 0 }
                return .unix(String(decoding: pathBytes, as: UTF8.self))
            default:
                return nil
            }
        }
        guard let parsed else { return nil }
        storage = parsed
    }

    // MARK: resolution

    /// Resolves `host` (a name or a numeric address) to its addresses with `port`, on the
    /// runtime's blocking pool (getaddrinfo blocks). IPv4 and IPv6 results, in the
    /// resolver's order.
    /// - Throws: ``SocketError/hostNotFound(_:reason:)``, ``SocketError/invalidAddress(_:reason:)``.
    public static func resolve(host: String, port: Int) async throws -> [SocketAddress] {
        if let numeric = try? SocketAddress(host: host, port: port) { return [numeric] }
        guard (0...65535).contains(port) else { throw SocketError.invalidAddress("\(host):\(port)", reason: "port \(port) is outside 0-65535") }
        guard let runtime = Runtime.current ?? Runtime.global else {
            return try lookup(host: host, port: port)
        }
        return try await runtime.spawnBlocking { try lookup(host: host, port: port) }
    }

    /// In a fiber: resolves on the blocking pool and parks the fiber meanwhile; on a plain
    /// thread: resolves on the thread. See the `async` overload.
    @_disfavoredOverload // in async code the `async` twin wins, even for a synchronous closure
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func resolve(host: String, port: Int) throws -> [SocketAddress] {
        if let numeric = try? SocketAddress(host: host, port: port) { return [numeric] }
        try checkMayBlock("SocketAddress.resolve(host:port:)")
        if Fiber.currentCore != nil {
            return try Fiber.wait { try await resolve(host: host, port: port) }
        }
        return try lookup(host: host, port: port)
    }

    static func lookup(host: String, port: Int) throws(SocketError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(spindle_sock_stream())
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        if rc != 0 {
            let reason = String(cString: gai_strerror(rc))
            throw .hostNotFound(host, reason: reason)
        }
        defer { freeaddrinfo(result) }
        var out: [SocketAddress] = []
        var p = result
        while let ai = p {
            if let sa = ai.pointee.ai_addr {
                var ss = sockaddr_storage()
                withUnsafeMutableBytes(of: &ss) { dst in
                    // SAFETY: ai_addrlen bytes are valid at ai_addr and fit in sockaddr_storage.
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(ai.pointee.ai_addrlen)))
                }
                if let a = SocketAddress(ss, length: ai.pointee.ai_addrlen), !out.contains(a) { out.append(a) }
            }
            p = ai.pointee.ai_next
        }
        if out.isEmpty { throw .hostNotFound(host, reason: "no addresses") }
        return out
    }
}

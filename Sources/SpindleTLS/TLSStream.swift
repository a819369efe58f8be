// TLSStream: TLS over a TCPStream, driven by Spindle's reactor, for tasks and fibers.
//
// OpenSSL never touches the socket. It reads and writes two memory BIOs; this file moves
// ciphertext between them and the TCPStream with the stream's own calls, so a wait for
// the network is the TCPStream's wait (a task suspends, a fiber parks), and time limits,
// cancellation and close work as they do there. An SSL call itself never waits:
// SSL_ERROR_WANT_READ means "read the socket, feed the bytes in, call again"; and with
// memory BIOs a call never wants to write (output accumulates until flushed).
//
// Concurrency: one read and one write may run at once (as on a TCPStream), from any
// threads. Every call on the SSL object and its BIOs happens under `state`'s lock (SSL
// objects are not thread-safe), never across a wait. Ciphertext leaves in the order
// OpenSSL produced it: whoever sends it (a writer, or a reader whose SSL_read produced an
// alert or a TLS 1.3 KeyUpdate answer) holds `writeGate` from taking it out of the BIO
// until the socket has it. Reads take `readGate`, so two readers do not interleave
// records. Lock order: readGate, then writeGate, then `state`.
//
// UNSAFE FILE: the SSL object and its BIOs (opaque pointers owned by hand), the scratch
// buffers the socket reads into across a wait, and `Unmanaged` for the session slot.
import COpenSSL
import Spindle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A TLS connection over a ``TCPStream``: handshake, encrypted reads and writes, and a
/// clean close with close_notify.
///
/// ```swift
/// let tls = try TLSClientContext()                                  // once, shared
/// let stream = try await TLSStream.connect(host: "example.com", port: 443, context: tls)
/// try await stream.write("GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
/// let reply = try await stream.read(upTo: 65536)
/// ```
/// Every call that may wait exists twice with one name, like ``TCPStream``'s: `async` for
/// tasks, and a blocking form for fibers (parks the fiber) and plain threads.
///
/// End of data: a read returns 0 (an empty array from `read(upTo:)`) only after the peer's
/// close_notify. A peer that closes the TCP connection without one makes the read throw
/// ``TLSError/closedWithoutCloseNotify``: the data may have been cut short.
/// ``shutdownWrite()`` sends close_notify; ``close()`` closes at once without it.
public final class TLSStream: @unchecked Sendable, CustomStringConvertible {
    // SAFETY (@unchecked Sendable): `ssl` and the BIOs are used only under `state`'s lock;
    // the rest is immutable, or Sendable (the socket, the gates).
    /// The TCP connection underneath.
    public let socket: TCPStream
    private let ssl: OpaquePointer
    private let rbio: OpaquePointer
    private let wbio: OpaquePointer
    private let state = Lock(State())
    private let readGate = AsyncMutex()
    private let writeGate = AsyncMutex()
    /// Keeps the SSL_CTX (and the objects its callbacks reach) alive while `ssl` lives.
    private let context: AnyObject
    /// The client's session slot, the SSL's app data (retained here, see newClientSession).
    private let slot: SessionSlot?
    /// True for the client side of the connection.
    public let isClient: Bool

    private struct State {
        var closeNotifySent = false
        /// The first fatal error: every later call throws it again.
        var failure: TLSError?
    }

    private static let live = Atomic<Int>(0)

    /// TLS streams alive in this process now (each holds an OpenSSL SSL object).
    public static var liveCount: Int { live.load(ordering: .relaxed) }

    private init(socket: TCPStream, ssl: OpaquePointer, context: AnyObject, slot: SessionSlot?, isClient: Bool) throws(TLSError) {
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw .invalidConfiguration("out of memory making a TLS connection")
        }
        // An empty input BIO means "no bytes yet" (retry), until the socket's end is fed in.
        _ = spindle_bio_set_mem_eof_return(rbio, -1)
        // SAFETY: SSL_set_bio hands both BIOs to the SSL; SSL_free frees them (deinit).
        SSL_set_bio(ssl, rbio, wbio)
        self.socket = socket
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        self.context = context
        self.slot = slot
        self.isClient = isClient
        if let slot {
            // SAFETY: `slot` is retained by this object, which frees `ssl` in deinit
            // before releasing it; the callback reads it only while `ssl` lives.
            _ = spindle_ssl_set_app_data(ssl, Unmanaged.passUnretained(slot).toOpaque())
        }
        Self.live.add(1, ordering: .relaxed)
    }

    deinit {
        // OpenSSL marks a session not resumable when its connection is freed without a
        // close_notify sent, as though a TCP close could compromise it; but clients close
        // idle connections that way all the time (an HTTP pool does), and the next
        // connection would then need a full handshake. A failed connection still poisons
        // its session (a fatal error marks it in OpenSSL itself).
        if state.withLock({ $0.failure == nil }) { SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN) }
        SSL_free(ssl)
        Self.live.subtract(1, ordering: .relaxed)
    }

    public var description: String { "TLSStream(\(socket))" }

    /// The runtime whose reactor serves the socket.
    public var runtime: Runtime { socket.runtime }
    public var localAddress: SocketAddress? { socket.localAddress }
    public var peerAddress: SocketAddress? { socket.peerAddress }
    public var isClosed: Bool { socket.isClosed }

    // MARK: making one

    private static func client(_ socket: TCPStream, _ serverName: String?, _ context: TLSClientContext) throws(TLSError) -> TLSStream {
        let verification = context.configuration.verification
        if verification == .full && (serverName ?? "").isEmpty {
            throw .invalidConfiguration("verifying the server's certificate needs the server's name (pass serverName, or use verification .chainOnly)")
        }
        guard let ssl = SSL_new(context.ctx) else { throw .invalidConfiguration("SSL_new failed: \(takeOpenSSLError()?.text ?? "?")") }
        SSL_set_connect_state(ssl)
        if let name = serverName, !name.isEmpty {
            let ip = isIPLiteral(name)
            // SNI carries DNS names only (RFC 6066 §3).
            if !ip && spindle_ssl_set_tlsext_host_name(ssl, name) != 1 {
                SSL_free(ssl)
                throw .invalidConfiguration("\"\(name)\" cannot be sent as a server name: \(takeOpenSSLError()?.text ?? "?")")
            }
            if verification == .full {
                SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                let ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) : SSL_set1_host(ssl, name)
                if ok != 1 {
                    SSL_free(ssl)
                    throw .invalidConfiguration("\"\(name)\" cannot be checked against a certificate: \(takeOpenSSLError()?.text ?? "?")")
                }
            }
        }
        var slot: SessionSlot?
        if let cache = context.sessions {
            let key = "\(serverName ?? "")@\(socket.peerAddress.map { "\($0)" } ?? "?")"
            slot = SessionSlot(cache: cache, key: key)
            cache.resume(key, on: ssl)
        }
        return try TLSStream(socket: socket, ssl: ssl, context: context, slot: slot, isClient: true)
    }

    private static func server(_ socket: TCPStream, _ context: TLSServerContext) throws(TLSError) -> TLSStream {
        guard let ssl = SSL_new(context.contexts[0]) else { throw .invalidConfiguration("SSL_new failed: \(takeOpenSSLError()?.text ?? "?")") }
        SSL_set_accept_state(ssl)
        return try TLSStream(socket: socket, ssl: ssl, context: context, slot: nil, isClient: false)
    }

    /// Starts TLS as the client on a connected socket and completes the handshake.
    /// `serverName` is sent (SNI, unless it is an IP address) and checked against the
    /// certificate (unless the context's verification is not `.full`). On failure the
    /// socket is left open; close it.
    /// - Throws: ``TLSError`` (``TLSError/handshakeTimedOut(_:)`` after `handshakeTimeout`),
    ///   or ``SocketError`` from the network.
    public static func connect(over socket: TCPStream, serverName: String?, context: TLSClientContext,
                               handshakeTimeout: Duration? = .seconds(10)) async throws -> TLSStream {
        let s = try client(socket, serverName, context)
        try await s.handshake(handshakeTimeout)
        return s
    }

    /// Connects to `host:port` and completes a TLS handshake with `host` as the server
    /// name. `timeout` limits the TCP connect and, separately, the handshake (10 s when nil).
    public static func connect(host: String, port: Int, context: TLSClientContext, timeout: Duration? = nil,
                               on runtime: Runtime? = nil) async throws -> TLSStream {
        let socket = try await TCPStream.connect(host: host, port: port, timeout: timeout, on: runtime)
        return try await connect(over: socket, serverName: host, context: context, handshakeTimeout: timeout ?? .seconds(10))
    }

    /// Starts TLS as the server on an accepted socket and completes the handshake.
    /// On failure the socket is left open; close it.
    public static func accept(over socket: TCPStream, context: TLSServerContext,
                              handshakeTimeout: Duration? = .seconds(10)) async throws -> TLSStream {
        let s = try server(socket, context)
        try await s.handshake(handshakeTimeout)
        return s
    }

    /// Fiber/thread form of ``connect(over:serverName:context:handshakeTimeout:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func connect(over socket: TCPStream, serverName: String?, context: TLSClientContext,
                               handshakeTimeout: Duration? = .seconds(10)) throws -> TLSStream {
        let s = try client(socket, serverName, context)
        try s.handshakeBlocking(handshakeTimeout)
        return s
    }

    /// Fiber/thread form of ``connect(host:port:context:timeout:on:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func connect(host: String, port: Int, context: TLSClientContext, timeout: Duration? = nil,
                               on runtime: Runtime? = nil) throws -> TLSStream {
        let socket = try TCPStream.connect(host: host, port: port, timeout: timeout, on: runtime)
        return try connect(over: socket, serverName: host, context: context, handshakeTimeout: timeout ?? .seconds(10))
    }

    /// Fiber/thread form of ``accept(over:context:handshakeTimeout:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public static func accept(over socket: TCPStream, context: TLSServerContext,
                              handshakeTimeout: Duration? = .seconds(10)) throws -> TLSStream {
        let s = try server(socket, context)
        try s.handshakeBlocking(handshakeTimeout)
        return s
    }

    // MARK: what was agreed

    /// The application protocol agreed by ALPN, if any.
    public var negotiatedProtocol: String? {
        state.withLock { _ in
            var p: UnsafePointer<UInt8>?
            var n: UInt32 = 0
            SSL_get0_alpn_selected(ssl, &p, &n)
            guard let p, n > 0 else { return nil }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
        }
    }

    /// The protocol version in use.
    public var protocolVersion: TLSVersion? { state.withLock { _ in TLSVersion(rawValue: Int(SSL_version(ssl))) } }

    /// The cipher suite in use (OpenSSL's name, e.g. "TLS_AES_128_GCM_SHA256").
    public var cipherSuite: String? {
        state.withLock { _ in SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } }
    }

    /// True if the handshake resumed an earlier session (no full handshake).
    public var sessionReused: Bool { state.withLock { _ in SSL_session_reused(ssl) == 1 } }

    /// The server name the client asked for (SNI), on either side.
    public var serverName: String? {
        state.withLock { _ in SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) } }
    }

    /// The peer certificate's subject, in OpenSSL's one-line form ("/CN=localhost").
    public var peerCertificateSubject: String? {
        state.withLock { _ -> String? in
            guard let cert = SSL_get0_peer_certificate(ssl) else { return nil }
            var buf = [CChar](repeating: 0, count: 512)
            guard X509_NAME_oneline(X509_get_subject_name(cert), &buf, Int32(buf.count)) != nil else { return nil }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: the SSL calls (under the lock, never waiting)

    private enum Step {
        case done(Int)
        case needInput
        case end
        case failed(TLSError)
    }

    /// One SSL call and what it asks for next; `handshaking` picks the error names.
    private func step(handshaking: Bool, _ call: (OpaquePointer) -> (ok: Bool, count: Int, ret: Int32)) -> Step {
        state.withLock { s in
            if let f = s.failure { return .failed(f) }
            ERR_clear_error()
            let r = call(ssl)
            if r.ok { return .done(r.count) }
            let code = SSL_get_error(ssl, r.ret)
            switch code {
            case SSL_ERROR_WANT_READ:
                ERR_clear_error()
                return .needInput
            case SSL_ERROR_ZERO_RETURN:
                ERR_clear_error()
                return .end
            default:
                let e = failure(code, handshaking: handshaking)
                s.failure = e
                return .failed(e)
            }
        }
    }

    /// The typed error for a failed SSL call (reads this thread's error queue).
    private func failure(_ code: Int32, handshaking: Bool) -> TLSError {
        let err = takeOpenSSLError()
        guard let (reason, text) = err else {
            if code == SSL_ERROR_WANT_WRITE { return .protocolError("OpenSSL wants to write during a call that cannot (renegotiation is not supported)") }
            // SSL_ERROR_SYSCALL with an empty queue: the input ended (the BIO's end).
            return handshaking ? .closedDuringHandshake : .closedWithoutCloseNotify
        }
        switch reason {
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            let v = Int32(truncatingIfNeeded: SSL_get_verify_result(ssl))
            return .certificateVerifyFailed(code: v, reason: X509_verify_cert_error_string(Int(v)).map { String(cString: $0) } ?? text)
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, SSL_R_NO_PROTOCOLS_AVAILABLE,
             SSL_R_VERSION_TOO_LOW, SSL_R_VERSION_TOO_HIGH:
            return .protocolVersion(text)
        case SSL_R_NO_APPLICATION_PROTOCOL, SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
            return .noApplicationProtocol(text)
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return handshaking ? .closedDuringHandshake : .closedWithoutCloseNotify
        default:
            return handshaking ? .handshakeFailed(text) : .protocolError(text)
        }
    }

    private func stepHandshake() -> Step {
        step(handshaking: true) { ssl in
            let r = SSL_do_handshake(ssl)
            return (r == 1, 0, r)
        }
    }

    private func stepRead(_ buffer: UnsafeMutableRawBufferPointer) -> Step {
        step(handshaking: false) { ssl in
            var n = 0
            let r = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &n)
            return (r == 1, n, r)
        }
    }

    private func stepWrite(_ buffer: UnsafeRawBufferPointer) -> Step {
        step(handshaking: false) { ssl in
            var n = 0
            let r = SSL_write_ex(ssl, buffer.baseAddress, buffer.count, &n)
            return (r == 1, n, r)
        }
    }

    /// Bytes read from the socket, into OpenSSL; an empty buffer is the socket's end.
    private func feed(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { _ in
            if bytes.isEmpty {
                _ = spindle_bio_set_mem_eof_return(rbio, 0)
            } else {
                // A memory BIO takes every byte (it grows).
                _ = BIO_write(rbio, bytes.baseAddress, Int32(bytes.count))
            }
        }
    }

    /// Moves up to `into.count` bytes of pending ciphertext out; 0 when there is none.
    private func takeOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        state.withLock { _ in max(0, Int(BIO_read(wbio, buffer.baseAddress, Int32(buffer.count)))) }
    }

    private var hasOutput: Bool { state.withLock { _ in BIO_ctrl_pending(wbio) > 0 } }

    /// Marks close_notify sent and queues it; false if it was already.
    private func queueCloseNotify() -> Bool {
        state.withLock { s in
            if s.closeNotifySent { return false }
            s.closeNotifySent = true
            ERR_clear_error()
            // 0: sent, the peer's not yet received; 1: both done; <0: not possible now
            // (a failed or unfinished handshake), and then nothing is sent.
            _ = SSL_shutdown(ssl)
            ERR_clear_error()
            return true
        }
    }

    /// Bytes moved between the socket and OpenSSL per socket read: one whole record
    /// (16 KiB of data and at most 256 bytes of overhead), rounded up.
    static let recordBytes = 16 * 1024 + 512
    /// Plaintext handed to one SSL_write: 4 records.
    static let writePiece = 64 * 1024

    // MARK: tasks

    private func handshake(_ timeout: Duration?) async throws {
        let deadline = Deadline(timeout)
        let scratch = Scratch(Self.recordBytes)
        do {
            while true {
                let s = stepHandshake()
                if case .failed(let e) = s {
                    // The alert that says why, if the peer still listens.
                    try? await sendOutput(scratch, deadline)
                    throw e
                }
                // A server's last output is its session ticket: it leaves with the first
                // response (or before the first wait for input), one send fewer.
                if case .done = s, !isClient { return }
                try await sendOutput(scratch, deadline)
                switch s {
                case .done: return
                case .needInput: try await receive(scratch, deadline)
                case .end: throw TLSError.closedDuringHandshake
                case .failed: break
                }
            }
        } catch SocketError.timedOut {
            throw TLSError.handshakeTimedOut(timeout ?? .zero)
        }
    }

    /// Sends every pending output byte. Holds `writeGate` or runs before the stream is
    /// published.
    private func sendOutput(_ scratch: borrowing Scratch, _ deadline: Deadline) async throws {
        while true {
            let n = takeOutput(into: scratch.bytes)
            if n == 0 { return }
            try await socket.write(UnsafeRawBufferPointer(rebasing: scratch.bytes[..<n]), timeout: deadline.remaining())
        }
    }

    private func receive(_ scratch: borrowing Scratch, _ deadline: Deadline) async throws {
        let n = try await socket.read(into: scratch.bytes, timeout: deadline.remaining())
        feed(UnsafeRawBufferPointer(rebasing: scratch.bytes[..<n]))
    }

    /// Sends what a read produced (an alert, a KeyUpdate answer), in turn with writers.
    /// Best effort: if it cannot be sent, the next write fails on the same socket.
    private func sendReadOutput(_ deadline: Deadline) async {
        guard hasOutput else { return }
        do {
            try await writeGate.lock()
            defer { writeGate.unlock() }
            try await sendOutput(Scratch(Self.recordBytes), deadline)
        } catch {}
    }

    /// Reads what is available, at most `buffer.count` bytes of plaintext, waiting until
    /// at least one byte arrives. Returns 0 at the end (after the peer's close_notify).
    public func read(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        try await read(into: buffer, timeout: nil)
    }

    /// ``read(into:)`` with a time limit: throws ``SocketError/timedOut`` if no byte
    /// arrives within `timeout` (`nil`: no limit).
    public func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) async throws -> Int {
        if buffer.isEmpty { return 0 }
        return try await readSome(timeout) { stepRead(buffer) }
    }

    /// The read loop: `decrypt` is one SSL_read into the caller's buffer.
    private func readSome(_ timeout: Duration?, _ decrypt: () -> Step) async throws -> Int {
        let deadline = Deadline(timeout)
        try await readGate.lock()
        defer { readGate.unlock() }
        while true {
            let s = decrypt()
            // Pending output (a server's ticket, a KeyUpdate answer, an alert) goes out
            // before any wait for input, and otherwise with the next write.
            if case .done = s {} else { await sendReadOutput(deadline) }
            switch s {
            case .done(let n): return n
            case .end: return 0
            case .failed(let e): throw e
            case .needInput: try await receive(Scratch(Self.recordBytes), deadline)
            }
        }
    }

    /// Reads what is available, at most `maxBytes`; an empty array means the end.
    public func read(upTo maxBytes: Int = 65536) async throws -> [UInt8] {
        if maxBytes < 0 { throw SocketError.invalidArgument("read(upTo:) needs a maximum of 0 or more bytes, got \(maxBytes)") }
        var out = [UInt8](repeating: 0, count: min(max(1, maxBytes), Self.recordBytes))
        let n = try await readSome(nil) { out.withUnsafeMutableBytes { stepRead($0) } }
        out.removeSubrange(n...)
        return out
    }

    /// Reads exactly `count` bytes.
    /// - Throws: ``SocketError/unexpectedEOF(expected:received:)`` if the stream ends first.
    public func read(exactly count: Int) async throws -> [UInt8] {
        if count < 0 { throw SocketError.invalidArgument("read(exactly:) needs a byte count of 0 or more, got \(count)") }
        var out: [UInt8] = []
        while out.count < count {
            let piece = try await read(upTo: min(count - out.count, Self.recordBytes))
            if piece.isEmpty { throw SocketError.unexpectedEOF(expected: count, received: out.count) }
            out += piece
        }
        return out
    }

    /// Writes all of `buffer`.
    public func write(_ buffer: UnsafeRawBufferPointer) async throws { try await write(buffer, timeout: nil) }

    /// Writes all of `buffer`, within `timeout` for the whole write (`nil`: no limit).
    public func write(_ buffer: UnsafeRawBufferPointer, timeout: Duration?) async throws {
        try await writeAll(buffer.count, timeout) { r in stepWrite(UnsafeRawBufferPointer(rebasing: buffer[r])) }
    }

    public func write(_ bytes: [UInt8]) async throws { try await write(bytes[...], timeout: nil) }
    public func write(_ bytes: ArraySlice<UInt8>) async throws { try await write(bytes, timeout: nil) }
    public func write(_ text: String) async throws { try await write(Array(text.utf8)[...], timeout: nil) }

    /// Writes all of `bytes` within `timeout`.
    public func write(_ bytes: ArraySlice<UInt8>, timeout: Duration?) async throws {
        try await writeAll(bytes.count, timeout) { r in bytes.withUnsafeBytes { b in stepWrite(UnsafeRawBufferPointer(rebasing: b[r])) } }
    }

    /// Writes all of `bytes`, then close_notify, in as few sends as they fit, then
    /// half-closes the TCP connection (SpindleHTTP's last response on a connection).
    package func writeAndShutdown(_ bytes: ArraySlice<UInt8>, timeout: Duration?) async throws {
        try await writeAll(bytes.count, timeout, thenCloseNotify: true) { r in
            bytes.withUnsafeBytes { b in stepWrite(UnsafeRawBufferPointer(rebasing: b[r])) }
        }
        try socket.shutdownWrite()
    }

    /// The write loop: `encrypt` is one SSL_write of the given range of the caller's bytes.
    /// Each piece's records are sent before the next is encrypted; with `thenCloseNotify`,
    /// close_notify joins the last piece's.
    private func writeAll(_ count: Int, _ timeout: Duration?, thenCloseNotify: Bool = false,
                          _ encrypt: (Range<Int>) -> Step) async throws {
        if count == 0 && !thenCloseNotify { return }
        let deadline = Deadline(timeout)
        try await writeGate.lock()
        defer { writeGate.unlock() }
        let scratch = Scratch(Self.outputBytes(for: count))
        var sent = 0
        repeat {
            if sent < count {
                switch encrypt(sent..<min(count, sent + Self.writePiece)) {
                case .done(let n): sent += n
                case .failed(let e):
                    try? await sendOutput(scratch, deadline)
                    throw e
                case .needInput, .end:
                    throw TLSError.protocolError("a write found the connection renegotiating or closed")
                }
            }
            if sent == count && thenCloseNotify { _ = queueCloseNotify() }
            try await sendOutput(scratch, deadline)
        } while sent < count
    }

    /// Sends close_notify and half-closes the TCP connection: the peer reads the end of
    /// the data; reading from this side still works.
    public func shutdownWrite(timeout: Duration? = nil) async throws {
        let deadline = Deadline(timeout)
        try await writeGate.lock()
        defer { writeGate.unlock() }
        if queueCloseNotify() { try await sendOutput(Scratch(Self.recordBytes), deadline) }
        try socket.shutdownWrite()
    }

    /// Closes the connection at once, without close_notify (call ``shutdownWrite()``
    /// first for a clean end). Waiting calls throw ``SocketError/closed``.
    public func close() { socket.close() }

    /// Room for one piece's records, and at least 4 KiB so that what was pending (a
    /// ticket, close_notify) leaves in the same send.
    private static func outputBytes(for plaintext: Int) -> Int {
        let p = min(plaintext, writePiece)
        return max(4096, min(p + 512 * (p / (16 * 1024) + 1), writePiece + 2048))
    }

    // MARK: fibers and threads

    private func handshakeBlocking(_ timeout: Duration?) throws {
        let deadline = Deadline(timeout)
        let scratch = Scratch(Self.recordBytes)
        do {
            while true {
                let s = stepHandshake()
                if case .failed(let e) = s {
                    try? sendOutputBlocking(scratch, deadline)
                    throw e
                }
                if case .done = s, !isClient { return }
                try sendOutputBlocking(scratch, deadline)
                switch s {
                case .done: return
                case .needInput: try receiveBlocking(scratch, deadline)
                case .end: throw TLSError.closedDuringHandshake
                case .failed: break
                }
            }
        } catch SocketError.timedOut {
            throw TLSError.handshakeTimedOut(timeout ?? .zero)
        }
    }

    private func sendOutputBlocking(_ scratch: borrowing Scratch, _ deadline: Deadline) throws {
        while true {
            let n = takeOutput(into: scratch.bytes)
            if n == 0 { return }
            try socket.write(UnsafeRawBufferPointer(rebasing: scratch.bytes[..<n]), timeout: deadline.remaining())
        }
    }

    private func receiveBlocking(_ scratch: borrowing Scratch, _ deadline: Deadline) throws {
        let n = try socket.read(into: scratch.bytes, timeout: deadline.remaining())
        feed(UnsafeRawBufferPointer(rebasing: scratch.bytes[..<n]))
    }

    private func sendReadOutputBlocking(_ deadline: Deadline) {
        guard hasOutput else { return }
        do {
            try writeGate.lock()
            defer { writeGate.unlock() }
            try sendOutputBlocking(Scratch(Self.recordBytes), deadline)
        } catch {}
    }

    /// Fiber/thread form of ``read(into:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { try read(into: buffer, timeout: nil) }

    /// Fiber/thread form of ``read(into:timeout:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration?) throws -> Int {
        if buffer.isEmpty { return 0 }
        let deadline = Deadline(timeout)
        try readGate.lock()
        defer { readGate.unlock() }
        while true {
            let s = stepRead(buffer)
            if case .done = s {} else { sendReadOutputBlocking(deadline) }
            switch s {
            case .done(let n): return n
            case .end: return 0
            case .failed(let e): throw e
            case .needInput: try receiveBlocking(Scratch(Self.recordBytes), deadline)
            }
        }
    }

    /// Fiber/thread form of ``read(upTo:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(upTo maxBytes: Int = 65536) throws -> [UInt8] {
        if maxBytes < 0 { throw SocketError.invalidArgument("read(upTo:) needs a maximum of 0 or more bytes, got \(maxBytes)") }
        var out = [UInt8](repeating: 0, count: min(max(1, maxBytes), Self.recordBytes))
        let n = try out.withUnsafeMutableBytes { b in try read(into: b, timeout: nil) }
        out.removeSubrange(n...)
        return out
    }

    /// Fiber/thread form of ``read(exactly:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func read(exactly count: Int) throws -> [UInt8] {
        if count < 0 { throw SocketError.invalidArgument("read(exactly:) needs a byte count of 0 or more, got \(count)") }
        var out: [UInt8] = []
        while out.count < count {
            let piece = try read(upTo: min(count - out.count, Self.recordBytes))
            if piece.isEmpty { throw SocketError.unexpectedEOF(expected: count, received: out.count) }
            out += piece
        }
        return out
    }

    /// Fiber/thread form of ``write(_:timeout:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ buffer: UnsafeRawBufferPointer, timeout: Duration?) throws {
        try writeAllBlocking(buffer, timeout, thenCloseNotify: false)
    }

    /// Fiber/thread form of ``writeAndShutdown(_:timeout:)``.
    @available(*, noasync)
    package func writeAndShutdown(_ bytes: ArraySlice<UInt8>, timeout: Duration?) throws {
        try bytes.withUnsafeBytes { b in try writeAllBlocking(b, timeout, thenCloseNotify: true) }
        try socket.shutdownWrite()
    }

    @available(*, noasync)
    private func writeAllBlocking(_ buffer: UnsafeRawBufferPointer, _ timeout: Duration?, thenCloseNotify: Bool) throws {
        if buffer.isEmpty && !thenCloseNotify { return }
        let deadline = Deadline(timeout)
        try writeGate.lock()
        defer { writeGate.unlock() }
        let scratch = Scratch(Self.outputBytes(for: buffer.count))
        var sent = 0
        repeat {
            if sent < buffer.count {
                let piece = UnsafeRawBufferPointer(rebasing: buffer[sent..<min(buffer.count, sent + Self.writePiece)])
                switch stepWrite(piece) {
                case .done(let n): sent += n
                case .failed(let e):
                    try? sendOutputBlocking(scratch, deadline)
                    throw e
                case .needInput, .end:
                    throw TLSError.protocolError("a write found the connection renegotiating or closed")
                }
            }
            if sent == buffer.count && thenCloseNotify { _ = queueCloseNotify() }
            try sendOutputBlocking(scratch, deadline)
        } while sent < buffer.count
    }

    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ buffer: UnsafeRawBufferPointer) throws { try write(buffer, timeout: nil) }

    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ bytes: ArraySlice<UInt8>, timeout: Duration?) throws {
        try bytes.withUnsafeBytes { b in try write(b, timeout: timeout) }
    }

    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ bytes: [UInt8]) throws { try write(bytes[...], timeout: nil) }

    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ bytes: ArraySlice<UInt8>) throws { try write(bytes, timeout: nil) }

    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func write(_ text: String) throws { try write(Array(text.utf8)[...], timeout: nil) }

    /// Fiber/thread form of ``shutdownWrite(timeout:)``.
    @_disfavoredOverload
    @available(*, noasync, message: "this is the blocking form, for fibers and plain threads; in async code call the async form with `await`")
    public func shutdownWrite(timeout: Duration? = nil) throws {
        let deadline = Deadline(timeout)
        try writeGate.lock()
        defer { writeGate.unlock() }
        if queueCloseNotify() { try sendOutputBlocking(Scratch(Self.recordBytes), deadline) }
        try socket.shutdownWrite()
    }
}

/// A buffer the socket reads ciphertext into, or pending ciphertext is taken out into,
/// owned by one call (it may live across that call's waits).
struct Scratch: ~Copyable {
    let bytes: UnsafeMutableRawBufferPointer
    init(_ count: Int) { bytes = .allocate(byteCount: count, alignment: 16) }
    deinit { bytes.deallocate() }
}

/// A point in time a whole operation must finish by.
struct Deadline {
    let at: ContinuousClock.Instant?
    init(_ timeout: Duration?) { at = timeout.map { ContinuousClock.now + $0 } }

    /// The time left, for the next wait; throws ``SocketError/timedOut`` once it is past.
    func remaining() throws(SocketError) -> Duration? {
        guard let at else { return nil }
        let left = at - ContinuousClock.now
        if left <= .zero { throw .timedOut }
        return left
    }
}

/// True for an IPv4 or IPv6 address literal (which SNI does not carry).
func isIPLiteral(_ name: String) -> Bool {
    var v6 = in6_addr()
    var v4 = in_addr()
    return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
}

// TLSClientContext and TLSServerContext: an OpenSSL `SSL_CTX` built once from a
// configuration and shared by every connection made with it (loading the system's trust
// store or parsing PEM is milliseconds; a handshake should not pay it).
//
// UNSAFE FILE: OpenSSL's C API (opaque pointers owned by hand), its C callbacks (SNI,
// ALPN, new client sessions) reaching Swift objects through `Unmanaged`, and the
// `@unchecked Sendable` contexts. Each construct carries its `// SAFETY:` invariant.
import COpenSSL
import Spindle
#if canImport(Glibc)
import Glibc
#endif

// MARK: OpenSSL's error queue

/// The first error on this thread's OpenSSL error queue (then clears the queue): its
/// reason code and text. OpenSSL's queue is per thread; every caller reads it on the
/// thread that made the failing call, before anything can suspend.
func takeOpenSSLError() -> (reason: Int32, text: String)? {
    let first = ERR_get_error()
    ERR_clear_error()
    if first == 0 { return nil }
    return (ERR_GET_REASON(first), openSSLText(first))
}

func openSSLText(_ e: UInt) -> String {
    if let r = ERR_reason_error_string(e) { return String(cString: r) }
    var buf = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(e, &buf, buf.count)
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

// MARK: PEM

/// Calls `body` with a read BIO over `source` (a file or PEM text), freed after.
func withPEM<R>(_ source: TLSPEMSource, _ what: String, _ body: (OpaquePointer) throws(TLSError) -> R) throws(TLSError) -> R {
    switch source {
    case .file(let path):
        guard let bio = BIO_new_file(path, "r") else {
            let err = errno
            ERR_clear_error()
            throw .invalidConfiguration("cannot read the \(what) file \(path): \(String(cString: strerror(err)))")
        }
        defer { BIO_free(bio) }
        return try body(bio)
    case .pem(let text):
        let bytes = Array(text.utf8)
        let r: Result<R, TLSError> = bytes.withUnsafeBytes { raw in
            // SAFETY: the memory BIO only reads `bytes`, which outlive it (it is freed
            // before this closure returns).
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                return .failure(.invalidConfiguration("out of memory reading the \(what)"))
            }
            defer { BIO_free(bio) }
            return Result { () throws(TLSError) in try body(bio) }
        }
        return try r.get()
    }
}

/// Every certificate in a PEM source (the caller frees them with `X509_free`).
func readCertificates(_ source: TLSPEMSource, _ what: String) throws(TLSError) -> [OpaquePointer] {
    let certs = try withPEM(source, what) { bio throws(TLSError) -> [OpaquePointer] in
        var all: [OpaquePointer] = []
        while let x = PEM_read_bio_X509(bio, nil, nil, nil) { all.append(x) }
        // The loop ends with "no start line" at the end of the input: expected.
        ERR_clear_error()
        return all
    }
    if certs.isEmpty { throw .invalidConfiguration("no PEM certificate in the \(what) (\(describe(source)))") }
    return certs
}

func describe(_ source: TLSPEMSource) -> String {
    switch source {
    case .file(let p): return p
    case .pem: return "PEM text"
    }
}

/// ALPN's wire form: each name prefixed by its length.
func alpnWire(_ protocols: [String]) throws(TLSError) -> [UInt8] {
    var wire: [UInt8] = []
    for p in protocols {
        let b = Array(p.utf8)
        guard (1...255).contains(b.count) else { throw .invalidConfiguration("an ALPN protocol name must be 1 to 255 bytes, got \"\(p)\"") }
        wire.append(UInt8(b.count))
        wire += b
    }
    return wire
}

func applyVersions(_ ctx: OpaquePointer, _ minimum: TLSVersion, _ maximum: TLSVersion) throws(TLSError) {
    guard minimum <= maximum else { throw .invalidConfiguration("minimum version \(minimum) is above maximum \(maximum)") }
    guard spindle_ssl_ctx_set_min_proto(ctx, Int32(minimum.rawValue)) == 1,
          spindle_ssl_ctx_set_max_proto(ctx, Int32(maximum.rawValue)) == 1 else {
        throw .invalidConfiguration("OpenSSL refused the protocol versions \(minimum)...\(maximum)")
    }
    // No renegotiation (TLS 1.2): a read then never needs to write a handshake, nor a
    // write to read one. No compression (CRIME).
    _ = SSL_CTX_set_options(ctx, spindle_ssl_op_no_renegotiation() | spindle_ssl_op_no_compression())
    // OpenSSL's buffers are released while a connection is idle (~34 KiB each).
    _ = spindle_ssl_ctx_set_mode(ctx, spindle_ssl_mode_release_buffers())
}

// MARK: client

/// A client's TLS settings made ready: the trust store loaded, and the session cache.
/// Make one and share it: every ``TLSStream/connect(over:serverName:context:handshakeTimeout:)``
/// with it reuses both.
public final class TLSClientContext: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `ctx` is configured in init and never changed after;
    // OpenSSL allows one SSL_CTX to make SSL objects on many threads at once. The session
    // cache is behind its own lock.
    let ctx: OpaquePointer
    public let configuration: TLSClientConfiguration
    let sessions: SessionCache?

    public init(configuration: TLSClientConfiguration = TLSClientConfiguration()) throws(TLSError) {
        self.configuration = configuration
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw .invalidConfiguration("SSL_CTX_new failed: \(takeOpenSSLError()?.text ?? "?")") }
        self.ctx = ctx
        sessions = configuration.sessionResumption ? SessionCache() : nil
        try applyVersions(ctx, configuration.minimumVersion, configuration.maximumVersion)

        SSL_CTX_set_verify(ctx, configuration.verification == .none ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nil)
        let store = SSL_CTX_get_cert_store(ctx)
        switch configuration.trustRoots {
        case .system:
            try loadSystemRoots(ctx)
        case .certificates(let src):
            try addCertificates(src, to: store)
        case .systemAnd(let src):
            try loadSystemRoots(ctx)
            try addCertificates(src, to: store)
        }
        if !configuration.revocationLists.isEmpty {
            for src in configuration.revocationLists {
                let crls = try withPEM(src, "revocation list") { bio throws(TLSError) -> [OpaquePointer] in
                    var all: [OpaquePointer] = []
                    while let c = PEM_read_bio_X509_CRL(bio, nil, nil, nil) { all.append(c) }
                    ERR_clear_error()
                    return all
                }
                if crls.isEmpty { throw .invalidConfiguration("no PEM revocation list in \(describe(src))") }
                for c in crls {
                    X509_STORE_add_crl(store, c)
                    X509_CRL_free(c)
                }
            }
            X509_STORE_set_flags(store, spindle_x509_v_flag_crl_check() | spindle_x509_v_flag_crl_check_all())
        }
        if !configuration.applicationProtocols.isEmpty {
            let wire = try alpnWire(configuration.applicationProtocols)
            // SSL_CTX_set_alpn_protos copies the list; it returns 0 on success.
            guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else {
                throw .invalidConfiguration("OpenSSL refused the ALPN list \(configuration.applicationProtocols)")
            }
        }
        if sessions != nil {
            // Sessions are kept here, per server, not in OpenSSL's internal cache (which a
            // client cannot look up by name). TLS 1.3 tickets arrive after the handshake,
            // during a read: the callback runs then, inside SSL_read.
            _ = spindle_ssl_ctx_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            SSL_CTX_sess_set_new_cb(ctx, newClientSession)
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// Sessions held for resumption now (one per server name and address at most).
    public var cachedSessions: Int { sessions?.count ?? 0 }

    private func loadSystemRoots(_ ctx: OpaquePointer) throws(TLSError) {
        guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
            throw .invalidConfiguration("cannot load the system's trust store: \(takeOpenSSLError()?.text ?? "?")")
        }
    }

    private func addCertificates(_ src: TLSPEMSource, to store: OpaquePointer?) throws(TLSError) {
        let certs = try readCertificates(src, "trusted CA certificates")
        defer { certs.forEach { X509_free($0) } }
        for c in certs where X509_STORE_add_cert(store, c) != 1 {
            let e = takeOpenSSLError()
            // The same CA twice in a bundle is harmless.
            if e?.reason != X509_R_CERT_ALREADY_IN_HASH_TABLE { throw .invalidConfiguration("cannot add a trusted certificate: \(e?.text ?? "?")") }
        }
    }
}

/// The client's sessions, keyed by server name and address; at most `limit` are kept.
final class SessionCache: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the dictionary of owned SSL_SESSION pointers is only
    // touched under `lock`; each pointer holds one reference, freed when it is replaced,
    // evicted, or the cache ends.
    private let lock = Lock([String: OpaquePointer]())
    private let limit = 256

    deinit { lock.withLock { for s in $0.values { SSL_SESSION_free(s) } } }

    var count: Int { lock.withLock { $0.count } }

    /// Takes ownership of one reference to `session`.
    func store(_ key: String, _ session: OpaquePointer) {
        let old: OpaquePointer? = lock.withLock { d in
            if d[key] == nil, d.count >= limit, let victim = d.keys.first {
                let v = d.removeValue(forKey: victim)
                if let v { SSL_SESSION_free(v) }
            }
            let old = d[key]
            d[key] = session
            return old
        }
        if let old { SSL_SESSION_free(old) }
    }

    /// Sets the cached session for `key` on `ssl` (SSL_set_session takes its own reference).
    func resume(_ key: String, on ssl: OpaquePointer) {
        lock.withLock { d in
            if let s = d[key] {
                // A session that can no longer be resumed (expired) is dropped.
                if SSL_SESSION_is_resumable(s) == 1 { _ = SSL_set_session(ssl, s) } else {
                    d.removeValue(forKey: key)
                    SSL_SESSION_free(s)
                }
            }
        }
    }
}

/// What a client SSL carries (its app data) so the new-session callback knows where the
/// session goes.
final class SessionSlot {
    let cache: SessionCache
    let key: String
    init(cache: SessionCache, key: String) {
        self.cache = cache
        self.key = key
    }
}

/// OpenSSL's new-session callback (client): keeps the session for the next connection.
/// Returning 1 takes OpenSSL's reference.
private let newClientSession: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let ssl, let session, let p = spindle_ssl_get_app_data(ssl) else { return 0 }
    // SAFETY: the app data is a SessionSlot retained by the TLSStream that owns this SSL
    // (TLSStream.slot), and the SSL is freed before that reference is dropped.
    let slot = Unmanaged<SessionSlot>.fromOpaque(p).takeUnretainedValue()
    slot.cache.store(slot.key, session)
    return 1
}

// MARK: server

/// A server's TLS settings made ready: each identity's certificate chain and key loaded
/// and checked. Make one and share it.
public final class TLSServerContext: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): the contexts are configured in init and never changed
    // after; the callbacks' arguments (`self`, `alpn`) live as long as the contexts, which
    // every SSL made from them keeps alive through `TLSStream.context`.
    let contexts: [OpaquePointer]
    public let configuration: TLSServerConfiguration
    /// ALPN's wire form, in memory the ALPN callback points into (`out` must outlive the
    /// handshake; it lives as long as this context): a UInt32 length, then the list.
    private let alpn: UnsafeMutableRawPointer

    public init(configuration: TLSServerConfiguration) throws(TLSError) {
        guard !configuration.identities.isEmpty else { throw .invalidConfiguration("a TLS server needs at least one certificate and key") }
        self.configuration = configuration
        let wire = try alpnWire(configuration.applicationProtocols)
        let alpn = UnsafeMutableRawPointer.allocate(byteCount: 4 + wire.count, alignment: 4)
        alpn.storeBytes(of: UInt32(wire.count), as: UInt32.self)
        if !wire.isEmpty { wire.withUnsafeBytes { (alpn + 4).copyMemory(from: $0.baseAddress!, byteCount: wire.count) } }
        self.alpn = alpn
        let alpnCount = wire.count
        var made: [OpaquePointer] = []
        do throws(TLSError) {
            for identity in configuration.identities {
                guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw .invalidConfiguration("SSL_CTX_new failed: \(takeOpenSSLError()?.text ?? "?")") }
                made.append(ctx)
                try applyVersions(ctx, configuration.minimumVersion, configuration.maximumVersion)
                _ = SSL_CTX_set_options(ctx, spindle_ssl_op_cipher_server_preference())
                // TLS 1.3 suites in Go's and BoringSSL's order (OpenSSL's own puts AES-256 with
                // SHA-384 first, a slower key schedule for no practical gain), and one session
                // ticket per handshake (OpenSSL sends two; Go sends one): each costs a session
                // encoding and an encryption.
                _ = SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")
                _ = SSL_CTX_set_num_tickets(ctx, 1)
                // Resumption is by stateless tickets (TLS 1.2 and 1.3), as Go's: OpenSSL's
                // server-side session cache would also keep every session (up to 20,480)
                // and walk them all every 255 handshakes to expire some.
                _ = spindle_ssl_ctx_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
                // The chain served is the one configured: OpenSSL would otherwise try to
                // complete a lone leaf from the trust store on every handshake.
                _ = spindle_ssl_ctx_set_mode(ctx, spindle_ssl_mode_no_auto_chain())
                try Self.load(identity, into: ctx)
                let sid: [UInt8] = Array("spindle".utf8)
                _ = SSL_CTX_set_session_id_context(ctx, sid, UInt32(sid.count))
                if alpnCount > 0 {
                    // SAFETY: `alpn` is deallocated only in deinit, after the contexts.
                    SSL_CTX_set_alpn_select_cb(ctx, selectALPN, alpn)
                }
            }
        } catch {
            made.forEach { SSL_CTX_free($0) }
            alpn.deallocate()
            throw error
        }
        contexts = made
        // Always, even with one identity, so that the name the client asked for is
        // accepted the same way whatever the number of identities (OpenSSL treats a
        // server without the callback as one that ignores SNI).
        // SAFETY: the callback's argument is `self`, unretained; the SSL_CTX that calls it
        // is freed in deinit, and every SSL made from it keeps this object alive
        // (TLSStream.context), so it is valid whenever the callback runs.
        _ = spindle_ssl_ctx_set_servername_callback(contexts[0], chooseIdentity, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        contexts.forEach { SSL_CTX_free($0) }
        alpn.deallocate()
    }

    /// The chain (leaf first) and key of `identity` into `ctx`; the key must match.
    private static func load(_ identity: TLSIdentity, into ctx: OpaquePointer) throws(TLSError) {
        let certs = try readCertificates(identity.certificateChain, "certificate chain")
        defer { certs.forEach { X509_free($0) } }
        guard SSL_CTX_use_certificate(ctx, certs[0]) == 1 else {
            throw .invalidConfiguration("the certificate (\(describe(identity.certificateChain))) is unusable: \(takeOpenSSLError()?.text ?? "?")")
        }
        for c in certs.dropFirst() where spindle_ssl_ctx_add1_chain_cert(ctx, c) != 1 {
            throw .invalidConfiguration("an intermediate certificate is unusable: \(takeOpenSSLError()?.text ?? "?")")
        }
        let key = try withPEM(identity.privateKey, "private key") { bio throws(TLSError) -> OpaquePointer in
            guard let k = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
                throw .invalidConfiguration("no PEM private key in \(describe(identity.privateKey)): \(takeOpenSSLError()?.text ?? "?")")
            }
            return k
        }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            throw .invalidConfiguration("the private key (\(describe(identity.privateKey))) does not match the certificate (\(describe(identity.certificateChain))): \(takeOpenSSLError()?.text ?? "?")")
        }
    }

    /// The index of the first identity whose certificate covers `name`, or 0.
    func identity(for name: String) -> Int {
        for (i, ctx) in contexts.enumerated() {
            guard let leaf = SSL_CTX_get0_certificate(ctx) else { continue }
            if X509_check_host(leaf, name, name.utf8.count, 0, nil) == 1 { return i }
        }
        return 0
    }
}

/// SNI (server): moves the connection to the context of the identity the name asks for.
private let chooseIdentity: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = { ssl, _, arg in
    guard let ssl, let arg, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return SSL_TLSEXT_ERR_OK }
    // SAFETY: see TLSServerContext.init: `arg` is the live context.
    let server = Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue()
    guard server.contexts.count > 1 else { return SSL_TLSEXT_ERR_OK }
    let i = server.identity(for: String(cString: name))
    if i != 0 { _ = SSL_set_SSL_CTX(ssl, server.contexts[i]) }
    return SSL_TLSEXT_ERR_OK
}

/// ALPN (server): the server's first protocol the client also offers; none in common is
/// fatal (no_application_protocol, RFC 7301 §3.2).
private let selectALPN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                        UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLength, offered, offeredLength, arg in
    guard let out, let outLength, let offered, let arg else { return SSL_TLSEXT_ERR_NOACK }
    // SAFETY: `arg` is the server context's `alpn` buffer (a UInt32 length, then the
    // list of that many bytes), which outlives every handshake (see TLSServerContext).
    let length = arg.load(as: UInt32.self)
    let list = (arg + 4).assumingMemoryBound(to: UInt8.self)
    var chosen: UnsafeMutablePointer<UInt8>?
    var chosenLength: UInt8 = 0
    let r = SSL_select_next_proto(&chosen, &chosenLength, list, length, offered, offeredLength)
    guard r == OPENSSL_NPN_NEGOTIATED, let chosen else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    // SAFETY: `chosen` points into `list` (the server's protocols), which outlives the
    // handshake, as OpenSSL requires of `out`.
    out.pointee = UnsafePointer(chosen)
    outLength.pointee = chosenLength
    return SSL_TLSEXT_ERR_OK
}

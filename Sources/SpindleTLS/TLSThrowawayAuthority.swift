// TLSThrowawayAuthority: a certificate authority made in memory for one run: a local
// HTTPS server in a test or a demo (`spindle fetch --serve-tls`), trusted by a client
// told to trust it, and by nothing else. Go's httptest.NewTLSServer does the same.
//
// UNSAFE FILE: OpenSSL's X509 and EVP C API (opaque pointers owned by hand, an
// X509V3_CTX filled in place). Each construct carries its `// SAFETY:` invariant.
import COpenSSL
import Spindle

/// A throw-away certificate authority (EC P-256, in memory, never written anywhere).
///
/// ```swift
/// let ca = try TLSThrowawayAuthority()
/// let server = try TLSServerContext(configuration: TLSServerConfiguration(identity: try ca.issue(for: ["localhost", "127.0.0.1"])))
/// let client = try TLSClientContext(configuration: TLSClientConfiguration(trustRoots: .certificates(.pem(ca.certificatePEM))))
/// ```
public final class TLSThrowawayAuthority: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): `cert` and `key` are made in init and only read after
    // (signing with a key and reading a certificate are thread-safe in OpenSSL 3); `serial`
    // is behind a lock.
    private let cert: OpaquePointer
    private let key: OpaquePointer
    private let serial = Lock(Int(1))
    /// The authority's certificate, to trust (``TLSTrustRoots/certificates(_:)``).
    public let certificatePEM: String

    /// Makes the authority: a fresh key and a self-signed CA certificate valid from an
    /// hour ago for `days`.
    public init(name: String = "Spindle throw-away CA", days: Int = 7) throws(TLSError) {
        guard let key = spindle_ec_p256_keygen() else { throw .invalidConfiguration("cannot make a P-256 key: \(takeOpenSSLError()?.text ?? "?")") }
        let cert: OpaquePointer
        let text: String
        do throws(TLSError) {
            cert = try Self.certificate(subject: name, names: [], serial: 1, days: days, key: key, issuer: nil, issuerKey: key)
            text = try pem { PEM_write_bio_X509($0, cert) }
        } catch {
            EVP_PKEY_free(key)
            throw error
        }
        self.key = key
        self.cert = cert
        certificatePEM = text
    }

    deinit {
        X509_free(cert)
        EVP_PKEY_free(key)
    }

    /// A certificate for `names` (DNS names or IP addresses; the first is also the common
    /// name) with a fresh key, signed by this authority, valid from an hour ago for `days`
    /// (a negative `days` makes one that has expired, for tests).
    public func issue(for names: [String], days: Int = 7) throws(TLSError) -> TLSIdentity {
        guard let first = names.first else { throw .invalidConfiguration("a certificate needs at least one name") }
        guard let leafKey = spindle_ec_p256_keygen() else { throw .invalidConfiguration("cannot make a P-256 key: \(takeOpenSSLError()?.text ?? "?")") }
        defer { EVP_PKEY_free(leafKey) }
        let n = serial.withLock { s -> Int in
            s += 1
            return s
        }
        let leaf = try Self.certificate(subject: first, names: names, serial: n, days: days, key: leafKey, issuer: cert, issuerKey: key)
        defer { X509_free(leaf) }
        let chain = try pem { PEM_write_bio_X509($0, leaf) }
        let keyText = try pem { PEM_write_bio_PrivateKey($0, leafKey, nil, nil, 0, nil, nil) }
        return .pem(certificateChain: chain, privateKey: keyText)
    }

    /// One X509v3 certificate: a CA (no `issuer`: self-signed) or a server leaf.
    private static func certificate(subject: String, names: [String], serial: Int, days: Int, key: OpaquePointer,
                                    issuer: OpaquePointer?, issuerKey: OpaquePointer) throws(TLSError) -> OpaquePointer {
        guard let x = X509_new() else { throw .invalidConfiguration("X509_new failed") }
        var ok = X509_set_version(x, 2) == 1
        ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1
        ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) != nil
        ok = ok && X509_gmtime_adj(X509_getm_notAfter(x), days < 0 ? days * 86400 : days * 86400 + 3600) != nil
        ok = ok && X509_set_pubkey(x, key) == 1
        let name = X509_get_subject_name(x)
        ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, subject, -1, -1, 0) == 1
        ok = ok && X509_set_issuer_name(x, issuer.map { X509_get_subject_name($0) } ?? name) == 1
        var extensions: [(Int32, String)]
        if issuer == nil {
            extensions = [(NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
                          (NID_subject_key_identifier, "hash")]
        } else {
            let sans = names.map { isIPLiteral($0) ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
            extensions = [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                          (NID_ext_key_usage, "serverAuth"), (NID_subject_alt_name, sans), (NID_authority_key_identifier, "keyid")]
        }
        // SAFETY: the context only refers to `x` and its issuer, both alive until the
        // extensions are made; X509V3_set_ctx initialises every field used.
        var ctx = X509V3_CTX()
        X509V3_set_ctx(&ctx, issuer ?? x, x, nil, nil, 0)
        for (nid, value) in extensions where ok {
            guard let e = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else { ok = false; break }
            ok = X509_add_ext(x, e, -1) == 1
            X509_EXTENSION_free(e)
        }
        ok = ok && X509_sign(x, issuerKey, EVP_sha256()) > 0
        guard ok else {
            X509_free(x)
            throw .invalidConfiguration("cannot make a certificate for \(subject): \(takeOpenSSLError()?.text ?? "?")")
        }
        return x
    }
}

/// What `write` puts into a memory BIO, as text.
private func pem(_ write: (OpaquePointer) -> Int32) throws(TLSError) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { throw .invalidConfiguration("out of memory") }
    defer { BIO_free(bio) }
    guard write(bio) == 1 else { throw .invalidConfiguration("cannot write PEM: \(takeOpenSSLError()?.text ?? "?")") }
    var p: UnsafeMutablePointer<CChar>?
    let n = spindle_bio_get_mem_data(bio, &p)
    guard let p, n > 0 else { return "" }
    // SAFETY: the BIO's buffer holds `n` bytes at `p` until the BIO is freed (after this).
    return UnsafeRawBufferPointer(start: p, count: n).withMemoryRebound(to: UInt8.self) { String(decoding: $0, as: UTF8.self) }
}

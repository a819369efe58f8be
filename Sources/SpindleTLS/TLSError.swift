// TLSError: what can go wrong in TLS, with OpenSSL's own reason text.
//
// Network failures under TLS (refused, reset, timed out, closed) stay `SocketError`s:
// SpindleTLS adds only what TLS itself can say.

/// A TLS failure. `description` says what happened in words a user can act on, with
/// OpenSSL's reason text (for example "certificate verify failed: certificate has expired").
public enum TLSError: Error, Equatable, CustomStringConvertible {
    /// The handshake failed; the reason is OpenSSL's (for example "sslv3 alert handshake
    /// failure", "no shared cipher", "tlsv1 alert unknown ca").
    case handshakeFailed(String)
    /// The peer's certificate did not verify: `code` is OpenSSL's `X509_V_ERR_*` value and
    /// `reason` its text ("certificate has expired", "hostname mismatch", "self-signed
    /// certificate", "unable to get local issuer certificate", "certificate revoked").
    case certificateVerifyFailed(code: Int32, reason: String)
    /// No protocol version both sides accept (for example a TLS 1.0-only peer).
    case protocolVersion(String)
    /// The client offered application protocols (ALPN) and the server supports none of them.
    case noApplicationProtocol(String)
    /// The handshake did not finish within its time limit.
    case handshakeTimedOut(Duration)
    /// The peer closed the connection without a close_notify: the data may be truncated.
    case closedWithoutCloseNotify
    /// The peer closed the connection during the handshake.
    case closedDuringHandshake
    /// A TLS protocol error after the handshake (a bad record, a bad MAC, an alert).
    case protocolError(String)
    /// A configuration that cannot work: an unreadable or malformed PEM file, a key that
    /// does not match its certificate, an unknown protocol version.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .handshakeFailed(let r): return "TLS handshake failed: \(r)"
        case .certificateVerifyFailed(let code, let r): return "TLS certificate verify failed: \(r) (X509_V_ERR \(code))"
        case .protocolVersion(let r): return "TLS handshake failed: no protocol version in common (\(r))"
        case .noApplicationProtocol(let r): return "TLS handshake failed: no application protocol (ALPN) in common (\(r))"
        case .handshakeTimedOut(let d): return "TLS handshake did not finish within \(d)"
        case .closedWithoutCloseNotify: return "TLS: the peer closed the connection without close_notify; the data may be truncated"
        case .closedDuringHandshake: return "TLS handshake failed: the peer closed the connection during the handshake"
        case .protocolError(let r): return "TLS protocol error: \(r)"
        case .invalidConfiguration(let r): return "TLS configuration: \(r)"
        }
    }
}

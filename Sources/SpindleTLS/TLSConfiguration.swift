// What a TLS client or server is configured with. Plain values: building the OpenSSL
// context from them (loading a trust store, parsing PEM) is `TLSClientContext` /
// `TLSServerContext`'s job, done once and shared by every connection.

/// A TLS protocol version.
public enum TLSVersion: Int, Sendable, Comparable, CustomStringConvertible {
    case tls12 = 0x0303
    case tls13 = 0x0304

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.rawValue < b.rawValue }
    public var description: String { self == .tls12 ? "TLSv1.2" : "TLSv1.3" }
}

/// Where PEM data comes from: a file, or the text itself.
public enum TLSPEMSource: Sendable, Equatable {
    case file(String)
    case pem(String)
}

/// The certificates a client trusts.
public enum TLSTrustRoots: Sendable, Equatable {
    /// The system's trust store (OpenSSL's default paths: on Debian /etc/ssl/certs).
    case system
    /// Only these CA certificates (a PEM bundle).
    case certificates(TLSPEMSource)
    /// The system's, and these as well.
    case systemAnd(TLSPEMSource)
}

/// How a client checks the server's certificate.
public enum TLSCertificateVerification: Sendable, Equatable {
    /// The chain against the trust roots, and the host name (or IP address) against the
    /// certificate. The default.
    case full
    /// The chain only, not the name. For tests and pinned private networks.
    case chainOnly
    /// Nothing: any certificate is accepted. Never for real traffic.
    case none
}

/// Settings of a TLS client (``TLSClientContext``).
public struct TLSClientConfiguration: Sendable, Equatable {
    public var trustRoots: TLSTrustRoots
    public var verification: TLSCertificateVerification
    /// Certificate revocation lists (PEM): when set, every certificate in the chain is
    /// checked against them, and one with no list for its issuer fails to verify.
    public var revocationLists: [TLSPEMSource]
    /// Application protocols offered (ALPN), in order of preference; empty offers none.
    public var applicationProtocols: [String]
    public var minimumVersion: TLSVersion
    public var maximumVersion: TLSVersion
    /// Keep sessions (per server name and port) and resume them on the next connection.
    public var sessionResumption: Bool

    public init(trustRoots: TLSTrustRoots = .system, verification: TLSCertificateVerification = .full,
                revocationLists: [TLSPEMSource] = [], applicationProtocols: [String] = [],
                minimumVersion: TLSVersion = .tls12, maximumVersion: TLSVersion = .tls13, sessionResumption: Bool = true) {
        self.trustRoots = trustRoots
        self.verification = verification
        self.revocationLists = revocationLists
        self.applicationProtocols = applicationProtocols
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.sessionResumption = sessionResumption
    }
}

/// A certificate chain (leaf first, then intermediates) and its private key, in PEM.
public struct TLSIdentity: Sendable, Equatable {
    public var certificateChain: TLSPEMSource
    public var privateKey: TLSPEMSource

    public init(certificateChain: TLSPEMSource, privateKey: TLSPEMSource) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }

    /// A chain and key from PEM files.
    public static func files(certificateChain: String, privateKey: String) -> TLSIdentity {
        TLSIdentity(certificateChain: .file(certificateChain), privateKey: .file(privateKey))
    }

    /// A chain and key from PEM text.
    public static func pem(certificateChain: String, privateKey: String) -> TLSIdentity {
        TLSIdentity(certificateChain: .pem(certificateChain), privateKey: .pem(privateKey))
    }
}

/// Settings of a TLS server (``TLSServerContext``).
public struct TLSServerConfiguration: Sendable, Equatable {
    /// The certificates served. With several, the client's requested name (SNI) picks the
    /// first whose certificate covers it (its subject alternative names, wildcards
    /// included); a client that asks for no name, or for one none covers, gets the first.
    public var identities: [TLSIdentity]
    /// Application protocols accepted (ALPN), in the server's order of preference. A client
    /// that offers protocols, none of them here, is refused (no_application_protocol, RFC
    /// 7301); one that offers none is served. Empty: ALPN is ignored.
    public var applicationProtocols: [String]
    public var minimumVersion: TLSVersion
    public var maximumVersion: TLSVersion

    public init(identities: [TLSIdentity], applicationProtocols: [String] = [],
                minimumVersion: TLSVersion = .tls12, maximumVersion: TLSVersion = .tls13) {
        self.identities = identities
        self.applicationProtocols = applicationProtocols
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
    }

    public init(identity: TLSIdentity, applicationProtocols: [String] = []) {
        self.init(identities: [identity], applicationProtocols: applicationProtocols)
    }
}

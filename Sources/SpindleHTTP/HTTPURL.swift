// HTTPURL: the absolute http(s) URLs the client fetches, and relative references
// (redirect Locations) resolved against them. No Foundation.

/// An absolute `http` or `https` URL: scheme, host (an IPv6 literal without its
/// brackets), port, path and query. Fragments are dropped (they never go on the wire).
public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int
    /// Starts with "/".
    public var path: String
    public var query: String?

    /// Parses `text`.
    /// - Throws: ``HTTPURLError`` naming what is wrong.
    public init(_ text: String) throws(HTTPURLError) {
        guard let schemeEnd = text.firstRange(of: "://") else { throw .init(text, "no scheme (expected http://host/...)") }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw .init(text, "unsupported scheme \"\(scheme)\" (http and https are)") }
        self.scheme = scheme
        var rest = text[schemeEnd.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var tail = rest[authorityEnd...]
        if authority.contains("@") { throw .init(text, "user information in URLs is not supported (send an Authorization header)") }
        if authority.isEmpty { throw .init(text, "no host") }
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .init(text, "unterminated IPv6 literal") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            if host.isEmpty || !host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) { throw .init(text, "invalid IPv6 literal") }
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw .init(text, "junk after the IPv6 literal") }
                portText = after.dropFirst()
            }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                host = String(authority[..<colon])
                portText = authority[authority.index(after: colon)...]
            } else {
                host = String(authority)
            }
            if host.isEmpty { throw .init(text, "no host") }
            if !host.utf8.allSatisfy({ b in (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x25 }) {
                throw .init(text, "invalid character in the host \"\(host)\"")
            }
        }
        if let p = portText {
            guard !p.isEmpty, p.count <= 5, let n = Int(p), (1...65535).contains(n) else { throw .init(text, "invalid port \"\(p)\"") }
            port = n
        } else {
            port = scheme == "https" ? 443 : 80
        }
        var q: String?
        if let qm = tail.firstIndex(of: "?") {
            q = String(tail[tail.index(after: qm)...])
            tail = tail[..<qm]
        }
        path = tail.isEmpty ? "/" : String(tail)
        query = q
        for part in [path, query ?? ""] where !part.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw .init(text, "spaces, control bytes and non-ASCII must be percent-encoded in the path and query")
        }
    }

    /// What goes on the request line: path and query.
    public var requestTarget: String { query.map { path + "?" + $0 } ?? path }

    /// host[:port] as the Host field writes it (the port only when not the default).
    public var authority: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (scheme == "https" ? 443 : 80) ? h : "\(h):\(port)"
    }

    public var description: String { "\(scheme)://\(authority)\(requestTarget)" }

    /// A reference (a redirect's Location) resolved against this URL (RFC 3986 §5.2,
    /// for the forms servers send: absolute, scheme-relative, absolute-path, relative-path).
    public func resolving(_ reference: String) throws(HTTPURLError) -> HTTPURL {
        if reference.contains("://") { return try HTTPURL(reference) }
        if reference.hasPrefix("//") { return try HTTPURL(scheme + ":" + reference) }
        var base = self
        var ref = Substring(reference)
        if let hash = ref.firstIndex(of: "#") { ref = ref[..<hash] }
        var refQuery: String?
        if let qm = ref.firstIndex(of: "?") {
            refQuery = String(ref[ref.index(after: qm)...])
            ref = ref[..<qm]
        }
        if ref.isEmpty {
            if let refQuery { base.query = refQuery }
            return base
        }
        let merged: String
        if ref.hasPrefix("/") {
            merged = String(ref)
        } else {
            let dir = path[...(path.lastIndex(of: "/") ?? path.startIndex)]
            merged = String(dir) + ref
        }
        base.path = HTTPURL.removingDotSegments(merged)
        base.query = refQuery
        return try HTTPURL(base.description)
    }

    static func removingDotSegments(_ path: String) -> String {
        var out: [Substring] = []
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for (i, p) in parts.enumerated() {
            if p == "." { if i == parts.count - 1 { out.append("") }; continue }
            if p == ".." {
                if out.count > 1 { out.removeLast() }
                if i == parts.count - 1 { out.append("") }
                continue
            }
            out.append(p)
        }
        let joined = out.joined(separator: "/")
        return joined.hasPrefix("/") ? joined : "/" + joined
    }
}

/// A URL that could not be used, and why.
public struct HTTPURLError: Error, Equatable, CustomStringConvertible {
    public let url: String
    public let reason: String
    init(_ url: some StringProtocol, _ reason: String) {
        self.url = String(url)
        self.reason = reason
    }
    public var description: String { "invalid URL \"\(url)\": \(reason)" }
}

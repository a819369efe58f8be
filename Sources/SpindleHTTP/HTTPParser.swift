// HTTPParser: HTTP/1.1 requests and responses, strict per RFC 9110/9112, incremental.
//
// The parser owns no buffer. The connection keeps its read buffer and hands the parser the
// bytes not yet consumed; the parser answers with one event and how many bytes it
// consumed, or nil ("need more input"). Input may be split at any byte: a head is parsed
// once its terminating empty line is in the buffer (the scan resumes where it stopped, so
// a head trickling in byte by byte costs linear time), and body bytes are reported as
// ranges of the caller's buffer as they arrive, never gathered into one copy.
//
// Strictness, and why: every ambiguity a proxy and a server could read differently is a
// request-smuggling hole, so the parser refuses it instead of guessing (RFC 9112 §6.3,
// §11.2): CRLF only (no bare CR or LF), no obsolete line folding, no whitespace between a
// field name and its colon, no NUL or control bytes in values, one Content-Length made of
// digits only, no Content-Length together with Transfer-Encoding, chunked as the final and
// only transfer coding of a request. Limits map to the status a server answers with.
import HTTPTypes

/// Limits on what the parser accepts; each maps to the status a server answers with.
public struct HTTPParserLimits: Sendable, Equatable {
    /// The request line (method, target, version) or status line, in bytes (414).
    public var maxStartLineBytes: Int
    /// The header section after the start line, in bytes (431).
    public var maxHeaderBytes: Int
    /// The number of header fields (431).
    public var maxHeaderCount: Int
    /// A message body, in bytes (413); nil: no limit.
    public var maxBodyBytes: Int?

    public init(maxStartLineBytes: Int = 8192, maxHeaderBytes: Int = 32768, maxHeaderCount: Int = 100, maxBodyBytes: Int? = nil) {
        self.maxStartLineBytes = maxStartLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Why a message was refused. ``status`` is what a server answers with.
public enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidStartLine(String)
    case unsupportedVersion(String)
    case startLineTooLong(limit: Int)
    case headerTooLarge(limit: Int)
    case tooManyHeaders(limit: Int)
    case invalidHeaderName(String)
    case invalidHeaderValue(name: String)
    case obsoleteLineFolding
    case invalidContentLength(String)
    /// Two framings at once (request smuggling): both Transfer-Encoding and
    /// Content-Length, several Content-Length fields, several Host fields.
    case conflictingFraming(String)
    case unsupportedTransferEncoding(String)
    case invalidChunk(String)
    case bodyTooLarge(limit: Int)
    /// The connection ended in the middle of a message.
    case unexpectedEnd

    /// The status a server answers with.
    public var status: HTTPResponse.Status {
        switch self {
        case .startLineTooLong: return .uriTooLong
        case .headerTooLarge, .tooManyHeaders: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .contentTooLarge
        case .unsupportedTransferEncoding: return .notImplemented
        case .unsupportedVersion: return .init(code: 505, reasonPhrase: "HTTP Version Not Supported")
        default: return .badRequest
        }
    }

    public var description: String {
        switch self {
        case .invalidStartLine(let why): return "malformed HTTP start line: \(why)"
        case .unsupportedVersion(let v): return "unsupported HTTP version \(v) (HTTP/1.0 and HTTP/1.1 are)"
        case .startLineTooLong(let limit): return "HTTP start line longer than \(limit) bytes"
        case .headerTooLarge(let limit): return "HTTP header section larger than \(limit) bytes"
        case .tooManyHeaders(let limit): return "more than \(limit) HTTP header fields"
        case .invalidHeaderName(let why): return "malformed HTTP header field name: \(why)"
        case .invalidHeaderValue(let name): return "HTTP header field \(name) has a control character, bare CR or NUL in its value"
        case .obsoleteLineFolding: return "HTTP header field continued on a folded line (obsolete line folding is refused)"
        case .invalidContentLength(let v): return "Content-Length is not a decimal length: \"\(v)\""
        case .conflictingFraming(let why): return "ambiguous HTTP message framing: \(why)"
        case .unsupportedTransferEncoding(let v): return "unsupported Transfer-Encoding \"\(v)\" (chunked is)"
        case .invalidChunk(let why): return "malformed chunked body: \(why)"
        case .bodyTooLarge(let limit): return "HTTP body larger than \(limit) bytes"
        case .unexpectedEnd: return "the connection ended in the middle of an HTTP message"
        }
    }
}

/// How a message's body is delimited.
public enum HTTPBodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
    /// Until the connection closes (responses only).
    case untilClose
}

/// What the start line and fields say about the connection, beyond HTTPTypes' fields.
public struct HTTPHeadInfo: Sendable, Equatable {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Whether the connection may carry another message after this one.
    public var keepAlive: Bool
    public var framing: HTTPBodyFraming
    /// `Expect: 100-continue` (requests).
    public var expectsContinue: Bool
    /// An `Expect` other than 100-continue (a server answers 417).
    public var unsupportedExpectation: Bool
}

/// One step of parsing.
public enum HTTPParserEvent: Sendable, Equatable {
    case request(HTTPRequest, HTTPHeadInfo)
    case response(HTTPResponse, HTTPHeadInfo)
    /// Body bytes: this range of the buffer passed in.
    case body(Range<Int>)
    /// The message ended; trailers if a chunked body had any.
    case end(HTTPFields?)
}

/// An incremental HTTP/1.1 parser of requests (servers) or responses (clients).
public struct HTTPParser: Sendable {
    public enum Kind: Sendable { case request, response }

    enum State: Sendable, Equatable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case endPending
    }

    public let kind: Kind
    public var limits: HTTPParserLimits
    var state: State = .head
    /// How far the current head has been scanned for its end (bytes from the input's start).
    var scanned = 0
    var bodyBytes = 0
    /// Responses: the request this response answers was a HEAD (no body whatever it says).
    public var nextResponseIsToHEAD = false

    public init(kind: Kind, limits: HTTPParserLimits = HTTPParserLimits()) {
        self.kind = kind
        self.limits = limits
    }

    /// True between messages (nothing of the next message consumed yet).
    public var isIdle: Bool { state == .head && scanned == 0 }

    /// One step from the start of `input` (the bytes not consumed yet): the event, if one
    /// is complete, and how many bytes to drop. Body ranges are relative to `input`.
    /// No event and nothing consumed: more input is needed. No event but bytes consumed
    /// (framing with nothing to report, such as a chunk's size line): drop them and call
    /// again.
    public mutating func next(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> Step {
        switch state {
        case .head:
            return try parseHead(input)
        case .endPending:
            finishMessage()
            return Step(event: .end(nil), consumed: 0)
        case .fixed(let remaining):
            if input.isEmpty { return .needMore }
            let n = min(remaining, input.count)
            state = remaining == n ? .endPending : .fixed(remaining: remaining - n)
            return Step(event: .body(0..<n), consumed: n)
        case .untilClose:
            if input.isEmpty { return .needMore }
            try countBody(input.count)
            return Step(event: .body(0..<input.count), consumed: input.count)
        case .chunkSize:
            return try parseChunkSize(input)
        case .chunkData(let remaining):
            if input.isEmpty { return .needMore }
            let n = min(remaining, input.count)
            state = remaining == n ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            return Step(event: .body(0..<n), consumed: n)
        case .chunkDataEnd:
            if input.count < 2 { return .needMore }
            guard input[0] == cr, input[1] == lf else { throw .invalidChunk("chunk data not followed by CRLF") }
            state = .chunkSize
            return Step(event: nil, consumed: 2)
        case .trailers:
            return try parseTrailers(input)
        }
    }

    /// What ``next(_:)`` did.
    public struct Step: Sendable, Equatable {
        public var event: HTTPParserEvent?
        public var consumed: Int
        static let needMore = Step(event: nil, consumed: 0)
    }

    /// The input ended (the peer closed). Returns the last event of a body delimited by
    /// the close; nil if the connection was between messages.
    /// - Throws: ``HTTPParseError/unexpectedEnd`` in the middle of a message.
    public mutating func finish() throws(HTTPParseError) -> HTTPParserEvent? {
        switch state {
        case .untilClose:
            finishMessage()
            return .end(nil)
        case .endPending:
            finishMessage()
            return .end(nil)
        case .head where scanned == 0:
            return nil
        default:
            throw .unexpectedEnd
        }
    }

    private mutating func finishMessage() {
        state = .head
        scanned = 0
        bodyBytes = 0
    }

    private mutating func countBody(_ n: Int) throws(HTTPParseError) {
        bodyBytes += n
        if let max = limits.maxBodyBytes, bodyBytes > max { throw .bodyTooLarge(limit: max) }
    }

    // MARK: heads

    private mutating func parseHead(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> Step {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        if kind == .request && scanned == 0 {
            var start = 0
            while input.count - start >= 2 && input[start] == cr && input[start + 1] == lf { start += 2 }
            if start > 0 { return Step(event: nil, consumed: start) }
            // A lone CR may be the start of another empty line: wait for its LF before
            // deciding (scanning it as part of a head would make the split matter).
            if input.count == 1 && input[0] == cr { return .needMore }
        }
        // A request's method is checked as soon as its bytes are here, before any limit:
        // a peer speaking something else (a TLS ClientHello to a plain port) is refused at
        // once rather than at the header timeout, with the same error however the bytes
        // arrive.
        if kind == .request { try checkMethodPrefix(input) }
        guard let end = findHeadEnd(input) else {
            try checkIncompleteHead(input)
            scanned = input.count
            return .needMore
        }
        // `end` is the index just past the empty line.
        let head = UnsafeRawBufferPointer(rebasing: input[..<end])
        var lines = LineCursor(head)
        guard let startLine = try lines.next() else { throw .invalidStartLine("empty") }
        if startLine.count > limits.maxStartLineBytes { throw .startLineTooLong(limit: limits.maxStartLineBytes) }
        if end - startLine.upperBound - 2 > limits.maxHeaderBytes + 2 { throw .headerTooLarge(limit: limits.maxHeaderBytes) }
        var fields = HTTPFields()
        var facts = FramingFacts()
        try parseFields(&lines, head, into: &fields, facts: &facts)
        scanned = 0
        bodyBytes = 0
        switch kind {
        case .request:
            let (request, info) = try makeRequest(head, startLine, fields, facts)
            enterBody(info.framing)
            return Step(event: .request(request, info), consumed: end)
        case .response:
            let (response, info) = try makeResponse(head, startLine, fields, facts)
            enterBody(info.framing)
            return Step(event: .response(response, info), consumed: end)
        }
    }

    private mutating func enterBody(_ framing: HTTPBodyFraming) {
        switch framing {
        case .none, .length(0): state = .endPending
        case .length(let n): state = .fixed(remaining: n)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    /// The index after "\r\n\r\n", scanning on from where the last call stopped.
    private func findHeadEnd(_ input: UnsafeRawBufferPointer) -> Int? {
        var i = max(0, scanned - 3)
        let n = input.count
        while i + 3 < n {
            if input[i + 3] != lf { i += input[i + 3] == cr ? 1 : 4; continue }
            if input[i] == cr && input[i + 1] == lf && input[i + 2] == cr { return i + 4 }
            i += 1
        }
        return nil
    }

    /// The method so far: token bytes, then (once it is here) one space.
    private func checkMethodPrefix(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) {
        var i = 0
        let n = input.count
        while i < n && isTokenByte(input[i]) { i += 1 }
        if i == n || (i > 0 && input[i] == sp) { return }
        throw .invalidStartLine("the method is not a token followed by one space")
    }

    /// An incomplete head already over a limit is refused now, not when it completes.
    private func checkIncompleteHead(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) {
        // A start line at the limit may have its CR here and its LF still to come.
        if input.count <= limits.maxStartLineBytes + 1 { return }
        var firstLineEnd: Int?
        for i in 0..<min(input.count, limits.maxStartLineBytes + 2) where input[i] == lf { firstLineEnd = i; break }
        guard let lineEnd = firstLineEnd else { throw .startLineTooLong(limit: limits.maxStartLineBytes) }
        if input.count - lineEnd > limits.maxHeaderBytes + 4 { throw .headerTooLarge(limit: limits.maxHeaderBytes) }
    }

    struct FramingFacts {
        var contentLength: Int?
        var contentLengthCount = 0
        var transferEncodings: [String] = []
        var transferEncodingFields = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var expect: String?
        var hostCount = 0
        var host: String?
    }

    private func parseFields(_ lines: inout LineCursor, _ head: UnsafeRawBufferPointer,
                             into fields: inout HTTPFields, facts: inout FramingFacts) throws(HTTPParseError) {
        var count = 0
        while let line = try lines.next() {
            if line.isEmpty { return }
            count += 1
            if count > limits.maxHeaderCount { throw .tooManyHeaders(limit: limits.maxHeaderCount) }
            let field = try parseField(head, line)
            note(field, into: &facts)
            if kind == .request && field.name == hostName {
                facts.hostCount += 1
                facts.host = field.value
                continue   // kept as the request's authority, as HTTPTypes does
            }
            fields.append(field)
        }
    }

    private func parseField(_ head: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPParseError) -> HTTPField {
        let first = head[line.lowerBound]
        if first == sp || first == htab { throw .obsoleteLineFolding }
        var colon = line.lowerBound
        while colon < line.upperBound && head[colon] != colonByte {
            if !isTokenByte(head[colon]) {
                if head[colon] == sp || head[colon] == htab { throw .invalidHeaderName("whitespace before the colon") }
                throw .invalidHeaderName("byte 0x\(String(head[colon], radix: 16)) is not allowed in a field name")
            }
            colon += 1
        }
        if colon == line.upperBound { throw .invalidHeaderName("no colon in a header line") }
        if colon == line.lowerBound { throw .invalidHeaderName("empty field name") }
        let nameText = String(decoding: UnsafeRawBufferPointer(rebasing: head[line.lowerBound..<colon]), as: UTF8.self)
        guard let name = HTTPField.Name(nameText) else { throw .invalidHeaderName(nameText) }
        var v = colon + 1
        var e = line.upperBound
        while v < e && (head[v] == sp || head[v] == htab) { v += 1 }
        while e > v && (head[e - 1] == sp || head[e - 1] == htab) { e -= 1 }
        for i in v..<e {
            let b = head[i]
            if b < 0x20 && b != htab || b == 0x7F { throw .invalidHeaderValue(name: nameText) }
        }
        return HTTPField(name: name, value: UnsafeRawBufferPointer(rebasing: head[v..<e]))
    }

    private func note(_ field: HTTPField, into facts: inout FramingFacts) {
        switch field.name {
        case .contentLength:
            facts.contentLengthCount += 1
            facts.contentLength = Self.decimal(field.value)
        case .transferEncoding:
            facts.transferEncodingFields += 1
            // Empty list elements do not count (RFC 9110 §5.6.1): "chunked, " is chunked.
            for coding in field.value.split(separator: ",") {
                let c = trimmedLowercase(coding)
                if !c.isEmpty { facts.transferEncodings.append(c) }
            }
        case .connection:
            for token in field.value.split(separator: ",") {
                switch trimmedLowercase(token) {
                case "close": facts.connectionClose = true
                case "keep-alive": facts.connectionKeepAlive = true
                default: break
                }
            }
        case .expect:
            facts.expect = trimmedLowercase(field.value[...])
        default:
            break
        }
    }

    /// 1*DIGIT, without overflow (at most 18 digits); nil otherwise.
    static func decimal(_ text: String) -> Int? {
        let u = text.utf8
        if u.isEmpty || u.count > 18 { return nil }
        var n = 0
        for b in u {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n * 10 + Int(b - 0x30)
        }
        return n
    }

    private func contentLength(_ facts: FramingFacts, _ head: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int? {
        if facts.contentLengthCount == 0 { return nil }
        if facts.contentLengthCount > 1 { throw .conflictingFraming("more than one Content-Length field") }
        guard let n = facts.contentLength else { throw .invalidContentLength(contentLengthText(head)) }
        if let max = limits.maxBodyBytes, n > max { throw .bodyTooLarge(limit: max) }
        return n
    }

    private func contentLengthText(_ head: UnsafeRawBufferPointer) -> String {
        // Only for the error message: re-find the raw value.
        var lines = LineCursor(head)
        while let line = try? lines.next(), !line.isEmpty {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: head[line]), as: UTF8.self)
            if text.lowercased().hasPrefix("content-length:") {
                return String(text.dropFirst("content-length:".count).drop(while: { $0 == " " || $0 == "\t" }))
            }
        }
        return ""
    }

    private func makeRequest(_ head: UnsafeRawBufferPointer, _ line: Range<Int>, _ fields: HTTPFields,
                             _ facts: FramingFacts) throws(HTTPParseError) -> (HTTPRequest, HTTPHeadInfo) {
        // method SP request-target SP HTTP-version
        var i = line.lowerBound
        while i < line.upperBound && isTokenByte(head[i]) { i += 1 }
        if i == line.lowerBound || i == line.upperBound || head[i] != sp { throw .invalidStartLine("the method is not a token followed by one space") }
        let method = String(decoding: UnsafeRawBufferPointer(rebasing: head[line.lowerBound..<i]), as: UTF8.self)
        let targetStart = i + 1
        var j = targetStart
        while j < line.upperBound && head[j] > 0x20 && head[j] < 0x7F { j += 1 }
        if j == targetStart { throw .invalidStartLine("no request target") }
        if j == line.upperBound || head[j] != sp { throw .invalidStartLine("the request target has a byte that is not visible ASCII, or no version follows") }
        let targetBytes = UnsafeRawBufferPointer(rebasing: head[targetStart..<j])
        let target = String(decoding: targetBytes, as: UTF8.self)
        let minor = try version(head, (j + 1)..<line.upperBound)
        guard let m = HTTPRequest.Method(method) else { throw .invalidStartLine("method \(method)") }
        let targetAuthority = try Self.checkTarget(targetBytes, method: m)
        if facts.hostCount > 1 { throw .conflictingFraming("more than one Host field") }
        if facts.hostCount == 0 && minor == 1 { throw .invalidStartLine("an HTTP/1.1 request without a Host field") }
        if let host = facts.host, !host.utf8.allSatisfy(isAuthorityByte) {
            throw .invalidStartLine("the Host field is not a host[:port]")
        }

        let framing: HTTPBodyFraming
        if facts.transferEncodingFields > 0 {
            if facts.contentLengthCount > 0 { throw .conflictingFraming("both Transfer-Encoding and Content-Length") }
            if minor == 0 { throw .conflictingFraming("Transfer-Encoding in an HTTP/1.0 request") }
            guard facts.transferEncodings.last == "chunked" else {
                throw .conflictingFraming("Transfer-Encoding whose final coding is not chunked")
            }
            if facts.transferEncodings.count > 1 {
                throw .unsupportedTransferEncoding(facts.transferEncodings.joined(separator: ", "))
            }
            framing = .chunked
        } else if let n = try contentLength(facts, head) {
            framing = n == 0 ? .none : .length(n)
        } else {
            framing = .none
        }
        let keepAlive = minor == 1 ? !facts.connectionClose : (facts.connectionKeepAlive && !facts.connectionClose)
        // An absolute-form target names the authority; Host is then ignored (RFC 9112 §3.2.2).
        var request = HTTPRequest(method: m, scheme: nil, authority: targetAuthority ?? facts.host, path: target)
        request.headerFields = fields
        let expect = facts.expect
        let info = HTTPHeadInfo(minorVersion: minor, keepAlive: keepAlive, framing: framing,
                                expectsContinue: expect == "100-continue" && minor == 1,
                                unsupportedExpectation: expect != nil && expect != "100-continue")
        return (request, info)
    }

    private func makeResponse(_ head: UnsafeRawBufferPointer, _ line: Range<Int>, _ fields: HTTPFields,
                              _ facts: FramingFacts) throws(HTTPParseError) -> (HTTPResponse, HTTPHeadInfo) {
        // HTTP-version SP 3DIGIT SP [reason-phrase]
        guard line.count >= 12 else { throw .invalidStartLine("status line too short") }
        let minor = try version(head, line.lowerBound..<(line.lowerBound + 8))
        let s = line.lowerBound + 8
        guard head[s] == sp else { throw .invalidStartLine("no space after the version") }
        var code = 0
        for k in 1...3 {
            let d = head[s + k]
            guard d >= 0x30 && d <= 0x39 else { throw .invalidStartLine("the status code is not three digits") }
            code = code * 10 + Int(d - 0x30)
        }
        if code < 100 { throw .invalidStartLine("status code \(code)") }
        var reason = ""
        if s + 4 < line.upperBound {
            guard head[s + 4] == sp else { throw .invalidStartLine("no space after the status code") }
            for k in (s + 5)..<line.upperBound {
                let b = head[k]
                if b < 0x20 && b != htab || b == 0x7F { throw .invalidStartLine("a control byte in the reason phrase") }
            }
            reason = String(decoding: UnsafeRawBufferPointer(rebasing: head[(s + 5)..<line.upperBound]), as: UTF8.self)
        }
        let framing: HTTPBodyFraming
        if (100..<200).contains(code) || code == 204 || code == 304 || nextResponseIsToHEAD {
            framing = .none
        } else if facts.transferEncodingFields > 0 {
            if facts.contentLengthCount > 0 { throw .conflictingFraming("both Transfer-Encoding and Content-Length") }
            framing = facts.transferEncodings.last == "chunked" ? .chunked : .untilClose
        } else if let n = try contentLength(facts, head) {
            framing = n == 0 ? .none : .length(n)
        } else {
            framing = .untilClose
        }
        var keepAlive = minor == 1 ? !facts.connectionClose : (facts.connectionKeepAlive && !facts.connectionClose)
        if framing == .untilClose { keepAlive = false }
        let response = HTTPResponse(status: .init(code: code, reasonPhrase: reason), headerFields: fields)
        let info = HTTPHeadInfo(minorVersion: minor, keepAlive: keepAlive, framing: framing,
                                expectsContinue: false, unsupportedExpectation: false)
        return (response, info)
    }

    /// The request target is one of RFC 9112 §3.2's four forms, of URI characters only:
    /// origin-form ("/path?query"), absolute-form ("scheme://authority/path"),
    /// authority-form ("host:port", CONNECT only), asterisk-form ("*", OPTIONS only).
    /// Returns the authority of an absolute-form target.
    static func checkTarget(_ t: UnsafeRawBufferPointer, method: HTTPRequest.Method) throws(HTTPParseError) -> String? {
        if !t.allSatisfy(isTargetByte) { throw .invalidStartLine("the request target has a character URIs do not allow") }
        if t.count == 1 && t[0] == 0x2A {
            if method != .options { throw .invalidStartLine("the asterisk target is only for OPTIONS") }
            return nil
        }
        if t[0] == 0x2F { return nil }   // origin-form
        if method == .connect {
            if t.allSatisfy(isAuthorityByte) && t.contains(colonByte) { return nil }
            throw .invalidStartLine("CONNECT needs a host:port target")
        }
        // absolute-form: scheme ":" "//" authority path-abempty [ "?" query ]
        var i = 0
        while i < t.count && (isAlpha(t[i]) || i > 0 && (isDigit(t[i]) || t[i] == 0x2B || t[i] == 0x2D || t[i] == 0x2E)) { i += 1 }
        guard i > 0, i + 2 < t.count, t[i] == colonByte, t[i + 1] == 0x2F, t[i + 2] == 0x2F else {
            throw .invalidStartLine("the request target is neither a path nor an absolute URI")
        }
        let start = i + 3
        var end = start
        while end < t.count && t[end] != 0x2F && t[end] != 0x3F { end += 1 }
        let authority = UnsafeRawBufferPointer(rebasing: t[start..<end])
        if authority.isEmpty || !authority.allSatisfy(isAuthorityByte) { throw .invalidStartLine("the request target's authority is malformed") }
        return String(decoding: authority, as: UTF8.self)
    }

    /// "HTTP/1.0" or "HTTP/1.1" exactly; the minor version.
    private func version(_ head: UnsafeRawBufferPointer, _ r: Range<Int>) throws(HTTPParseError) -> Int {
        let text = UnsafeRawBufferPointer(rebasing: head[r])
        let prefix: [UInt8] = [0x48, 0x54, 0x54, 0x50, 0x2F]   // "HTTP/"
        guard text.count == 8, zip(text.prefix(5), prefix).allSatisfy({ $0 == $1 }), text[6] == 0x2E,
              (0x30...0x39).contains(text[5]), (0x30...0x39).contains(text[7]) else {
            throw .invalidStartLine("the version is not HTTP/x.y")
        }
        guard text[5] == 0x31, text[7] == 0x30 || text[7] == 0x31 else {
            throw .unsupportedVersion(String(decoding: text, as: UTF8.self))
        }
        return Int(text[7] - 0x30)
    }

    // MARK: chunks

    private mutating func parseChunkSize(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> Step {
        // chunk-size [ chunk-ext ] CRLF; extensions are skipped.
        var i = 0
        var size = 0
        var digits = 0
        while i < input.count, let d = hexValue(input[i]) {
            digits += 1
            if digits > 15 { throw .invalidChunk("chunk size too large") }
            size = size << 4 | d
            i += 1
        }
        if i == input.count {
            return .needMore
        }
        if digits == 0 { throw .invalidChunk("no chunk size") }
        // Extensions: BWS ";" ... up to CRLF, with no control bytes but HTAB. The checks
        // run in input order, so a refusal says the same whatever bytes have arrived.
        var k = i
        while k < input.count && (input[k] == sp || input[k] == htab) { k += 1 }
        if k < input.count && input[k] != 0x3B && input[k] != cr { throw .invalidChunk("junk after the chunk size") }
        if k > i && k < input.count && input[k] == cr { throw .invalidChunk("junk after the chunk size") }
        var j = i
        while j < input.count && input[j] != cr && input[j] != lf {
            let b = input[j]
            if b < 0x20 && b != htab || b == 0x7F { throw .invalidChunk("a control byte in a chunk extension") }
            j += 1
        }
        if j - i > 4096 { throw .invalidChunk("chunk extensions longer than 4096 bytes") }
        if j + 1 >= input.count {
            if j < input.count && input[j] != cr { throw .invalidChunk("chunk size line not ended by CRLF") }
            return .needMore
        }
        guard input[j] == cr, input[j + 1] == lf else { throw .invalidChunk("chunk size line not ended by CRLF") }
        if j > i { try Self.checkChunkExtensions(UnsafeRawBufferPointer(rebasing: input[i..<j])) }
        let consumed = j + 2
        if size == 0 {
            state = .trailers
            scanned = 0
            return Step(event: nil, consumed: consumed)
        }
        try countBody(size)
        state = .chunkData(remaining: size)
        return Step(event: nil, consumed: consumed)
    }

    /// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ext-name a token,
    /// ext-val a token or a quoted-string (RFC 9112 §7.1.1).
    static func checkChunkExtensions(_ e: UnsafeRawBufferPointer) throws(HTTPParseError) {
        var i = 0
        func skipBWS() { while i < e.count && (e[i] == sp || e[i] == htab) { i += 1 } }
        func token() -> Bool {
            let s = i
            while i < e.count && isTokenByte(e[i]) { i += 1 }
            return i > s
        }
        while true {
            skipBWS()
            if i == e.count { return }
            guard e[i] == 0x3B else { throw .invalidChunk("junk after the chunk size") }
            i += 1
            skipBWS()
            guard token() else { throw .invalidChunk("a chunk extension without a name") }
            skipBWS()
            if i < e.count && e[i] == 0x3D {
                i += 1
                skipBWS()
                if i < e.count && e[i] == 0x22 {
                    i += 1
                    var closed = false
                    while i < e.count {
                        if e[i] == 0x5C { i += 2; continue }
                        if e[i] == 0x22 { closed = true; i += 1; break }
                        i += 1
                    }
                    if !closed || i > e.count { throw .invalidChunk("an unterminated quoted chunk extension value") }
                } else if !token() {
                    throw .invalidChunk("a chunk extension value that is neither a token nor a quoted string")
                }
            }
        }
    }

    private mutating func parseTrailers(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> Step {
        if input.count < 2 { return .needMore }
        // No trailers: just the final CRLF.
        if input[0] == cr && input[1] == lf {
            finishMessage()
            return Step(event: .end(nil), consumed: 2)
        }
        // Trailer fields, ended by an empty line: the same rules as the header section.
        guard let end = findHeadEnd(input) else {
            if input.count > limits.maxHeaderBytes { throw .headerTooLarge(limit: limits.maxHeaderBytes) }
            scanned = input.count
            return .needMore
        }
        let section = UnsafeRawBufferPointer(rebasing: input[..<end])
        var lines = LineCursor(section)
        var fields = HTTPFields()
        var facts = FramingFacts()
        var count = 0
        while let line = try lines.next() {
            if line.isEmpty { break }
            count += 1
            if count > limits.maxHeaderCount { throw .tooManyHeaders(limit: limits.maxHeaderCount) }
            let field = try parseField(section, line)
            note(field, into: &facts)
            fields.append(field)
        }
        finishMessage()
        return Step(event: .end(fields), consumed: end)
    }
}

// MARK: bytes

let cr: UInt8 = 0x0D
let lf: UInt8 = 0x0A
let sp: UInt8 = 0x20
let htab: UInt8 = 0x09
let colonByte: UInt8 = 0x3A

/// `Host` (HTTPTypes hides its name: in its model the value is the request's authority).
let hostName = HTTPField.Name("Host")!

/// tchar (RFC 9110 §5.6.2).
@inline(__always)
func isTokenByte(_ b: UInt8) -> Bool {
    tokenTable[Int(b)]
}

let tokenTable: [Bool] = (0..<256).map { (i: Int) -> Bool in
    let b = UInt8(i)
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
    }
}

/// Characters of a request target: RFC 3986's unreserved, sub-delims, ":", "@", "/",
/// "?", "%" (percent-encoding), and "[" "]" (IPv6 literals).
let targetTable: [Bool] = (0..<256).map { (i: Int) -> Bool in
    let b = UInt8(i)
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return "-._~!$&'()*+,;=:@/?%[]".utf8.contains(b)
    }
}

/// Characters of a Host value or an authority: host (reg-name, IPv4, IP-literal) and port.
let authorityTable: [Bool] = (0..<256).map { (i: Int) -> Bool in
    let b = UInt8(i)
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return "-._~!$&'()*+,;=:%[]".utf8.contains(b)
    }
}

@inline(__always) func isTargetByte(_ b: UInt8) -> Bool { targetTable[Int(b)] }
@inline(__always) func isAuthorityByte(_ b: UInt8) -> Bool { authorityTable[Int(b)] }
@inline(__always) func isAlpha(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
@inline(__always) func isDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) }

@inline(__always)
func hexValue(_ b: UInt8) -> Int? {
    switch b {
    case 0x30...0x39: return Int(b - 0x30)
    case 0x41...0x46: return Int(b - 0x41 + 10)
    case 0x61...0x66: return Int(b - 0x61 + 10)
    default: return nil
    }
}

func trimmedLowercase(_ s: Substring) -> String {
    var t = s[...]
    while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
    return t.lowercased()
}

/// Lines of a complete head, each without its CRLF. A bare CR or LF is an error.
struct LineCursor {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func next() throws(HTTPParseError) -> Range<Int>? {
        if position >= bytes.count { return nil }
        var i = position
        while i < bytes.count {
            let b = bytes[i]
            if b == cr {
                guard i + 1 < bytes.count, bytes[i + 1] == lf else { throw .invalidStartLine("a bare CR") }
                let line = position..<i
                position = i + 2
                return line
            }
            if b == lf { throw .invalidStartLine("a bare LF (lines end with CRLF)") }
            if b == 0 { throw .invalidStartLine("a NUL byte in the head") }
            i += 1
        }
        throw .invalidStartLine("a head line without CRLF")
    }
}

// The two parsers behind one interface: SpindleHTTP's HTTPParser, and llhttp (Node.js's
// parser) as SwiftNIO's HTTPRequestDecoder / HTTPResponseDecoder run it on an
// EmbeddedChannel. Both are fed the same input cut into the same pieces, and each answer
// is flattened into an Outcome: accepted or rejected, and the messages it completed.
//
// What is compared, per message: method and target (requests), status code (responses),
// minor version, header fields in order (name as sent, value), Host (Spindle keeps it as
// the request's authority, outside the fields), body bytes concatenated, trailers,
// keep-alive. Not compared: the reason phrase, which NIO drops (it builds
// HTTPResponseStatus(statusCode:) from the code alone). Field values are compared without
// the OWS that ends them, which llhttp leaves in and RFC 9110 §5.5 leaves out.
//
// One rule is the harness's, not either parser's: after a message that does not keep the
// connection (keep-alive false), or a 101 response, the connection is over (RFC 9112
// §9.6, RFC 9110 §15.2.2), so the Spindle side stops there, as its server and client do,
// and the NIO side's "data after Connection: close" error (llhttp's CLOSED_CONNECTION)
// counts as that same stop, as does a 101 (whose bytes after it are another protocol's).
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SpindleHTTP

#if canImport(Glibc)
import Glibc
#endif

/// What to parse: requests (a server's side) or responses (a client's side).
struct Input: Sendable, CustomStringConvertible {
    enum Kind: String, Sendable { case request, response }
    var kind: Kind
    var bytes: [UInt8]
    /// Responses: they answer HEAD requests (no body, whatever the fields say).
    var toHEAD = false

    var description: String { "\(kind)\(toHEAD ? " to HEAD" : "") \"\(escaped(bytes))\" (\(bytes.count) bytes)" }
}

struct Field: Equatable, Sendable, CustomStringConvertible {
    var name: String
    var value: String
    var description: String { "\(name): \(escaped(Array(value.utf8)))" }
}

/// One complete message, flattened.
struct Message: Equatable, Sendable, CustomStringConvertible {
    var method = ""
    var target = ""
    /// Requests: the Host field values (Spindle: its authority, so at most one).
    var hosts: [String] = []
    var status = 0
    var minorVersion = 1
    /// In order; Host excluded for requests.
    var fields: [Field] = []
    var body: [UInt8] = []
    var trailers: [Field]?
    var keepAlive = true

    var description: String {
        let start = status == 0 ? "\(method) \(escaped(Array(target.utf8))) host=\(hosts)" : "\(status)"
        let t = trailers.map { " trailers=\($0)" } ?? ""
        let b = body.count <= 64 ? "\"\(escaped(body))\"" : "\(body.count) bytes \"\(escaped(Array(body.prefix(48))))...\""
        return "[\(start) HTTP/1.\(minorVersion) \(fields) body=\(b)\(t) keepAlive=\(keepAlive)]"
    }

    /// The values of the fields named `name` (lowercase).
    func field(_ name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name }.map(\.value)
    }
}

/// Why one side refused the input.
enum Failure: Sendable, CustomStringConvertible {
    case spindle(HTTPParseError)
    case nio(HTTPParserError)
    /// Anything else NIO threw (its own checks, such as an unsolicited response).
    case nioOther(String)
    /// The harness's own guard: the parser stopped making progress.
    case stuck(String)

    var description: String {
        switch self {
        case .spindle(let e): return "Spindle: \(e) (\(e.status.code))"
        case .nio(let e): return "llhttp: \(e)"
        case .nioOther(let s): return "NIO: \(s)"
        case .stuck(let s): return "stuck: \(s)"
        }
    }
}

struct Outcome: Sendable, CustomStringConvertible {
    /// The messages completed (before the failure, if any).
    var messages: [Message] = []
    /// nil: accepted.
    var failure: Failure?
    /// Spindle only: the input offset where each completed message ended.
    var messageEnds: [Int] = []
    /// Spindle only: the bytes it consumed without an event (chunk-size lines with their
    /// extensions, the CRLF after chunk data, empty lines before a request line).
    var framingLines: [[UInt8]] = []
    /// The connection ended after a message that does not keep it (see the file comment).
    var closedAfterMessage = false

    var accepted: Bool { failure == nil }
    /// Spindle only: where the message it failed in began.
    var failedMessageStart: Int { messageEnds.last ?? 0 }

    var description: String {
        let verdict = failure.map { "REJECTED (\($0))" } ?? "accepted"
        let closed = closedAfterMessage ? ", then the connection ends" : ""
        return "\(verdict), \(messages.count) message(s)\(closed): \(messages.map(\.description).joined(separator: " "))"
    }
}

/// Limits both sides run with. NIO's header-field count is set to Spindle's so the boundary
/// (100 fields) is compared directly; the other limits differ and are on the allowlist.
let spindleLimits = HTTPParserLimits()
let nioLimits: NIOHTTPDecoderLimitConfiguration = {
    var c = NIOHTTPDecoderLimitConfiguration()
    c.maxHeaderFieldCount = spindleLimits.maxHeaderCount
    return c
}()

/// The pieces `bytes` is cut into at `cuts` (offsets; out-of-range and repeated ones ignored).
func pieces(_ bytes: [UInt8], _ cuts: [Int]) -> [ArraySlice<UInt8>] {
    var out: [ArraySlice<UInt8>] = []
    var from = 0
    for c in Set(cuts).sorted() where c > 0 && c < bytes.count {
        out.append(bytes[from..<c])
        from = c
    }
    out.append(bytes[from...])
    return out
}

// MARK: Spindle

/// Feeds `input` to HTTPParser in the pieces cut at `splitAt`, as a connection does: the
/// caller holds the buffer, drops what the parser consumed, reads more when the parser
/// consumed nothing and reported nothing, and calls finish() at the end of the input.
func spindleParse(_ input: Input, splitAt: [Int] = []) -> Outcome {
    var parser = HTTPParser(kind: input.kind == .request ? .request : .response, limits: spindleLimits)
    parser.nextResponseIsToHEAD = input.toHEAD
    var rest = pieces(input.bytes, splitAt)[...]
    var buffer: [UInt8] = []
    var fed = 0          // bytes of the input appended to the buffer so far
    var out = Outcome()
    var current: Message?
    var steps = 0
    let maxSteps = 4 * input.bytes.count + 64

    // Returns true when the connection is over.
    func end(_ trailers: HTTPFields?, at offset: Int) -> Bool {
        guard var m = current else { return false }
        m.trailers = trailers.map { $0.map(Field.init) }
        out.messages.append(m)
        out.messageEnds.append(offset)
        current = nil
        if !m.keepAlive || m.status == 101 {
            out.closedAfterMessage = true
            return true
        }
        return false
    }

    do {
        while true {
            steps += 1
            if steps > maxSteps {
                out.failure = .stuck("HTTPParser made no progress after \(maxSteps) steps")
                return out
            }
            let step = try buffer.withUnsafeBytes { try parser.next($0) }
            switch step.event {
            case .request(let r, let info)?:
                current = Message(method: r.method.rawValue, target: r.path ?? "", hosts: r.authority.map { [$0] } ?? [],
                                  minorVersion: info.minorVersion, fields: r.headerFields.map(Field.init),
                                  keepAlive: info.keepAlive)
            case .response(let r, let info)?:
                current = Message(status: r.status.code, minorVersion: info.minorVersion,
                                  fields: r.headerFields.map(Field.init), keepAlive: info.keepAlive)
            case .body(let range)?:
                current?.body += buffer[range]
            case .end(let trailers)?:
                if end(trailers, at: fed - buffer.count + step.consumed) { return out }
            case nil:
                break
            }
            if step.consumed > buffer.count {
                out.failure = .stuck("HTTPParser consumed \(step.consumed) of \(buffer.count) bytes")
                return out
            }
            if step.event == nil && step.consumed > 0 { out.framingLines.append(Array(buffer[..<step.consumed])) }
            buffer.removeFirst(step.consumed)
            if step.event == nil && step.consumed == 0 {
                guard let next = rest.popFirst() else {
                    if case .end(let trailers)? = try parser.finish() { _ = end(trailers, at: fed) }
                    return out
                }
                buffer += next
                fed += next.count
            }
        }
    } catch let e as HTTPParseError {
        out.failure = .spindle(e)
    } catch {
        out.failure = .stuck("HTTPParser threw \(error), not an HTTPParseError")
    }
    return out
}

extension Field {
    /// The value's bytes as they were parsed, decoded as UTF-8 the way NIO decodes them.
    init(_ f: HTTPField) {
        name = f.name.rawName
        value = f.withUnsafeBytesOfValue { String(decoding: $0, as: UTF8.self) }
    }
}

// MARK: NIO (llhttp)

/// Feeds `input` to NIO's decoder on an EmbeddedChannel, one write per piece, then closes
/// the channel (EOF, which ends a body delimited by the close). Responses: the channel
/// first sends 16 requests (GET, or HEAD for `toHEAD`) through HTTPRequestEncoder, since
/// the response decoder pairs each response with the method of the request it answers.
func nioParse(_ input: Input, splitAt: [Int] = []) -> Outcome {
    let channel = EmbeddedChannel()
    var out = Outcome()
    var current: Message?

    func collect() throws {
        switch input.kind {
        case .request:
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                if out.closedAfterMessage { continue }
                switch part {
                case .head(let h):
                    current = message(h.headers, minor: Int(h.version.minor), keepAlive: h.isKeepAlive, request: true)
                    current?.method = h.method.rawValue
                    current?.target = h.uri
                case .body(let b):
                    current?.body += Array(b.readableBytesView)
                case .end(let t):
                    end(t)
                }
            }
        case .response:
            while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
                if out.closedAfterMessage { continue }   // after a 101: another protocol
                switch part {
                case .head(let h):
                    current = message(h.headers, minor: Int(h.version.minor), keepAlive: h.isKeepAlive, request: false)
                    current?.status = Int(h.status.code)
                    // Informational heads (1xx but 101) come without an .end of their own.
                    if (100..<200).contains(h.status.code) && h.status.code != 101 { end(nil) }
                case .body(let b):
                    current?.body += Array(b.readableBytesView)
                case .end(let t):
                    end(t)
                }
            }
        }
    }

    func end(_ trailers: HTTPHeaders?) {
        guard var m = current else { return }
        m.trailers = trailers.map { $0.map { Field(name: $0.name, value: withoutTrailingOWS($0.value)) } }
        out.messages.append(m)
        current = nil
        // After a 101 the bytes are another protocol's (the decoder itself goes on parsing
        // when the 101 has no Upgrade field; the harness does not).
        if m.status == 101 { out.closedAfterMessage = true }
    }

    func fail(_ error: any Error) {
        if let e = error as? HTTPParserError {
            // llhttp refuses bytes after a message that closes the connection; those bytes
            // are past the end for the Spindle side too (see the file comment).
            if e == .closedConnection, let last = out.messages.last, !last.keepAlive {
                out.closedAfterMessage = true
                return
            }
            out.failure = .nio(e)
        } else {
            out.failure = .nioOther("\(error)")
        }
    }

    do {
        let ops = channel.pipeline.syncOperations
        switch input.kind {
        case .request:
            try ops.addHandler(ByteToMessageHandler(HTTPRequestDecoder(
                leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: nioLimits)))
        case .response:
            try ops.addHandler(HTTPRequestEncoder())
            try ops.addHandler(ByteToMessageHandler(HTTPResponseDecoder(
                leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .forward, limitConfiguration: nioLimits)))
            let head = HTTPRequestHead(version: .http1_1, method: input.toHEAD ? .HEAD : .GET, uri: "/",
                                       headers: ["Host": "example.com"])
            for _ in 0..<16 {
                try channel.writeOutbound(HTTPClientRequestPart.head(head))
                try channel.writeOutbound(HTTPClientRequestPart.end(nil))
            }
            while try channel.readOutbound(as: ByteBuffer.self) != nil {}
        }
    } catch {
        out.failure = .nioOther("setting up the channel: \(error)")
        return out
    }

    // Stop at the first error: the decoder refuses everything after it.
    var stopped = false
    for piece in pieces(input.bytes, splitAt) {
        do {
            try channel.writeInbound(ByteBuffer(bytes: piece))
        } catch {
            stopped = true
            try? collect()   // what the decoder completed before the error
            fail(error)
            break
        }
        do { try collect() } catch { fail(error); stopped = true; break }
        if out.closedAfterMessage { stopped = true; break }
    }
    do {
        _ = try channel.finish(acceptAlreadyClosed: true)
        if !stopped { try collect() }
    } catch {
        if !stopped {
            try? collect()
            fail(error)
        }
    }
    return out
}

/// A field value without the OWS after it: llhttp reports the bytes up to the line's CR,
/// Spindle the field value, which excludes it (RFC 9110 §5.5).
func withoutTrailingOWS(_ value: String) -> String {
    var u = Array(value.utf8)
    while let last = u.last, last == 0x20 || last == 0x09 { u.removeLast() }
    return String(decoding: u, as: UTF8.self)
}

private func message(_ headers: HTTPHeaders, minor: Int, keepAlive: Bool, request: Bool) -> Message {
    var m = Message(minorVersion: minor, keepAlive: keepAlive)
    for (name, raw) in headers {
        let value = withoutTrailingOWS(raw)
        if request && name.lowercased() == "host" {
            m.hosts.append(value)
        } else {
            m.fields.append(Field(name: name, value: value))
        }
    }
    return m
}

// MARK: comparing

/// How two outcomes differ, if they do.
enum Difference: Equatable, CustomStringConvertible {
    /// Spindle refused a message (the one after those both completed) that llhttp
    /// completed, or refused the input after the messages llhttp completed and accepted.
    case spindleRejects
    /// The other way round.
    case llhttpRejects
    /// Both rejected, or both accepted, and a message differs, or one side has more.
    case messages(String)

    var description: String {
        switch self {
        case .spindleRejects: return "Spindle rejects what llhttp accepts"
        case .llhttpRejects: return "llhttp rejects what Spindle accepts"
        case .messages(let s): return s
        }
    }
}

/// nil when the outcomes agree: both accept with the same messages, or both reject after
/// the same complete messages.
///
/// The messages both completed must be equal. Past them, the side that rejected with
/// fewer complete messages refused one the other accepted (the rejecting sides need not
/// stop at the same message: Spindle judges a head when it is complete, llhttp byte by
/// byte, so a fault later in the input can stop llhttp first).
func difference(_ s: Outcome, _ n: Outcome) -> Difference? {
    for (i, (a, b)) in zip(s.messages, n.messages).enumerated() where a != b {
        var what: [String] = []
        if a.method != b.method || a.target != b.target || a.status != b.status { what.append("start line") }
        if a.hosts != b.hosts { what.append("Host") }
        if a.minorVersion != b.minorVersion { what.append("version") }
        if a.fields != b.fields { what.append("fields") }
        if a.body != b.body { what.append("body") }
        if a.trailers != b.trailers { what.append("trailers") }
        if a.keepAlive != b.keepAlive { what.append("keep-alive") }
        return .messages("message \(i + 1) differs in \(what.joined(separator: ", "))")
    }
    let sc = s.messages.count, nc = n.messages.count
    switch (s.accepted, n.accepted) {
    case (true, true):
        return sc == nc ? nil : .messages("\(sc) message(s) from Spindle, \(nc) from llhttp, both accepting")
    case (false, true):
        return sc <= nc ? .spindleRejects : .messages("Spindle completed \(sc) message(s) and rejected, llhttp \(nc) and accepted")
    case (true, false):
        return nc <= sc ? .llhttpRejects : .messages("llhttp completed \(nc) message(s) and rejected, Spindle \(sc) and accepted")
    case (false, false):
        if sc == nc { return nil }
        return sc < nc ? .spindleRejects : .llhttpRejects
    }
}

/// Printable ASCII as is; CR, LF, HTAB, NUL, backslash and quote escaped; other bytes \xHH.
func escaped(_ bytes: [UInt8]) -> String {
    var s = ""
    for b in bytes {
        switch b {
        case 0x0D: s += "\\r"
        case 0x0A: s += "\\n"
        case 0x09: s += "\\t"
        case 0x00: s += "\\0"
        case 0x5C: s += "\\\\"
        case 0x22: s += "\\\""
        case 0x20...0x7E: s.unicodeScalars.append(Unicode.Scalar(b))
        default:
            let hex = String(b, radix: 16, uppercase: true)
            s += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    return s
}

/// SPINDLE_TEST_SCALE (default 1): the mutation count is divided by it (sanitizer runs).
let testScale: Int = {
    if let p = getenv("SPINDLE_TEST_SCALE"), let n = Int(String(cString: p)), n > 0 { return n }
    return 1
}()

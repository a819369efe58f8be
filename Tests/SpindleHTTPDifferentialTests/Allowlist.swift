// Known, intentional divergences between Spindle's parser and llhttp (as NIO runs it).
//
// Each entry names one class of inputs, says which single difference it allows, and why.
// Most allow only "Spindle rejects what llhttp accepts": Spindle is stricter on purpose.
// A few allow the other direction, where llhttp (not Spindle) departs from RFC 9110/9112;
// two allow a keep-alive flag that llhttp/NIO compute differently. Any difference that no
// entry explains fails the test, with the input and both outcomes.
//
// An entry's predicate recognizes the class from the input and the two outcomes: the side
// that went further gives a parse of the input to look at (the message the other side
// refused), and the side that rejected must have rejected for the reason the entry gives
// (its error), so that a different fault in the same input is not excused.
//
// Suspected Spindle bugs are NOT here: they are labels on failures (suspectedBugs, below)
// so a failure says what it is, and they still fail.
import NIOHTTP1
import SpindleHTTP

/// The two outcomes of one input, and what the predicates look at.
struct Divergent {
    let input: Input
    let spindle: Outcome
    let llhttp: Outcome

    /// The message llhttp completed and Spindle refused (the first past those both have).
    var refusedBySpindle: Message? {
        llhttp.messages.count > spindle.messages.count ? llhttp.messages[spindle.messages.count] : nil
    }
    /// The message Spindle completed and llhttp refused.
    var refusedByLLHTTP: Message? {
        spindle.messages.count > llhttp.messages.count ? spindle.messages[llhttp.messages.count] : nil
    }
    /// The input from where the message Spindle failed in begins.
    var fromSpindleFailure: ArraySlice<UInt8> { input.bytes[spindle.failedMessageStart...] }
    /// The first line of that message (without its line end, after any empty lines).
    var spindleFailedLine: ArraySlice<UInt8> {
        let rest = fromSpindleFailure.drop { $0 == 0x0D || $0 == 0x0A }
        let line = rest.prefix { $0 != 0x0A }
        return line.last == 0x0D ? line.dropLast() : line
    }
    var spindleError: HTTPParseError? {
        if case .spindle(let e)? = spindle.failure { return e }
        return nil
    }
    var llhttpError: HTTPParserError? {
        if case .nio(let e)? = llhttp.failure { return e }
        return nil
    }
    /// The chunk-size lines Spindle consumed: (digits, extension), line ends dropped.
    var chunkLines: [(digits: ArraySlice<UInt8>, ext: ArraySlice<UInt8>)] {
        spindle.framingLines.compactMap { line in
            guard line.count >= 3, line.last == 0x0A, line[line.count - 2] == 0x0D else { return nil }
            let body = line[..<(line.count - 2)]
            let digits = body.prefix(while: isHex)
            return digits.isEmpty ? nil : (digits, body.dropFirst(digits.count))
        }
    }
}

struct KnownDivergence: Sendable {
    enum Allowed: String, Sendable {
        /// Spindle rejects, llhttp accepts.
        case spindleRejects = "Spindle rejects, llhttp accepts"
        /// llhttp rejects, Spindle accepts: llhttp departs from the RFC, Spindle does not.
        case llhttpRejects = "llhttp rejects, Spindle accepts"
        /// The same messages, but keep-alive differs.
        case keepAliveOnly = "keep-alive differs"
        /// llhttp frames a body otherwise than Spindle, which follows the RFC.
        case llhttpMisframes = "llhttp frames the body otherwise"
    }

    var name: String
    var allowed: Allowed
    var reason: String
    var applies: @Sendable (Divergent) -> Bool
}

/// The entries that explain every difference between `s` and `n`, or nil if something is
/// left unexplained.
///
/// Keep-alive first: where the two disagree on a message both completed and a keep-alive
/// entry explains it, the flags are taken as equal, and if one side ended the connection
/// there (so stopped) while the other went on, what the other parsed after it is dropped.
/// What is left must then agree, or be one difference that an entry of its kind explains
/// ("rejects", or a body llhttp frames otherwise).
func knownDivergences(_ input: Input, _ s: Outcome, _ n: Outcome) -> [KnownDivergence]? {
    guard let d = difference(s, n) else { return [] }
    var s2 = s, n2 = n
    var used: [KnownDivergence] = []
    let common = min(s.messages.count, n.messages.count)
    let view = Divergent(input: input, spindle: s, llhttp: n)
    if let first = (0..<common).first(where: { s.messages[$0].keepAlive != n.messages[$0].keepAlive }),
       let k = knownDivergenceList.first(where: { $0.allowed == .keepAliveOnly && $0.applies(view) }) {
        used.append(k)
        for i in first..<common where s.messages[i].keepAlive != n.messages[i].keepAlive {
            n2.messages[i].keepAlive = s.messages[i].keepAlive
            if !s.messages[i].keepAlive && s.closedAfterMessage && s.messages.count == i + 1 {
                n2.messages = Array(n2.messages.prefix(i + 1))   // Spindle closed here
                n2.failure = nil
                break
            }
            if !n.messages[i].keepAlive && n.closedAfterMessage && n.messages.count == i + 1 {
                s2.messages = Array(s2.messages.prefix(i + 1))   // llhttp closed here
                s2.failure = nil
                break
            }
        }
    }
    let rest: Difference?
    if used.isEmpty { rest = d } else { rest = difference(s2, n2) }
    let allowed: KnownDivergence.Allowed
    switch rest {
    case nil: return used
    case .spindleRejects?: allowed = .spindleRejects
    case .llhttpRejects?: allowed = .llhttpRejects
    case .messages?: if used.isEmpty { allowed = .llhttpMisframes } else { return nil }
    }
    let restView = Divergent(input: input, spindle: s2, llhttp: n2)
    guard let k = knownDivergenceList.first(where: { $0.allowed == allowed && $0.applies(restView) }) else { return nil }
    return used + [k]
}

/// The "rejects" kind of difference left between the outcomes, if that is what they show.
func rejectsKind(_ s: Outcome, _ n: Outcome) -> KnownDivergence.Allowed? {
    switch difference(s, n) {
    case .spindleRejects?: return .spindleRejects
    case .llhttpRejects?: return .llhttpRejects
    default: return nil
    }
}

/// The suspected Spindle bug a failure looks like, if any (a label: it still fails).
func suspectedBug(_ input: Input, _ s: Outcome, _ n: Outcome) -> SuspectedBug? {
    let d = Divergent(input: input, spindle: s, llhttp: n)
    return suspectedBugs.first { $0.applies(d) }
}

/// The methods llhttp knows for HTTP/1.x (HTTP_METHOD_MAP in CNIOLLHTTP's c_nio_llhttp.h);
/// it refuses any other token.
let llhttpMethods: Set<String> = [
    "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE",
    "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
    "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR",
    "LINK", "UNLINK", "SOURCE", "QUERY",
]

@Sendable func isHex(_ b: UInt8) -> Bool {
    (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b)
}

/// tchar (RFC 9110 §5.6.2).
func isTchar(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
    }
}

private func isControl(_ b: UInt8) -> Bool { (b < 0x20 && b != 0x09) || b == 0x7F }

/// chunk-ext (RFC 9112 §7.1.1), exactly:
///   *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
///   chunk-ext-val = token / quoted-string.
func isValidChunkExtension(_ e: ArraySlice<UInt8>) -> Bool {
    var i = e.startIndex
    func ws() { while i < e.endIndex && (e[i] == 0x20 || e[i] == 0x09) { i += 1 } }
    func token() -> Bool {
        let start = i
        while i < e.endIndex && isTchar(e[i]) { i += 1 }
        return i > start
    }
    func quoted() -> Bool {
        guard i < e.endIndex, e[i] == 0x22 else { return false }
        i += 1
        while i < e.endIndex {
            let c = e[i]
            if c == 0x22 { i += 1; return true }
            if c == 0x5C {
                i += 1
                guard i < e.endIndex, !isControl(e[i]) else { return false }
            } else if isControl(c) {
                return false
            }
            i += 1
        }
        return false
    }
    while i < e.endIndex {
        ws()
        guard i < e.endIndex, e[i] == 0x3B else { return false }
        i += 1
        ws()
        guard token() else { return false }
        let afterName = i
        ws()
        if i < e.endIndex && e[i] == 0x3D {
            i += 1
            ws()
            guard token() || quoted() else { return false }
        } else {
            i = afterName
        }
    }
    return true
}

private func isBodiless(_ m: Message, _ input: Input) -> Bool {
    input.toHEAD || (100..<200).contains(m.status) || m.status == 204 || m.status == 304
}

/// The comma-separated elements of the fields named `name`, trimmed and lowercased.
private func listElements(_ m: Message, _ name: String) -> [String] {
    m.field(name).flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
        .map { withoutTrailingOWS(String($0.drop { $0 == " " || $0 == "\t" })).lowercased() }
}

private func connectionTokens(_ m: Message) -> [String] { listElements(m, "connection") }

/// The input's field lines named `name` (any case), raw: what follows the colon.
private func rawFieldValues(_ bytes: [UInt8], _ name: String) -> [ArraySlice<UInt8>] {
    let prefix = Array((name + ":").utf8)
    return bytes.split(separator: 0x0A).compactMap { line in
        let l = line.last == 0x0D ? line.dropLast() : line
        guard l.count >= prefix.count,
              zip(l.prefix(prefix.count), prefix).allSatisfy({ ($0 | 0x20) == ($1 | 0x20) }) else { return nil }
        return l.dropFirst(prefix.count)
    }
}

let knownDivergenceList: [KnownDivergence] = [
    KnownDivergence(
        name: "a Transfer-Encoding field with no coding",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §6.3 (3, 4): a Transfer-Encoding field overrides Content-Length, and a request \
            whose final coding is not chunked MUST get 400; an empty field is such a field. \
            Spindle refuses it (with Content-Length: as both framings), llhttp ignores it.
            """,
        applies: { d in
            guard case .conflictingFraming? = d.spindleError, let m = d.refusedBySpindle else { return false }
            let te = m.field("transfer-encoding")
            return !te.isEmpty && te.allSatisfy { $0.split(separator: ",").allSatisfy { $0.allSatisfy { $0 == " " || $0 == "\t" } } }
        }),
    KnownDivergence(
        name: "chunk extension syntax",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), \
            ext-val a token or a quoted-string; Spindle refuses "=" with no value, which llhttp \
            accepts.
            """,
        applies: { d in
            guard d.input.kind == .request || d.input.kind == .response,
                  case .invalidChunk(let why)? = d.spindleError, why.contains("chunk extension") else { return false }
            return d.refusedBySpindle != nil
        }),
    KnownDivergence(
        name: "Host value syntax",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §3.2: a server MUST respond 400 to a request whose Host field value is \
            invalid; Host is uri-host [ ":" port ] (RFC 3986 characters only). llhttp leaves \
            Host to the application.
            """,
        applies: { d in
            guard d.input.kind == .request, case .invalidStartLine(let why)? = d.spindleError, why.contains("Host field is not"),
                  let m = d.refusedBySpindle, let host = m.hosts.first else { return false }
            let allowed = Set("-._~!$&'()*+,;=:%[]".utf8)
            return !host.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || allowed.contains($0) }
        }),
    KnownDivergence(
        name: "request target characters",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §3.2: the request-target is a URI reference form (RFC 3986 characters: \
            unreserved, sub-delims, ":", "@", "/", "?", "%", and "[" "]" in an authority) and \
            an invalid request-line SHOULD get 400 (§3); llhttp accepts some others (\", <, >, \
            \\, ^, `, {, |, }) in targets.
            """,
        applies: { d in
            guard d.input.kind == .request, case .invalidStartLine(let why)? = d.spindleError,
                  why.contains("character URIs do not allow"), let m = d.refusedBySpindle else { return false }
            let allowed = Set("-._~!$&'()*+,;=:@/?%[]".utf8)
            return !m.target.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || allowed.contains($0) }
        }),
    KnownDivergence(
        name: "an absolute-form target names the authority",
        allowed: .llhttpMisframes,
        reason: """
            RFC 9112 §3.2.2: when the target is in absolute-form, a server MUST ignore Host and \
            use the target's authority; Spindle's request authority is the target's, what this \
            harness reports for llhttp is the Host field. Everything else must agree.
            """,
        applies: { d in
            guard d.input.kind == .request, d.spindle.messages.count == d.llhttp.messages.count else { return false }
            for (a, b) in zip(d.spindle.messages, d.llhttp.messages) where a != b {
                var a2 = a
                a2.hosts = b.hosts
                guard a2 == b, a.target.contains("://") else { return false }
            }
            return true
        }),
    KnownDivergence(
        name: "Host rule",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without a Host field \
            and to any request with more than one; llhttp leaves Host to the application.
            """,
        applies: { d in
            guard d.input.kind == .request, let m = d.refusedBySpindle else { return false }
            switch d.spindleError {
            case .invalidStartLine(let why)? where why.contains("without a Host"): return m.minorVersion == 1 && m.hosts.isEmpty
            case .conflictingFraming(let why)? where why.contains("Host"): return m.hosts.count > 1
            default: return false
            }
        }),
    KnownDivergence(
        name: "Transfer-Encoding in HTTP/1.0",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §6.1: a recipient of an HTTP/1.0 message with Transfer-Encoding MUST treat \
            its framing as faulty; Spindle refuses the request, llhttp decodes the chunks.
            """,
        applies: { d in
            guard d.input.kind == .request, case .conflictingFraming(let why)? = d.spindleError, why.contains("HTTP/1.0"),
                  let m = d.refusedBySpindle else { return false }
            return m.minorVersion == 0 && !m.field("transfer-encoding").isEmpty
        }),
    KnownDivergence(
        name: "transfer codings besides chunked",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §6.1: a server that receives a transfer coding it does not understand SHOULD \
            answer 501; Spindle implements only chunked (and refuses chunked applied twice, which \
            §6.1 forbids a sender to do); llhttp only looks for chunked at the end.
            """,
        applies: { d in
            guard d.input.kind == .request, case .unsupportedTransferEncoding? = d.spindleError,
                  let m = d.refusedBySpindle else { return false }
            return m.field("transfer-encoding").flatMap { $0.split(separator: ",") }.count > 1
        }),
    KnownDivergence(
        name: "empty lines before a start line",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) before a \
            request-line, which Spindle does; a bare LF or CR there, or any empty line before a \
            status-line (a client has no such allowance), Spindle refuses, while llhttp skips \
            any CR and LF bytes between messages.
            """,
        applies: { d in
            let run = d.fromSpindleFailure.prefix { $0 == 0x0D || $0 == 0x0A }
            if run.isEmpty { return false }
            if d.input.kind == .response { return true }
            // Requests: only a run that is not made of CRLF pairs (Spindle skips CRLF pairs),
            // and is not a lone CR at the end of the input (a CRLF pair cut short).
            let r = Array(run)
            let pairs = r.count % 2 == 0 && stride(from: 0, to: r.count, by: 2).allSatisfy { r[$0] == 0x0D && r[$0 + 1] == 0x0A }
            return !pairs
        }),
    KnownDivergence(
        name: "more than one SP in a request line",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §3: the request-line's parts are separated by a single SP; a recipient MAY \
            instead split on whitespace, as llhttp does with runs of SP; Spindle requires one.
            """,
        applies: { d in
            guard d.input.kind == .request, case .invalidStartLine? = d.spindleError, d.refusedBySpindle != nil else { return false }
            let line = Array(d.spindleFailedLine)
            return zip(line, line.dropFirst()).contains { $0 == 0x20 && $1 == 0x20 }
        }),
    KnownDivergence(
        name: "status codes below 100",
        allowed: .spindleRejects,
        reason: """
            RFC 9110 §15: a status code's first digit is its class, 1 to 5; 000-099 has none. \
            Spindle refuses it, llhttp takes any three digits.
            """,
        applies: { d in
            guard d.input.kind == .response, case .invalidStartLine(let why)? = d.spindleError, why.hasPrefix("status code"),
                  let m = d.refusedBySpindle else { return false }
            return m.status < 100
        }),
    KnownDivergence(
        name: "control bytes in a reason phrase",
        allowed: .spindleRejects,
        reason: """
            RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); Spindle refuses a \
            control byte or NUL there, llhttp takes any byte but CR and LF.
            """,
        applies: { d in
            guard d.input.kind == .response, case .invalidStartLine? = d.spindleError, d.refusedBySpindle != nil else { return false }
            return d.spindleFailedLine.contains(where: isControl)
        }),
    KnownDivergence(
        name: "Spindle's limits",
        allowed: .spindleRejects,
        reason: """
            HTTPParserLimits (start line 8192 bytes: 414, header section 32768 bytes: 431, chunk \
            extensions 4096 bytes) are below NIO's (80 KB a field, 2 MB a head, no extension \
            limit); RFC 9112 §2.3 and RFC 9110 §5.4 let a server bound them.
            """,
        applies: { d in
            switch d.spindleError {
            case .startLineTooLong?: return d.spindleFailedLine.count > spindleLimits.maxStartLineBytes
            case .headerTooLarge?: return d.fromSpindleFailure.count > spindleLimits.maxHeaderBytes
            case .invalidChunk(let why)?: return why.contains("longer than 4096") && d.input.bytes.count > 4096
            default: return false
            }
        }),
    KnownDivergence(
        name: "numerals longer than Spindle reads",
        allowed: .spindleRejects,
        reason: """
            Spindle reads at most 18 decimal digits of a Content-Length and 15 hex digits of a \
            chunk size, so that no value can overflow (RFC 9110 §8.6 and RFC 9112 §7.1 ask \
            recipients to guard against overflow); llhttp takes any number of leading zeros.
            """,
        applies: { d in
            switch d.spindleError {
            case .invalidContentLength?:
                return d.refusedBySpindle?.field("content-length").contains { v in
                    v.utf8.count > 18 && v.utf8.allSatisfy { (0x30...0x39).contains($0) }
                } ?? false
            case .invalidChunk(let why)? where why.contains("too large"):
                // Spindle stopped inside the size line: the input has a run of 16+ hex digits
                // at a line start, which llhttp read without overflow.
                return d.input.bytes.split(separator: 0x0A).contains { $0.prefix(while: isHex).count > 15 }
            default:
                return false
            }
        }),
    KnownDivergence(
        name: "keep-alive of a response to HEAD without a length",
        allowed: .keepAliveOnly,
        reason: """
            RFC 9112 §6.3 (1): a response to HEAD ends at its empty line. NIO reads llhttp's \
            keep-alive in on_headers_complete, before it tells llhttp to skip the body, so llhttp \
            still thinks a response without Content-Length or chunked runs to EOF and says close \
            (and then goes on parsing the next response anyway).
            """,
        applies: { d in
            guard d.input.kind == .response, d.input.toHEAD else { return false }
            return zip(d.spindle.messages, d.llhttp.messages).allSatisfy { a, b in
                a.keepAlive == b.keepAlive
                    || (a.keepAlive && !b.keepAlive && a.field("content-length").isEmpty
                        && listElements(a, "transfer-encoding").last != "chunked")
            }
        }),
    KnownDivergence(
        name: "HTTP/1.0 with both close and keep-alive",
        allowed: .keepAliveOnly,
        reason: """
            RFC 9112 §9.3/§9.6: the close option ends the connection after the message; for \
            HTTP/1.0 llhttp only looks for keep-alive, so \"Connection: keep-alive, close\" stays \
            open there; Spindle closes.
            """,
        applies: { d in
            zip(d.spindle.messages, d.llhttp.messages).allSatisfy { a, b in
                a.keepAlive == b.keepAlive
                    || (!a.keepAlive && b.keepAlive && a.minorVersion == 0
                        && connectionTokens(a).contains("close") && connectionTokens(a).contains("keep-alive"))
            }
        }),
    KnownDivergence(
        name: "HTAB after a Connection value",
        allowed: .keepAliveOnly,
        reason: """
            RFC 9110 §5.5: OWS (SP or HTAB) after a field value is not part of it, so \
            \"keep-alive<HTAB>\" is keep-alive for Spindle; llhttp does not match the token \
            with an HTAB after it.
            """,
        applies: { d in
            rawFieldValues(d.input.bytes, "connection").contains { v in
                v.reversed().prefix { $0 == 0x20 || $0 == 0x09 }.contains(0x09)
            }
        }),
    KnownDivergence(
        name: "methods llhttp does not know",
        allowed: .llhttpRejects,
        reason: """
            RFC 9110 §9.1: a method is any token (case-sensitive), and a server answers 501 to \
            one it does not implement; llhttp refuses every method outside its fixed table.
            """,
        applies: { d in
            guard d.input.kind == .request, d.llhttpError == .invalidMethod, let m = d.refusedByLLHTTP else { return false }
            return !llhttpMethods.contains(m.method)
        }),
    KnownDivergence(
        name: "absolute-form targets llhttp's URL parser refuses",
        allowed: .llhttpRejects,
        reason: """
            RFC 9112 §3.2.2: a server MUST accept the absolute-form, any absolute-URI (RFC 3986 \
            §4.3: scheme = ALPHA *( ALPHA / DIGIT / \"+\" / \"-\" / \".\" ), then \":\"); \
            llhttp's URL parser refuses schemes with digits and some valid URIs.
            """,
        applies: { d in
            guard d.input.kind == .request, d.llhttpError == .invalidURL, let m = d.refusedByLLHTTP else { return false }
            return m.target.first != "/" && isRequestTargetForm(m)
        }),
    KnownDivergence(
        name: "HTAB after a Content-Length or Transfer-Encoding value",
        allowed: .llhttpRejects,
        reason: """
            RFC 9110 §5.5: OWS (SP or HTAB) after a field value is not part of it; llhttp refuses \
            an HTAB there in Content-Length and Transfer-Encoding (it takes SP).
            """,
        applies: { d in
            guard d.llhttpError == .invalidContentLength || d.llhttpError == .unknown, d.refusedByLLHTTP != nil else { return false }
            return (rawFieldValues(d.input.bytes, "content-length") + rawFieldValues(d.input.bytes, "transfer-encoding")).contains { v in
                let trailing = v.reversed().prefix { $0 == 0x20 || $0 == 0x09 }
                return trailing.contains(0x09)
            }
        }),
    KnownDivergence(
        name: "a response's chunked that llhttp does not see",
        allowed: .llhttpMisframes,
        reason: """
            RFC 9110 §5.5 and §5.6.1: OWS after a field value is not part of it and empty list \
            elements are ignored, so \"chunked<HTAB>\" and \"chunked,\" end in chunked and \
            Spindle decodes chunks; llhttp does not see chunked there and reads the response's \
            body to EOF.
            """,
        applies: { d in
            guard d.input.kind == .response else { return false }
            let common = min(d.spindle.messages.count, d.llhttp.messages.count)
            guard let i = (0..<common).first(where: { d.spindle.messages[$0] != d.llhttp.messages[$0] }) else { return false }
            let a = d.spindle.messages[i], b = d.llhttp.messages[i]
            let elements = listElements(a, "transfer-encoding")
            let hiddenChunked = elements.contains("")
                || rawFieldValues(d.input.bytes, "transfer-encoding").contains { v in
                    v.reversed().prefix { $0 == 0x20 || $0 == 0x09 }.contains(0x09)
                }
            return elements.filter { !$0.isEmpty }.last == "chunked" && hiddenChunked && !b.keepAlive
        }),
    KnownDivergence(
        name: "empty list elements in Transfer-Encoding",
        allowed: .llhttpRejects,
        reason: """
            RFC 9110 §5.6.1: a recipient MUST accept empty list elements, so \"chunked,\" is \
            chunked; llhttp refuses it.
            """,
        applies: { d in
            guard d.llhttpError == .unknown, let m = d.refusedByLLHTTP else { return false }
            let elements = listElements(m, "transfer-encoding")
            return elements.contains("") && elements.filter { !$0.isEmpty }.last == "chunked"
        }),
    KnownDivergence(
        name: "BWS in chunk extensions",
        allowed: .llhttpRejects,
        reason: """
            RFC 9112 §7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name [ BWS \"=\" BWS \
            chunk-ext-val ] ), so whitespace may come before \";\" and around \"=\"; llhttp 9.3 \
            refuses it (no LENIENT_SPACES_AFTER_CHUNK_SIZE: NIO sets no lenient flag).
            """,
        applies: { d in
            guard d.llhttpError == .invalidChunkSize || d.llhttpError == .strictModeAssertion else { return false }
            let lines = d.chunkLines
            return lines.allSatisfy { isValidChunkExtension($0.ext) }
                && lines.contains { $0.ext.contains(0x20) || $0.ext.contains(0x09) }
        }),
    KnownDivergence(
        name: "framing fields in trailers",
        allowed: .llhttpRejects,
        reason: """
            RFC 9110 §6.5.1: a recipient must not merge a trailer into the header section unless \
            the field allows it, and framing fields do not, so a Content-Length or \
            Transfer-Encoding trailer is just a trailer (Spindle hands it over as one); llhttp \
            refuses the message. Neither RFC asks for the refusal.
            """,
        applies: { d in
            guard d.llhttpError != nil, let t = d.refusedByLLHTTP?.trailers else { return false }
            return t.contains { ["content-length", "transfer-encoding"].contains($0.name.lowercased()) }
        }),
    KnownDivergence(
        name: "framing fields of bodiless responses",
        allowed: .llhttpRejects,
        reason: """
            RFC 9112 §6.3 (1), the first rule: a response to HEAD, or with status 1xx, 204 or 304, \
            ends at its empty line whatever its fields say, so Spindle does not judge its \
            Content-Length and Transfer-Encoding; llhttp validates them before NIO tells it the \
            response has no body.
            """,
        applies: { d in
            guard d.input.kind == .response, d.llhttpError != nil, let m = d.refusedByLLHTTP, isBodiless(m, d.input) else { return false }
            return !m.field("content-length").isEmpty || !m.field("transfer-encoding").isEmpty
        }),
]

// MARK: suspected bugs (labels only: these fail)

struct SuspectedBug: Sendable {
    var name: String
    var rfc: String
    var applies: @Sendable (Divergent) -> Bool
}

/// The forms a request-target may take (RFC 9112 §3.2), loosely: origin-form starts with
/// "/", asterisk-form is "*" (OPTIONS), authority-form is host:port (CONNECT), absolute-form
/// is scheme ":" then an authority of URI characters when "//" follows (which http and
/// https require, RFC 9110 §4.2).
func isRequestTargetForm(_ m: Message) -> Bool {
    let t = Array(m.target.utf8)
    if t.first == 0x2F { return true }
    if t == [0x2A] { return m.method == "OPTIONS" }
    if m.method == "CONNECT" { return true }
    guard let colon = t.firstIndex(of: 0x3A), colon > 0,
          t[0..<colon].allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E })
    else { return false }
    let rest = t[(colon + 1)...]
    let scheme = String(decoding: t[0..<colon], as: UTF8.self).lowercased()
    guard rest.starts(with: [0x2F, 0x2F]) else { return scheme != "http" && scheme != "https" }
    let authority = rest.dropFirst(2).prefix { $0 != 0x2F && $0 != 0x3F && $0 != 0x23 }
    let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@[]".utf8)
    return authority.allSatisfy { allowed.contains($0) }
}

let suspectedBugs: [SuspectedBug] = [
    SuspectedBug(
        name: "malformed chunk extension accepted",
        rfc: "RFC 9112 §7.1.1: chunk-ext = *( BWS \";\" BWS token [ BWS \"=\" BWS ( token / quoted-string ) ] )",
        applies: { d in
            rejectsKind(d.spindle, d.llhttp) == .llhttpRejects && d.chunkLines.contains { !isValidChunkExtension($0.ext) }
        }),
    SuspectedBug(
        name: "request-target form not checked",
        rfc: "RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT) or asterisk-form (OPTIONS); §3: an invalid request-line SHOULD get 400",
        applies: { d in
            guard rejectsKind(d.spindle, d.llhttp) == .llhttpRejects, d.llhttpError == .invalidURL,
                  let m = d.refusedByLLHTTP else { return false }
            return !isRequestTargetForm(m)
        }),
]

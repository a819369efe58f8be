import HTTPTypes
import SpindleHTTP
import Testing

/// One parsed message, flattened for comparison.
struct Flat: Equatable, CustomStringConvertible {
    var start: String
    var fields: [String]
    var info: HTTPHeadInfo
    var body: [UInt8]
    var trailers: [String]?
    var description: String { "\(start) \(fields) body=\(body.count)B trailers=\(trailers ?? [])" }
}

enum ParseOutcome: Equatable {
    case messages([Flat])
    case error(HTTPParseError)
}

/// Parses `input` fed in pieces cut at `splits`, as a connection would.
func parse(_ kind: HTTPParser.Kind, _ input: [UInt8], splits: [Int] = [], limits: HTTPParserLimits = HTTPParserLimits(),
           toHEAD: Bool = false) -> ParseOutcome {
    var parser = HTTPParser(kind: kind, limits: limits)
    parser.nextResponseIsToHEAD = toHEAD
    var buffer: [UInt8] = []
    var out: [Flat] = []
    var current: Flat?
    var cuts = splits.filter { $0 > 0 && $0 < input.count }.sorted() + [input.count]
    var fed = 0
    do {
        while true {
            let step = try buffer.withUnsafeBytes { try parser.next($0) }
            if let e = step.event {
                switch e {
                case .request(let r, let i):
                    current = Flat(start: "\(r.method) \(r.path ?? "") host=\(r.authority ?? "-")",
                                   fields: r.headerFields.map { "\($0.name.rawName): \($0.value)" }, info: i, body: [], trailers: nil)
                case .response(let r, let i):
                    current = Flat(start: "\(r.status.code) \(r.status.reasonPhrase)",
                                   fields: r.headerFields.map { "\($0.name.rawName): \($0.value)" }, info: i, body: [], trailers: nil)
                case .body(let range):
                    current?.body += buffer[range]
                case .end(let t):
                    current?.trailers = t.map { $0.map { "\($0.name.rawName): \($0.value)" } }
                    if let c = current { out.append(c) }
                    current = nil
                }
            }
            buffer.removeFirst(step.consumed)
            if step.event == nil && step.consumed == 0 {
                guard !cuts.isEmpty else {
                    if let e = try parser.finish(), case .end = e, let c = current { out.append(c) }
                    return .messages(out)
                }
                let next = cuts.removeFirst()
                buffer += input[fed..<next]
                fed = next
            }
        }
    } catch let e as HTTPParseError {
        return .error(e)
    } catch {
        fatalError("the parser threw \(error), not an HTTPParseError")
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct ParserTests {
    @Test func aSimpleRequest() throws {
        let r = parse(.request, bytes("GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\n"))
        guard case .messages(let m) = r, m.count == 1 else { Issue.record("\(r)"); return }
        #expect(m[0].start == "GET /a/b?c=d host=example.com")
        #expect(m[0].fields == ["Accept: */*", "X-Empty: ", "X-Pad: v"])
        #expect(m[0].info.keepAlive)
        #expect(m[0].info.framing == .none)
        #expect(m[0].info.minorVersion == 1)
    }

    static let chunkedPost = "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 42\r\nX-Other: y\r\n\r\n"
        + "GET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"

    @Test func chunkedBodyWithExtensionsAndTrailersThenAPipelinedRequest() {
        guard case .messages(let m) = parse(.request, bytes(Self.chunkedPost)) else { Issue.record("rejected"); return }
        #expect(m.count == 2)
        #expect(m[0].body == bytes("helloabcdefghijklmnopqrstuvwxyz"))
        #expect(m[0].trailers == ["X-Checksum: 42", "X-Other: y"])
        #expect(m[0].info.framing == .chunked)
        #expect(m[1].start == "GET /next host=h")
        #expect(!m[1].info.keepAlive)
    }

    /// The same messages whatever the split: at every single point, and byte by byte.
    @Test(arguments: [chunkedPost,
                      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.0\r\n\r\n",
                      "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"])
    func everySplitPointGivesTheSameMessages(text: String) {
        let input = bytes(text)
        let whole = parse(.request, input)
        guard case .messages(let m) = whole, !m.isEmpty else { Issue.record("rejected: \(whole)"); return }
        for i in 1..<input.count {
            let split = parse(.request, input, splits: [i])
            #expect(split == whole, "split at \(i)")
        }
        #expect(parse(.request, input, splits: Array(1..<input.count)) == whole, "byte by byte")
    }

    /// Request smuggling and malformed input: each refused, with the status a server sends.
    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        ("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400),          // obs-fold
        ("GET / HTTP/1.1\r\nHost: h\r\nX : a\r\n\r\n", 400),              // space before the colon
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400),            // bare CR
        ("GET / HTTP/1.1\r\nHost: h\nX: a\r\n\r\n", 400),                 // bare LF
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", 400),         // NUL
        ("GET / HTTP/1.1\r\nHost: h\r\nX\u{1}Y: a\r\n\r\n", 400),         // control in a name
        ("GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n", 400),                // empty name
        ("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),                                  // no Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),            // two Hosts
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
        ("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        ("GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET /\u{7F} HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400),     // data longer than its size
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 junk\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n", 400),
        // Found by the fuzzer: junk, then a control byte, after a chunk size gave a
        // different refusal depending on where the input was split.
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5er-x\u{2}\u{2}\r\n", 400),
    ])
    func malformedRequestsAreRefused(text: String, status: Int) {
        let r = parse(.request, bytes(text))
        guard case .error(let e) = r else { Issue.record("accepted: \(text.debugDescription) → \(r)"); return }
        #expect(e.status.code == status, "\(text.debugDescription): \(e)")
        // And the same split in two anywhere.
        let input = bytes(text)
        for i in stride(from: 1, to: input.count, by: 3) {
            guard case .error(let e2) = parse(.request, input, splits: [i]) else {
                Issue.record("accepted when split at \(i): \(text.debugDescription)")
                return
            }
            #expect(e2 == e)
        }
    }

    /// A request that does not start with a method is refused at its first bytes (a TLS
    /// ClientHello sent to a plain port has no line end for hundreds of bytes), with the
    /// same error whether it arrives whole or split, and before a limit check.
    @Test func aNonHTTPStartIsRefusedAtOnce() throws {
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
        let refused = ParseOutcome.error(.invalidStartLine("the method is not a token followed by one space"))
        #expect(parse(.request, hello) == refused)
        #expect(parse(.request, Array(hello.prefix(1))) == refused)
        // A method still arriving is not refused.
        var partial = HTTPParser(kind: .request)
        let step = try bytes("GE").withUnsafeBytes { try partial.next($0) }
        #expect(step.event == nil && step.consumed == 0)
        let bad = bytes("GET\r\nHost: h\r\nBad Field\r\n\r\n")
        for cut in 1..<bad.count { #expect(parse(.request, bad, splits: [cut]) == refused, "cut at \(cut)") }
        let small = HTTPParserLimits(maxStartLineBytes: 8)
        #expect(parse(.request, bytes("G\u{01}T /" + String(repeating: "a", count: 20) + " HTTP/1.1\r\n\r\n"), limits: small) == refused)
    }

    @Test func limitsMapToTheirStatuses() {
        let small = HTTPParserLimits(maxStartLineBytes: 64, maxHeaderBytes: 128, maxHeaderCount: 4, maxBodyBytes: 10)
        let longTarget = "GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(parse(.request, bytes(longTarget), limits: small) == .error(.startLineTooLong(limit: 64)))
        // Refused before the head is complete (a client cannot make the server buffer it).
        #expect(parse(.request, bytes(String(longTarget.prefix(90))), limits: small) == .error(.startLineTooLong(limit: 64)))
        let bigHeader = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 200) + "\r\n\r\n"
        #expect(parse(.request, bytes(bigHeader), limits: small) == .error(.headerTooLarge(limit: 128)))
        let many = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<5).map { "X\($0): v\r\n" }.joined() + "\r\n"
        #expect(parse(.request, bytes(many), limits: small) == .error(.tooManyHeaders(limit: 4)))
        #expect(parse(.request, bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"), limits: small)
                == .error(.bodyTooLarge(limit: 10)))
        #expect(parse(.request, bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), limits: small)
                == .error(.bodyTooLarge(limit: 10)))
        #expect(HTTPParseError.startLineTooLong(limit: 1).status.code == 414)
        #expect(HTTPParseError.headerTooLarge(limit: 1).status.code == 431)
        #expect(HTTPParseError.bodyTooLarge(limit: 1).status.code == 413)
    }

    @Test func keepAliveByVersionAndConnectionField() {
        func keep(_ text: String) -> Bool? {
            if case .messages(let m) = parse(.request, bytes(text)), let f = m.first { return f.info.keepAlive }
            return nil
        }
        #expect(keep("GET / HTTP/1.1\r\nHost: h\r\n\r\n") == true)
        #expect(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n") == false)
        #expect(keep("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n") == false)
        #expect(keep("GET / HTTP/1.0\r\n\r\n") == false)
        #expect(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == true)
    }

    @Test func expectations() {
        guard case .messages(let m) = parse(.request, bytes("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")) else { Issue.record(); return }
        #expect(m[0].info.expectsContinue && !m[0].info.unsupportedExpectation)
        guard case .messages(let m2) = parse(.request, bytes("PUT / HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx")) else { Issue.record(); return }
        #expect(m2[0].info.unsupportedExpectation)
    }

    @Test func responses() {
        // Length, chunked, close-delimited, and the bodyless kinds.
        guard case .messages(let a) = parse(.response, bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")) else { Issue.record(); return }
        #expect(a[0].start == "200 OK" && a[0].body == bytes("hi") && a[0].info.keepAlive)
        guard case .messages(let b) = parse(.response, bytes("HTTP/1.1 200 OK\r\n\r\nuntil the end"), splits: [5, 20]) else { Issue.record(); return }
        #expect(b[0].body == bytes("until the end") && b[0].info.framing == .untilClose && !b[0].info.keepAlive)
        guard case .messages(let c) = parse(.response, bytes("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")) else { Issue.record(); return }
        #expect(c.count == 2 && c.allSatisfy { $0.body.isEmpty })
        guard case .messages(let d) = parse(.response, bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), toHEAD: true) else { Issue.record(); return }
        #expect(d.count == 1 && d[0].body.isEmpty)
        guard case .messages(let e) = parse(.response, bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")) else { Issue.record(); return }
        #expect(e.map(\.start) == ["100 Continue", "200 OK"] && e[1].body == bytes("abc"))
        guard case .messages(let f) = parse(.response, bytes("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")) else { Issue.record(); return }
        #expect(f[0].start == "404 ")
        if case .messages = parse(.response, bytes("HTTP/1.1 2000 OK\r\n\r\n")) { Issue.record("a four-digit status was accepted") }
        if case .messages = parse(.response, bytes("HTTP/1.1 20 OK\r\n\r\n")) { Issue.record("a two-digit status was accepted") }
        #expect(parse(.response, bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")) == .error(.unexpectedEnd))
    }
}

@Suite struct URLTests {
    @Test func parsesTheParts() throws {
        let u = try HTTPURL("http://Example.com:8080/a/b?x=1#frag")
        #expect(u.scheme == "http" && u.host == "Example.com" && u.port == 8080 && u.path == "/a/b" && u.query == "x=1")
        #expect(u.requestTarget == "/a/b?x=1" && u.authority == "Example.com:8080")
        let v6 = try HTTPURL("http://[::1]:9000")
        #expect(v6.host == "::1" && v6.port == 9000 && v6.path == "/" && v6.authority == "[::1]:9000")
        #expect(try HTTPURL("https://h/").port == 443)
        #expect(try HTTPURL("http://h").authority == "h")
    }

    @Test(arguments: ["h/path", "ftp://h/", "http://", "http://:80/", "http://h:0/", "http://h:70000/", "http://h:x/",
                      "http://u:p@h/", "http://[::1/", "http://h/a b", "http://h/é", "http://bad host/"])
    func refusesWithAReason(text: String) {
        #expect(throws: HTTPURLError.self) { try HTTPURL(text) }
    }

    @Test func resolvesRedirectLocations() throws {
        let base = try HTTPURL("http://h:81/a/b/c?q")
        #expect(try base.resolving("/x").description == "http://h:81/x")
        #expect(try base.resolving("d").description == "http://h:81/a/b/d")
        #expect(try base.resolving("../d?y").description == "http://h:81/a/d?y")
        #expect(try base.resolving("//other/p").description == "http://other/p")
        #expect(try base.resolving("https://s/").description == "https://s/")
        #expect(try base.resolving("?z").description == "http://h:81/a/b/c?z")
    }
}


// The corpus: requests and responses, valid ones (the seeds of the mutations too),
// request-smuggling shapes, and limits. Each case says what RFC 9112/9110 ask of a strict
// recipient: accept, reject, or either (the RFC leaves it to the recipient); Spindle's
// verdict is checked against that, besides being compared with llhttp's.
import Testing

/// One corpus input.
struct Case: Sendable, CustomTestStringConvertible {
    enum Expect: String, Sendable { case accept, reject, either }
    var name: String
    var input: Input
    var expect: Expect
    var testDescription: String { "\(input.kind) \(name)" }
}

func b(_ s: String) -> [UInt8] { Array(s.utf8) }

private func req(_ name: String, _ expect: Case.Expect, _ text: String) -> Case {
    Case(name: name, input: Input(kind: .request, bytes: b(text)), expect: expect)
}

private func req(_ name: String, _ expect: Case.Expect, bytes: [UInt8]) -> Case {
    Case(name: name, input: Input(kind: .request, bytes: bytes), expect: expect)
}

private func res(_ name: String, _ expect: Case.Expect, _ text: String, toHEAD: Bool = false) -> Case {
    Case(name: name, input: Input(kind: .response, bytes: b(text), toHEAD: toHEAD), expect: expect)
}

private func res(_ name: String, _ expect: Case.Expect, bytes: [UInt8]) -> Case {
    Case(name: name, input: Input(kind: .response, bytes: bytes), expect: expect)
}

private let H = "Host: example.com\r\n"

/// A body of `n` bytes, varied so that a misplaced range shows.
private func body(_ n: Int) -> String {
    String((0..<n).map { i in Character(Unicode.Scalar(UInt8(0x61 + i % 26))) })
}

private func chunked(_ sizes: [Int]) -> String {
    sizes.map { String($0, radix: 16) + "\r\n" + body($0) + "\r\n" }.joined() + "0\r\n\r\n"
}

let validRequests: [Case] = [
    req("simple GET", .accept, "GET / HTTP/1.1\r\n\(H)\r\n"),
    req("GET with query, several fields, mixed case", .accept,
        "GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t/1.0\r\naccept: */*\r\nX-MiXeD-CaSe: Value\r\n\r\n"),
    req("POST with Content-Length", .accept, "POST /submit HTTP/1.1\r\n\(H)Content-Length: 5\r\n\r\nhello"),
    req("POST with Content-Length 0", .accept, "POST / HTTP/1.1\r\n\(H)Content-Length: 0\r\n\r\n"),
    req("body of 1 byte", .accept, "PUT /x HTTP/1.1\r\n\(H)Content-Length: 1\r\n\r\nz"),
    req("body of 100 bytes", .accept, "POST /x HTTP/1.1\r\n\(H)Content-Length: 100\r\n\r\n\(body(100))"),
    req("body of 1000 bytes", .accept, "POST /x HTTP/1.1\r\n\(H)Content-Length: 1000\r\n\r\n\(body(1000))"),
    req("chunked", .accept, "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    req("chunked, several chunks, hex in both cases", .accept,
        "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n1a\r\n\(body(26))\r\n1\r\n!\r\n0\r\n\r\n"),
    req("chunked, 300 bytes in 3 chunks", .accept, "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n\(chunked([100, 199, 1]))"),
    req("chunked with extensions", .accept,
        "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6;a;b=\"q v\"\r\n world\r\n0;last\r\n\r\n"),
    req("chunked with trailers", .accept,
        "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other:  y \r\n\r\n"),
    req("Transfer-Encoding: Chunked, with OWS", .accept,
        "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding:   Chunked  \r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
    req("chunk size with leading zeros", .accept,
        "POST /c HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\n"),
    req("Content-Length with leading zeros", .accept, "POST / HTTP/1.1\r\n\(H)Content-Length: 0003\r\n\r\nabc"),
    req("HTTP/1.0 without Host", .accept, "GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n"),
    req("HTTP/1.0 POST with Content-Length", .accept, "POST /old HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd"),
    req("HTTP/1.0 keep-alive", .accept, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    req("HTTP/1.1 Connection: close", .accept, "GET / HTTP/1.1\r\n\(H)Connection: close\r\n\r\n"),
    req("HTTP/1.1 Connection: keep-alive", .accept, "GET / HTTP/1.1\r\n\(H)Connection: keep-alive\r\n\r\n"),
    req("Connection: a list with close", .accept, "GET / HTTP/1.1\r\n\(H)Connection: x-foo, CLOSE\r\n\r\n"),
    req("HTTP/1.0 Connection: Keep-Alive, then a second request", .accept,
        "GET /1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    req("pipelined GETs", .accept, "GET /1 HTTP/1.1\r\n\(H)\r\nGET /2 HTTP/1.1\r\n\(H)X: 2\r\n\r\n"),
    req("pipelined POST then GET", .accept,
        "POST /1 HTTP/1.1\r\n\(H)Content-Length: 11\r\n\r\nhello worldGET /2 HTTP/1.1\r\n\(H)\r\n"),
    req("pipelined chunked then GET", .accept,
        "POST /1 HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\nT: 1\r\n\r\nGET /2 HTTP/1.1\r\n\(H)\r\n"),
    req("three pipelined, the last closes", .accept,
        "GET /1 HTTP/1.1\r\n\(H)\r\nPOST /2 HTTP/1.1\r\n\(H)Content-Length: 2\r\n\r\nokGET /3 HTTP/1.1\r\n\(H)Connection: close\r\n\r\n"),
    req("HTTP/1.0 Connection: keep-alive, close", .accept, "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
    req("data after Connection: close is not a request", .accept,
        "GET /1 HTTP/1.1\r\n\(H)Connection: close\r\n\r\nGET /2 HTTP/1.1\r\n\(H)\r\n"),
    req("empty field values", .accept, "GET / HTTP/1.1\r\n\(H)X-Empty:\r\nX-Spaces:   \r\n\r\n"),
    req("OWS around values", .accept, "GET / HTTP/1.1\r\n\(H)X-A:   spaced out   \r\nX-B:\tv\t\r\nX-C: a  b \t c\r\n\r\n"),
    req("empty Host (a request without authority)", .accept, "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    req("Host last", .accept, "GET / HTTP/1.1\r\nAccept: */*\r\nHost: h\r\n\r\n"),
    req("every tchar in a field name", .accept, "GET / HTTP/1.1\r\n\(H)!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"),
    req("UTF-8 (obs-text) in a value", .accept, "GET / HTTP/1.1\r\n\(H)X-Name: Zoë ☃\r\n\r\n"),
    req("many fields (60)", .accept,
        "GET / HTTP/1.1\r\n\(H)" + (1...60).map { "X-Field-\($0): value \($0)\r\n" }.joined() + "\r\n"),
    req("leading empty line (RFC 9112 §2.2)", .accept, "\r\nGET / HTTP/1.1\r\n\(H)\r\n"),
    req("two leading empty lines", .accept, "\r\n\r\nGET / HTTP/1.1\r\n\(H)\r\n"),
    req("OPTIONS *", .accept, "OPTIONS * HTTP/1.1\r\n\(H)\r\n"),
    req("absolute-form target", .accept, "GET http://example.com/x?y HTTP/1.1\r\n\(H)\r\n"),
    req("Expect: 100-continue", .accept, "PUT /up HTTP/1.1\r\n\(H)Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"),
    req("methods DELETE, PATCH, HEAD, pipelined", .accept,
        "DELETE /d HTTP/1.1\r\n\(H)\r\nPATCH /p HTTP/1.1\r\n\(H)Content-Length: 2\r\n\r\n{}HEAD /h HTTP/1.1\r\n\(H)\r\n"),
    req("long target (2000 bytes)", .accept, "GET /\(body(2000)) HTTP/1.1\r\n\(H)\r\n"),
    req("Content-Length in trailers (ignored for framing)", .either,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nContent-Length: 5\r\n\r\n"),
]

let invalidRequests: [Case] = [
    // Framing: request smuggling.
    req("CL then TE", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    req("TE then CL", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"),
    req("two equal Content-Length", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
    req("two different Content-Length", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    req("Content-Length list", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 3, 3\r\n\r\nabc"),
    req("Content-Length +3", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: +3\r\n\r\nabc"),
    req("Content-Length -1", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: -1\r\n\r\n"),
    req("Content-Length with a space inside", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 1 2\r\n\r\nabcdefghijkl"),
    req("Content-Length hex", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 0x3\r\n\r\nabc"),
    req("Content-Length empty", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length:\r\n\r\n"),
    req("Content-Length with a letter", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 3a\r\n\r\nabc"),
    req("Content-Length overflow", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 99999999999999999999999\r\n\r\n"),
    req("Content-Length 20 digits with leading zeros", .either,
        "POST / HTTP/1.1\r\n\(H)Content-Length: 00000000000000000003\r\n\r\nabc"),
    req("TE gzip only", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: gzip\r\n\r\nabc"),
    req("TE chunked, gzip", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    req("TE gzip, chunked (not implemented: 501)", .either,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    req("TE chunked, chunked", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    req("TE chunked twice", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    req("TE chunked with a parameter", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"),
    req("TE xchunked", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    req("TE empty, with Content-Length", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc"),
    req("TE empty", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: \r\n\r\n"),
    req("TE only commas", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: , ,\r\n\r\n"),
    req("TE with obs-fold", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    req("TE in HTTP/1.0", .either, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    req("obs-fold", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\r\n b\r\n\r\n"),
    req("obs-fold with a tab", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\r\n\tb\r\n\r\n"),
    req("whitespace before the first field", .reject, "GET / HTTP/1.1\r\n \(H)\r\n"),
    req("space before the colon (TE)", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    req("space before the colon (CL)", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length : 3\r\n\r\nabc"),
    req("tab before the colon", .reject, "GET / HTTP/1.1\r\n\(H)X-A\t: a\r\n\r\n"),
    req("bare CR in a value", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\rb\r\n\r\n"),
    req("bare CR as a line end", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\r\r\n\r\n"),
    req("bare LF between fields", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\nX-B: b\r\n\r\n"),
    req("bare LF everywhere", .either, "GET / HTTP/1.1\nHost: example.com\n\n"),
    req("bare LF after the request line", .either, "GET / HTTP/1.1\n\(H)\r\n"),
    req("NUL in a value", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\u{0}b\r\n\r\n"),
    req("NUL in a name", .reject, "GET / HTTP/1.1\r\n\(H)X\u{0}A: a\r\n\r\n"),
    req("NUL in the target", .reject, "GET /a\u{0}b HTTP/1.1\r\n\(H)\r\n"),
    req("control byte 0x01 in a value", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\u{1}b\r\n\r\n"),
    req("DEL in a value", .reject, "GET / HTTP/1.1\r\n\(H)X-A: a\u{7F}b\r\n\r\n"),
    req("invalid byte in a name", .reject, "GET / HTTP/1.1\r\n\(H)X@A: a\r\n\r\n"),
    req("empty name", .reject, "GET / HTTP/1.1\r\n\(H): a\r\n\r\n"),
    req("no colon", .reject, "GET / HTTP/1.1\r\n\(H)NoColon\r\n\r\n"),
    // Chunks.
    req("chunk size not hex", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\ng\r\nabc\r\n0\r\n\r\n"),
    req("chunk size negative", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    req("chunk size 0x", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
    req("chunk size after a space", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"),
    req("chunk size empty", .reject, "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"),
    req("chunk size overflow", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    req("chunk size 17 digits with leading zeros", .either,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"),
    req("chunk data not followed by CRLF", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
    req("chunk data followed by a bare LF", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"),
    req("chunk data longer than its size", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"),
    req("chunk size line ended by a bare LF", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
    req("chunk extension with a bare LF", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"),
    req("chunk extension with a bare CR", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n"),
    req("chunk extension without a name", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
    req("chunk extension name with a space", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n"),
    req("chunk extension with an unterminated quote", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n"),
    req("BWS around = in a chunk extension", .accept,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5; a = b\r\nhello\r\n0\r\n\r\n"),
    req("chunk extension with an empty value", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n"),
    req("Transfer-Encoding in trailers", .either,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    req("BWS before a chunk extension", .either,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n"),
    req("junk after the chunk size", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n"),
    req("last chunk without the final CRLF (EOF)", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"),
    req("trailer with obs-fold", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n"),
    req("trailer with a bare LF", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n0\r\nT: a\nU: b\r\n\r\n"),
    req("truncated body (EOF)", .reject, "POST / HTTP/1.1\r\n\(H)Content-Length: 10\r\n\r\nhello"),
    req("truncated head (EOF)", .reject, "GET / HTTP/1.1\r\n\(H)"),
    // Request lines.
    req("two spaces after the method", .reject, "GET  / HTTP/1.1\r\n\(H)\r\n"),
    req("tab after the method", .reject, "GET\t/ HTTP/1.1\r\n\(H)\r\n"),
    req("space after the version", .reject, "GET / HTTP/1.1 \r\n\(H)\r\n"),
    req("no version", .reject, "GET /\r\n\(H)\r\n"),
    req("lowercase http", .reject, "GET / http/1.1\r\n\(H)\r\n"),
    req("HTTP/1.2", .either, "GET / HTTP/1.2\r\n\(H)\r\n"),
    req("HTTP/2.0", .either, "GET / HTTP/2.0\r\n\(H)\r\n"),
    req("HTTP/0.9 with a version", .either, "GET / HTTP/0.9\r\n\r\n"),
    req("invalid method byte", .reject, "G@T / HTTP/1.1\r\n\(H)\r\n"),
    req("DEL in the target", .reject, "GET /\u{7F} HTTP/1.1\r\n\(H)\r\n"),
    req("obs-text in the target", .reject, bytes: b("GET /") + [0xC3, 0xA9] + b(" HTTP/1.1\r\n\(H)\r\n")),
    req("no Host in HTTP/1.1", .reject, "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
    req("two Hosts", .reject, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    req("space before the colon (Host)", .reject, "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    req("Host value with a space", .reject, "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
    req("target in no form (no leading /)", .reject, "GET a/b HTTP/1.1\r\n\(H)\r\n"),
    req("absolute-form with a backtick in the authority", .reject, "GET http://a`b/ HTTP/1.1\r\n\(H)\r\n"),
    req("whitespace line only", .reject, " \r\n\r\n"),
    // Limits (Spindle's HTTPParserLimits defaults: start line 8192, header section 32768, 100 fields).
    req("100 fields (the limit)", .accept,
        "GET / HTTP/1.1\r\n\(H)" + (1...99).map { "X-\($0): v\r\n" }.joined() + "\r\n"),
    req("101 fields", .reject,
        "GET / HTTP/1.1\r\n\(H)" + (1...100).map { "X-\($0): v\r\n" }.joined() + "\r\n"),
    req("start line of 8192 bytes (the limit)", .accept, "GET /\(body(8192 - 14)) HTTP/1.1\r\n\(H)\r\n"),
    req("start line of 8193 bytes", .reject, "GET /\(body(8193 - 14)) HTTP/1.1\r\n\(H)\r\n"),
    req("header section of 32768 bytes (the limit)", .accept,
        "GET / HTTP/1.1\r\n\(H)" + (1...3).map { "X-\($0): \(body(8000))\r\n" }.joined() + "X-4: \(body(8721))\r\n\r\n"),
    req("header section of 32769 bytes", .reject,
        "GET / HTTP/1.1\r\n\(H)" + (1...3).map { "X-\($0): \(body(8000))\r\n" }.joined() + "X-4: \(body(8722))\r\n\r\n"),
    req("header section over 32768 bytes", .reject,
        "GET / HTTP/1.1\r\n\(H)" + (1...5).map { "X-\($0): \(body(7000))\r\n" }.joined() + "\r\n"),
    req("chunk extensions over 4096 bytes", .reject,
        "POST / HTTP/1.1\r\n\(H)Transfer-Encoding: chunked\r\n\r\n5;a=\(body(5000))\r\nhello\r\n0\r\n\r\n"),
]

let validResponses: [Case] = [
    res("200 with Content-Length", .accept, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"),
    res("200 chunked with extensions and trailers", .accept,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n7\r\n, world\r\n0\r\nServer-Timing: a;dur=1\r\n\r\n"),
    res("200 until close", .accept, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body runs to the end"),
    res("HTTP/1.0 200 until close", .accept, "HTTP/1.0 200 OK\r\n\r\nold style body"),
    res("HTTP/1.0 keep-alive with Content-Length", .accept,
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nokHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n"),
    res("Connection: close with Content-Length", .accept, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye"),
    res("204 then 200", .accept, "HTTP/1.1 204 No Content\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!"),
    res("304 with Content-Length (no body)", .accept,
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    res("100 Continue then 200", .accept, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    res("103 Early Hints then 200", .accept,
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    res("1xx with Content-Length has no body", .accept,
        "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    res("to HEAD: Content-Length but no body, pipelined", .accept,
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", toHEAD: true),
    res("to HEAD: chunked but no body", .accept, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", toHEAD: true),
    res("empty reason", .accept, "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"),
    res("no reason", .accept, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
    res("reason with spaces and UTF-8", .accept, "HTTP/1.1 404 Not  Found – ¿\r\nContent-Length: 0\r\n\r\n"),
    res("status 599 and 999", .accept, "HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\nHTTP/1.1 999 Y\r\nContent-Length: 0\r\n\r\n"),
    res("TE gzip, chunked", .accept, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"),
    res("TE gzip: until close", .accept, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw gzip bytes"),
    res("pipelined responses, bodies of 0, 1, 300 bytes", .accept,
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n\(body(300))"),
    res("chunked 1000 bytes", .accept, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(chunked([1, 500, 499]))"),
    res("101 then another protocol's bytes", .accept,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n\u{0}\u{1}binary"),
    res("fields with OWS, empty values, duplicates", .accept,
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-Pad: \t v \t\r\nContent-Length: 0\r\n\r\n"),
]

let invalidResponses: [Case] = [
    res("TE and CL", .reject, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    res("two Content-Length", .reject, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
    res("Content-Length not a number", .reject, "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok"),
    res("TE empty, with Content-Length", .reject, "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc"),
    res("TE and CL in a 204", .either, "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"),
    res("status of two digits", .reject, "HTTP/1.1 20 OK\r\n\r\n"),
    res("status of four digits", .reject, "HTTP/1.1 2000 OK\r\n\r\n"),
    res("status not digits", .reject, "HTTP/1.1 abc OK\r\n\r\n"),
    res("status below 100", .reject, "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n"),
    res("no space after the status", .reject, "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n"),
    res("bare LF", .either, "HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
    res("obs-fold", .reject, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    res("NUL in the reason", .reject, "HTTP/1.1 200 O\u{0}K\r\nContent-Length: 0\r\n\r\n"),
    res("leading empty line", .either, "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    res("HTTP/2.0 status line", .either, "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    res("invalid chunk size", .reject, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    res("chunked, truncated (EOF)", .reject, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
    res("Content-Length, truncated (EOF)", .reject, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"),
    res("space before the colon", .reject, "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
]

let corpus: [Case] = validRequests + invalidRequests + validResponses + invalidResponses

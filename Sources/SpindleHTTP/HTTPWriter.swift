// Writing HTTP/1.1 heads and chunked framing into a byte buffer, and the cached Date.
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes

enum HTTPWire {
    /// "HTTP/1.1 200 OK\r\n", the fields, the framing fields, "\r\n".
    static func appendResponseHead(
        _ response: HTTPResponse, minorVersion: Int, framing: HTTPBodyFraming, close: Bool,
        date: DateCache?, into out: inout [UInt8]
    ) {
        out.append(contentsOf: minorVersion == 0 ? "HTTP/1.0 ".utf8 : "HTTP/1.1 ".utf8)
        appendStatusCode(response.status.code, into: &out)
        out.append(sp)
        let reason = response.status.reasonPhrase
        if reason.isEmpty { out.append(contentsOf: defaultReason(response.status.code).utf8) } else { out.append(contentsOf: reason.utf8) }
        out.append(contentsOf: crlf)
        var sawDate = false
        for field in response.headerFields {
            switch field.name {
            case .contentLength, .transferEncoding, .connection: continue   // we frame the body
            case .date: sawDate = true
            default: break
            }
            appendField(field, into: &out)
        }
        if !sawDate, let date { date.append(into: &out) }
        appendFraming(framing, into: &out)
        if close {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if minorVersion == 0 {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: crlf)
    }

    /// "GET /path HTTP/1.1\r\n", Host, the fields, the framing fields, "\r\n".
    static func appendRequestHead(_ request: HTTPRequest, host: String, framing: HTTPBodyFraming, into out: inout [UInt8]) {
        out.append(contentsOf: request.method.rawValue.utf8)
        out.append(sp)
        out.append(contentsOf: (request.path ?? "/").utf8)
        out.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        out.append(contentsOf: host.utf8)
        out.append(contentsOf: crlf)
        for field in request.headerFields {
            switch field.name {
            case .contentLength, .transferEncoding, hostName: continue
            default: appendField(field, into: &out)
            }
        }
        appendFraming(framing, into: &out)
        out.append(contentsOf: crlf)
    }

    static func appendField(_ field: HTTPField, into out: inout [UInt8]) {
        out.append(contentsOf: field.name.rawName.utf8)
        out.append(contentsOf: ": ".utf8)
        field.withUnsafeBytesOfValue { out.append(contentsOf: $0) }
        out.append(contentsOf: crlf)
    }

    static func appendFraming(_ framing: HTTPBodyFraming, into out: inout [UInt8]) {
        switch framing {
        case .length(let n):
            out.append(contentsOf: "Content-Length: ".utf8)
            appendDecimal(n, into: &out)
            out.append(contentsOf: crlf)
        case .chunked:
            out.append(contentsOf: "Transfer-Encoding: chunked\r\n".utf8)
        case .none, .untilClose:
            break
        }
    }

    /// One chunk's size line (the data and its CRLF follow).
    static func appendChunkHeader(_ size: Int, into out: inout [UInt8]) {
        out.append(contentsOf: String(size, radix: 16).utf8)
        out.append(contentsOf: crlf)
    }

    static func appendLastChunk(trailers: HTTPFields?, into out: inout [UInt8]) {
        out.append(contentsOf: "0\r\n".utf8)
        if let trailers { for f in trailers { appendField(f, into: &out) } }
        out.append(contentsOf: crlf)
    }

    static func appendDecimal(_ n: Int, into out: inout [UInt8]) {
        if n < 10 { out.append(UInt8(0x30 + n)); return }
        var digits: [UInt8] = []
        var v = n
        while v > 0 { digits.append(UInt8(0x30 + v % 10)); v /= 10 }
        out.append(contentsOf: digits.reversed())
    }

    static func appendStatusCode(_ code: Int, into out: inout [UInt8]) {
        out.append(UInt8(0x30 + code / 100 % 10))
        out.append(UInt8(0x30 + code / 10 % 10))
        out.append(UInt8(0x30 + code % 10))
    }

    static let crlf: [UInt8] = [cr, lf]

    static func defaultReason(_ code: Int) -> String {
        switch code {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(code)"
        }
    }
}

/// The `Date` field (IMF-fixdate, RFC 9110 §5.6.7), formatted once per second per
/// connection: a connection-owned cache needs no lock.
final class DateCache {
    private var second = -1
    private var field: [UInt8] = []

    func append(into out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        let now = Int(ts.tv_sec)
        if now != second {
            second = now
            field = Array("Date: \(DateCache.imfFixdate(now))\r\n".utf8)
        }
        out.append(contentsOf: field)
    }

    /// "Sun, 06 Nov 1994 08:49:37 GMT".
    static func imfFixdate(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tm.tm_wday)]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) GMT"
    }
}

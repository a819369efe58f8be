// libFuzzer entry: every input is parsed as requests and as responses, whole and split
// at a point taken from its first byte. Checked: no crash, no trap, every consumed count
// and body range inside the bytes given, and the same outcome whatever the split.
import SpindleHTTP

enum Outcome: Equatable {
    case accepted(messageEvents: Int, body: [UInt8])
    case refused(HTTPParseError)
}

func run(_ kind: HTTPParser.Kind, _ input: [UInt8], split: Int) -> Outcome {
    var parser = HTTPParser(kind: kind, limits: HTTPParserLimits(maxStartLineBytes: 256, maxHeaderBytes: 1024, maxHeaderCount: 16, maxBodyBytes: 4096))
    var buffer: [UInt8] = []
    var pieces = [Array(input[..<split]), Array(input[split...])]
    var events = 0
    var body: [UInt8] = []
    do {
        while true {
            let step = try buffer.withUnsafeBytes { try parser.next($0) }
            precondition(step.consumed <= buffer.count, "consumed more than given")
            if case .body(let r)? = step.event {
                precondition(r.lowerBound >= 0 && r.upperBound <= buffer.count, "body range outside the input")
                body += buffer[r]
            }
            switch step.event {
            case .request?, .response?, .end?: events += 1   // body events depend on the split; their bytes do not
            default: break
            }
            buffer.removeFirst(step.consumed)
            if step.event == nil && step.consumed == 0 {
                if pieces.isEmpty {
                    if try parser.finish() != nil { events += 1 }
                    return .accepted(messageEvents: events, body: body)
                }
                buffer += pieces.removeFirst()
            }
            precondition(events < 100_000 && body.count <= input.count, "no progress")
        }
    } catch let e as HTTPParseError {
        return .refused(e)
    } catch {
        fatalError("the parser threw a non-HTTPParseError: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let split = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
    for kind in [HTTPParser.Kind.request, .response] {
        let whole = run(kind, input, split: input.count)
        let cut = run(kind, input, split: split)
        precondition(whole == cut, "split at \(split) changed the outcome: \(whole) vs \(cut)")
    }
    return 0
}

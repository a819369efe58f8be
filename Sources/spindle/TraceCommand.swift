// `spindle trace view FILE -o trace.html`: a Chrome trace-event JSON file (a Spindle trace:
// SPINDLE_TRACE=path or runtime.trace.write(to:)) as one self-contained page; and
// `spindle demo pingpong`: the defining document's picture, traced.
import ArgumentParser
import Foundation
import Spindle

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Work with Spindle traces.",
        subcommands: [View.self]
    )

    struct View: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a trace (Chrome trace-event JSON) into one self-contained HTML page.",
            discussion: """
            The page needs no network: open it in any browser. A trace with more than \
            --max-events events is split, in file order, into pages NAME-1.html, NAME-2.html, \
            ... that link to each other (Go's trace viewer splits the same way); each keeps \
            every track's name.
            """
        )

        @Argument(help: "The trace file (JSON).")
        var file: String

        @Option(name: .shortAndLong, help: "The page to write.")
        var output = "trace.html"

        @Option(help: "Events per page (about 100 bytes each in the file).")
        var maxEvents = 1_000_000

        func run() throws {
            let bytes = try readFile(file)
            let pages = try TraceFile.pages(bytes, maxEvents: maxEvents)
            let title = file.split(separator: "/").last.map(String.init) ?? file
            if pages.count == 1 {
                try writeFile(output, TraceViewerPage.html(title: title, traceJSON: pages[0], part: nil))
                print("wrote \(output)")
                return
            }
            let base = output.hasSuffix(".html") ? String(output.dropLast(5)) : output
            let shortBase = base.split(separator: "/").last.map(String.init) ?? base
            for (i, page) in pages.enumerated() {
                let path = "\(base)-\(i + 1).html"
                try writeFile(path, TraceViewerPage.html(title: "\(title) (\(i + 1)/\(pages.count))", traceJSON: page,
                                                         part: (i + 1, pages.count, shortBase)))
                print("wrote \(path)")
            }
        }
    }
}

/// Splitting a trace into pages. Spindle writes one event per line; metadata ("ph":"M")
/// goes into every page. A file not laid out that way is one page.
enum TraceFile {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func pages(_ bytes: [UInt8], maxEvents: Int) throws -> [[UInt8]] {
        guard let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x0a && $0 != 0x09 && $0 != 0x0d }),
              bytes[first] == UInt8(ascii: "{") || bytes[first] == UInt8(ascii: "[") else {
            throw Malformed(description: "not a trace: a Chrome trace-event file is a JSON object or array")
        }
        let lines = bytes.split(separator: 0x0a, omittingEmptySubsequences: false)
        // Spindle's layout: a header line, then one event per line (with a trailing comma
        // on all but the last), then the "],\"otherData\"" line.
        guard lines.count > 2, let header = lines.first, header.last == UInt8(ascii: "["),
              let footerIndex = lines.lastIndex(where: { $0.starts(with: Array("],".utf8)) }) else {
            return [bytes]
        }
        var metadata: [ArraySlice<UInt8>] = []
        var events: [ArraySlice<UInt8>] = []
        for line in lines[1..<footerIndex] {
            var l = line
            if l.last == UInt8(ascii: ",") { l = l.dropLast() }
            if l.isEmpty { continue }
            if contains(l, "\"ph\":\"M\"") { metadata.append(l) } else { events.append(l) }
        }
        if events.count <= maxEvents { return [bytes] }
        let footer = lines[footerIndex...].joined(separator: [0x0a])
        var pages: [[UInt8]] = []
        var start = 0
        while start < events.count {
            let end = min(start + maxEvents, events.count)
            var page = Array(header)
            page.append(0x0a)
            let chunk = metadata + events[start..<end]
            for (i, l) in chunk.enumerated() {
                page.append(contentsOf: l)
                if i + 1 < chunk.count { page.append(UInt8(ascii: ",")) }
                page.append(0x0a)
            }
            page.append(contentsOf: footer)
            pages.append(page)
            start = end
        }
        return pages
    }

    private static func contains(_ hay: ArraySlice<UInt8>, _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        if hay.count < n.count { return false }
        var i = hay.startIndex
        while i + n.count <= hay.endIndex {
            if hay[i] == n[0] && hay[i..<(i + n.count)].elementsEqual(n) { return true }
            i += 1
        }
        return false
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Small programs that show the runtime at work.",
        subcommands: [PingPong.self]
    )

    struct PingPong: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pingpong",
            abstract: "Two fibers and two tasks yielding to each other through nested calls, traced.",
            discussion: """
            The defining document's picture: each side passes a ball down three nested calls \
            and hands it over a channel, so it suspends deep inside its call stack and picks up \
            there when the ball comes back. Writes the trace (Chrome JSON, for Perfetto or \
            chrome://tracing) and the page `spindle trace view` makes of it.
            """
        )

        @Option(help: "Round trips per pair.")
        var rounds = 8

        @Option(name: .shortAndLong, help: "The page to write.")
        var output = "pingpong.html"

        @Option(help: "The trace JSON to write.")
        var json = "pingpong.json"

        func run() throws {
            let runtime = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2))
            defer { runtime.shutdown() }
            runtime.trace.start(megabytesPerThread: 1)
            let rounds = self.rounds
            // Two fibers: blocking sends and receives, three calls deep.
            let toB = Channel<Int>(capacity: 0), toA = Channel<Int>(capacity: 0)
            let a = runtime.spawnFiber(name: "ping") { try FiberSide.serve(first: true, rounds: rounds, send: toB, receive: toA) }
            let b = runtime.spawnFiber(name: "pong") { try FiberSide.serve(first: false, rounds: rounds, send: toA, receive: toB) }
            try a.join()
            try b.join()
            // Two tasks: the same through async calls.
            let hits = try runtime.run {
                let toD = Channel<Int>(capacity: 0), toC = Channel<Int>(capacity: 0)
                let c = Task(name: "ping-task", executorPreference: runtime) {
                    try await TaskSide.serve(first: true, rounds: rounds, send: toD, receive: toC)
                }
                let d = Task(name: "pong-task", executorPreference: runtime) {
                    try await TaskSide.serve(first: false, rounds: rounds, send: toC, receive: toD)
                }
                return try await c.value + d.value
            }
            runtime.trace.stop()
            precondition(hits == 2 * rounds, "the tasks' ball went missing")
            try runtime.trace.write(to: json)
            let bytes = try readFile(json)
            try writeFile(output, TraceViewerPage.html(title: "spindle demo pingpong", traceJSON: bytes, part: nil))
            let snapshot = runtime.trace.snapshot()
            let wakes = snapshot.allEvents.filter { $0.kind == .wake }.count
            print("wrote \(json) and \(output): \(snapshot.allEvents.count) events, \(wakes) wake-ups, \(rounds) round trips per pair")
        }
    }
}

/// The fibers' side: plain blocking code, three calls deep.
enum FiberSide {
    static func serve(first: Bool, rounds: Int, send: Channel<Int>, receive: Channel<Int>) throws {
        for i in 0..<rounds {
            if first { try outer(send: send, i) }
            _ = try awaitBall(receive)
            if !first { try outer(send: send, i) }
        }
    }
    @inline(never) static func outer(send: Channel<Int>, _ i: Int) throws { try middle(send: send, i) }
    @inline(never) static func middle(send: Channel<Int>, _ i: Int) throws { try inner(send: send, i) }
    @inline(never) static func inner(send: Channel<Int>, _ i: Int) throws { try send.send(i) }
    @inline(never) static func awaitBall(_ c: Channel<Int>) throws -> Int? { try c.receive() }
}

/// The tasks' side: the same, with `await`.
enum TaskSide {
    static func serve(first: Bool, rounds: Int, send: Channel<Int>, receive: Channel<Int>) async throws -> Int {
        var got = 0
        for i in 0..<rounds {
            if first { try await outer(send: send, i) }
            if try await receive.receive() != nil { got += 1 }
            if !first { try await outer(send: send, i) }
        }
        return got
    }
    @inline(never) static func outer(send: Channel<Int>, _ i: Int) async throws { try await middle(send: send, i) }
    @inline(never) static func middle(send: Channel<Int>, _ i: Int) async throws { try await inner(send: send, i) }
    @inline(never) static func inner(send: Channel<Int>, _ i: Int) async throws { try await send.send(i) }
}

func readFile(_ path: String) throws -> [UInt8] {
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw TraceFile.Malformed(description: "cannot read \(path): \(error.localizedDescription)")
    }
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    do {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    } catch {
        throw TraceFile.Malformed(description: "cannot write \(path): \(error.localizedDescription)")
    }
}

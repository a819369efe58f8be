// spindle: Spindle's command-line tool. `spindle bench` measures the runtime against its
// peers on this machine; `spindle fetch` runs the 1,000 concurrent fetches.
import ArgumentParser

@main
struct SpindleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spindle",
        abstract: "Spindle, a coroutine runtime for Swift: tools.",
        subcommands: [Bench.self, Fetch.self, TraceCommand.self, Demo.self, BenchChild.self, HoldConnections.self]
    )
}

// The warnings through swift-log: a LogHandler that keeps what it is given sees the
// warning with its level, message and metadata.
import Logging
import Spindle
import SpindleLogging
import Synchronization
import Testing

final class Recorded: Sendable {
    let entries = Mutex<[(Logger.Level, String, Logger.Metadata?)]>([])
}

struct RecordingHandler: LogHandler {
    let recorded: Recorded
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        recorded.entries.withLock { $0.append((event.level, "\(event.message)", event.metadata)) }
    }
}

@Suite struct SpindleLoggingTests {
    @Test func warningsGoThroughTheLogger() async throws {
        let recorded = Recorded()
        let token = SpindleLogging.install(Logger(label: "spindle") { _ in RecordingHandler(recorded: recorded) })
        defer { SpindleLogging.uninstall(token) }
        let name = "log-\(UInt32.random(in: 0...UInt32.max))"
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: name))
        #expect(rt.shutdown(timeout: .seconds(10)))
        #expect(await Task(executorPreference: rt) { 7 }.value == 7)
        let mine = recorded.entries.withLock { $0.filter { $0.2?["spindle.runtime"] == "\(name)" } }
        #expect(mine.count == 1)
        #expect(mine.first?.0 == .warning)
        #expect(mine.first?.1.contains("has shut down") == true)
        #expect(mine.first?.2?["spindle.warning"] == "jobForwardedAfterShutdown")
    }
}

// Runtime warnings: a job reaching a stopped runtime is reported (once a second, with
// what was held back), to the installed handler or to stderr by default.
import Spindle
import Synchronization
import Testing

@Suite(.serialized) struct RuntimeWarningTests {
    @Test func aJobAfterShutdownIsReportedOnceASecond() async throws {
        let name = "warn-\(UInt32.random(in: 0...UInt32.max))"
        let seen = Lock<[RuntimeWarning]>([])
        let token = RuntimeWarning.addHandler { w in if w.runtime == name { seen.withLock { $0.append(w) } } }
        defer { RuntimeWarning.removeHandler(token) }
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: name))
        #expect(rt.shutdown(timeout: .seconds(10)))
        for i in 0..<3 { #expect(await Task(executorPreference: rt) { i }.value == i) }
        let warnings = seen.withLock { $0 }
        #expect(warnings.count == 1, "\(warnings)")
        let w = try #require(warnings.first)
        #expect(w.kind == .jobForwardedAfterShutdown)
        #expect(w.message.contains("'\(name)' has shut down") && w.message.contains("global executor"))
        #expect(w.description.hasPrefix("Spindle warning: "))
        #expect(w.suppressed == 0)
        #expect(rt.forwardedJobCount == 3)
    }

    /// Without a handler, the warning is a line on stderr (seen from outside the process).
    @Test func theDefaultIsALineOnStandardError() throws {
        let r = try runProbe("warning-after-shutdown")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("Spindle warning: runtime 'probe-warn' has shut down"), "stderr: \(r.stderr)")
    }
}

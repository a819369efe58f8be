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

    /// The stall detector (subprocess: it prints to stderr): a job and a fiber that spin
    /// 300 ms three calls deep are reported with a backtrace naming those three functions;
    /// a 10 ms spin is not reported.
    @Test func aSpinningJobAndFiberAreReportedWithTheirStacks() throws {
        let r = try runProbe("stall")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let reports = r.stderr.components(separatedBy: "Spindle warning: ").dropFirst()
        let job = reports.first { $0.contains("runtime 'probe-stall' has run a job for") }
        let fiber = reports.first { $0.contains("runtime 'probe-fiber' has run fiber 'spinner' for") }
        let underTSan = r.check("tsan") == true
        if underTSan {
            print("aSpinningJobAndFiberAreReportedWithTheirStacks: under TSan the capture signal is handled from TSan's deferred dispatch, whose frames have no frame pointers, so the backtraces' function names are not checked here (they are in the plain run)")
        }
        for (what, report) in [("job", job), ("fiber", fiber)] {
            guard let report else {
                Issue.record("no stall report for the \(what): \(r.stderr)")
                continue
            }
            #expect(report.contains("(threshold 100 ms)"), "\(report)")
            #expect(report.contains("Its stack now:\n    #0 "), "\(report)")
            if underTSan { continue }
            for f in ["probeStallSpin", "probeStallMiddle", "probeStallOuter"] {
                #expect(report.contains("spindle_probe.\(f)(Swift.Int)"), "\(what) report lacks \(f): \(report)")
            }
            // Innermost first: the spin above its callers.
            if let spin = report.range(of: "probeStallSpin"), let outer = report.range(of: "probeStallOuter") {
                #expect(spin.lowerBound < outer.lowerBound)
            }
        }
        let quiet = try runProbe("no-stall")
        #expect(quiet.status == 0, "stderr: \(quiet.stderr)")
        #expect(!quiet.stderr.contains("Spindle warning"), "a 10 ms spin was reported: \(quiet.stderr)")
    }
}

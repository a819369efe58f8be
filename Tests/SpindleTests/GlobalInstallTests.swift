// Global executor installation is process-wide and must happen first, and fatal errors
// end the process: both are tested by running spindle-probe in a subprocess.
import Foundation
import Testing

struct ProbeResult {
    let status: Int32
    /// True when the probe was ended by a signal (status is then the signal number).
    let signalled: Bool
    let stdout: String
    let stderr: String

    func check(_ name: String) -> Bool? {
        for line in stdout.split(separator: "\n") where line.hasPrefix("check \(name) ") {
            return line.hasSuffix(" true")
        }
        return nil
    }
}

/// Runs the probe executable built next to the test bundle.
func runProbe(_ scenario: String, environment: [String: String] = [:]) throws -> ProbeResult {
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = exe.deletingLastPathComponent()
    // Linux test bundles live at .build/<config>/<name>.xctest
    if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
    let probe = dir.appendingPathComponent("spindle-probe")
    let p = Process()
    p.executableURL = probe
    p.arguments = [scenario]
    var env = ProcessInfo.processInfo.environment
    env["SWIFT_BACKTRACE"] = "enable=no" // keep crash output short and fast
    env.merge(environment) { $1 }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return ProbeResult(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

@Suite struct GlobalInstallTests {
    static let checks = [
        "main-actor-on-main-thread", "main-actor-not-a-worker", "plain-task", "detached-task",
        "default-actor", "task-group", "async-let", "task-sleep-resumes-on-worker",
        "main-actor-sleep-duration", "back-on-main-thread", "spawn-blocking-off-workers",
        "main-returns-value",
    ]

    @Test func everythingRunsOnSpindleAfterInstall() throws {
        let r = try runProbe("global")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        for name in Self.checks {
            #expect(r.check(name) == true, "\(name) in:\n\(r.stdout)")
        }
        #expect(r.stdout.hasSuffix("done\n"))
    }

    /// LivenessTests' rules with Spindle as Swift's global executor, where `Task.sleep`
    /// and plain `Task {}` go through Spindle's own timers and queues.
    @Test func globalRuntimeServesSleepsAndWokenTasksWhileAWorkerSpins() throws {
        let r = try runProbe("global-liveness")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.check("task-sleep-while-spinning") == true, "\(r.stdout)")
        #expect(r.check("resumed-task-while-waker-spins") == true, "\(r.stdout)")
    }

    @Test func mainRethrows() throws {
        let r = try runProbe("global-throws")
        #expect(r.status == 0)
        #expect(r.check("main-rethrows") == true)
    }

    @Test func fibersRunOnTheGlobalRuntime() throws {
        let r = try runProbe("global-fibers")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.check("fiber-on-global-runtime") == true, "\(r.stdout)")
        #expect(r.check("wait-from-plain-thread") == true, "\(r.stdout)")
        #expect(r.check("main-returns-value") == true)
    }

    @Test func waitFromAPlainThreadWithoutSpindleInstalled() throws {
        let r = try runProbe("plain-thread-wait")
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.check("wait-on-default-executor") == true, "\(r.stdout)")
    }

    @Test func fiberStackOverflowEndsWithAMessageNamingTheFiber() throws {
        let r = try runProbe("fiber-overflow")
        #expect(r.signalled && r.status == SIGSEGV, "status \(r.status), stderr: \(r.stderr)")
        #expect(!r.stdout.contains("survived"))
        #expect(r.stderr.contains("Spindle fatal: stack overflow in fiber 'deep-recursion': its stack is 32"), "\(r.stderr)")
    }

    @Test func generatorStackOverflowEndsWithAMessage() throws {
        let r = try runProbe("generator-overflow")
        #expect(r.signalled && r.status == SIGSEGV, "status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.contains("Spindle fatal: stack overflow in generator: its stack is 32"), "\(r.stderr)")
    }

    @Test func shuttingDownTheGlobalRuntimeStopsWithAClearMessage() throws {
        let r = try runProbe("shutdown-global")
        #expect(r.status != 0)
        #expect(r.stderr.contains("Spindle fatal: the runtime installed as Swift's global executor cannot be shut down"))
    }
}

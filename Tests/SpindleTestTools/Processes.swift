// What the HTTP and TLS tests share: running the programs they talk to (curl, python3,
// openssl) and waiting for a condition. Test-only; no product depends on it.
#if canImport(Glibc)
import Glibc
#endif

/// Waits for `condition`, bounded by a timeout only a hang reaches.
@discardableResult
public func waitUntil(timeout: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline { return false }
        // A poll of the condition itself, not a sleep standing in for it: these tests run
        // on Swift's default executor, where a bare Task.yield() loop would spin a core.
        try? await Task.sleep(for: .milliseconds(1))
    }
    return true
}

/// A child started with posix_spawnp, its stdout (and stderr, if asked) on a pipe, and
/// optionally its stdin on another. The parent's ends are returned; the child's are closed.
public struct SpawnedChild {
    public let pid: pid_t
    public let stdout: Int32
    public let stdin: Int32?

    public init(_ path: String, _ args: [String], withStdin: Bool, mergeStderr: Bool) throws {
        var outPipe: [Int32] = [0, 0]
        var inPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0, !withStdin || pipe(&inPipe) == 0 else { throw ProgramError.spawn(path, errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        if mergeStderr { posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2) }
        posix_spawn_file_actions_addclose(&actions, outPipe[0])
        if withStdin {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
            posix_spawn_file_actions_addclose(&actions, inPipe[1])
        }
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        var attr = cleanSpawnAttributes()
        defer { posix_spawnattr_destroy(&attr) }
        let rc = posix_spawnp(&pid, path, &actions, &attr, argv, environ)
        close(outPipe[1])
        if withStdin { close(inPipe[0]) }
        guard rc == 0 else {
            close(outPipe[0])
            if withStdin { close(inPipe[1]) }
            throw ProgramError.spawn(path, rc)
        }
        self.pid = pid
        stdout = outPipe[0]
        stdin = withStdin ? inPipe[1] : nil
    }
}

/// Runs a program (curl, python3) with arguments, returning its exit status and output.
public func runProgram(_ path: String, _ args: [String], stdin: [UInt8]? = nil) throws -> (status: Int32, output: String) {
    let child = try SpawnedChild(path, args, withStdin: true, mergeStderr: true)
    if let stdin { _ = stdin.withUnsafeBytes { write(child.stdin!, $0.baseAddress, $0.count) } }
    close(child.stdin!)
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(child.stdout, &buffer, 4096)
        if n <= 0 { break }
        output += buffer[..<n]
    }
    close(child.stdout)
    var status: Int32 = 0
    waitpid(child.pid, &status, 0)
    return ((status >> 8) & 0xFF, String(decoding: output, as: UTF8.self))
}

public enum ProgramError: Error { case spawn(String, Int32) }

/// Spawn attributes for a child with no blocked signals: a thread of this process may
/// block some (Spindle's signal streams do), and a child inherits the mask, so a Python
/// server would otherwise ignore the SIGTERM that stops it.
public func cleanSpawnAttributes() -> posix_spawnattr_t {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    return attr
}

/// Whether `name` is on PATH.
public func haveProgram(_ name: String) -> Bool {
    (try? runProgram("sh", ["-c", "command -v \(name)"]).status) == 0
}

/// A program running beside the test (Python's http.server, `openssl s_server`): the
/// line of its output that says it is ready, and a kill when done.
public final class BackgroundProcess: Sendable {
    public let pid: pid_t
    /// The first line `ready` accepted (the first line, by default).
    public let firstLine: String
    /// The output pipe, when kept open: a program that goes on writing (s_server) would
    /// die of SIGPIPE once it was closed. Its output must stay under the pipe's 64 KiB.
    private let output: Int32?

    public init(_ path: String, _ args: [String], mergeStderr: Bool = false, keepOutputOpen: Bool = false,
                readyWhen ready: (String) -> Bool = { _ in true }) throws {
        let child = try SpawnedChild(path, args, withStdin: false, mergeStderr: mergeStderr)
        pid = child.pid
        let out = child.stdout
        var found = ""
        while true {
            var line: [UInt8] = []
            var byte: UInt8 = 0
            var ended = true
            while read(out, &byte, 1) == 1 {
                if byte == 0x0A { ended = false; break }
                line.append(byte)
            }
            let text = String(decoding: line, as: UTF8.self)
            if ready(text) { found = text; break }
            if ended { break }
        }
        firstLine = found
        if keepOutputOpen { output = out } else {
            close(out)
            output = nil
        }
    }

    public func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        if let output { close(output) }
    }
}

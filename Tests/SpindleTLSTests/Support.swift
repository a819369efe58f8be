import Spindle
import SpindleTLS
import SpindleTestTools
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The two worlds a TLS call can be made from.
enum Mode: String, CaseIterable, Sendable, CustomStringConvertible {
    case async, fiber
    var description: String { rawValue }
}

/// Heavy loops run at 1/SPINDLE_TEST_SCALE under the sanitizers (see .ci/run).
let testScale: Int = {
    guard let s = getenv("SPINDLE_TEST_SCALE"), let n = Int(String(cString: s)), n > 0 else { return 1 }
    return n
}()

let haveOpenSSL = haveProgram("openssl")
let havePython = haveProgram("python3")
let noOpenSSL = "the openssl command is not installed (.ci/run installs it from Debian)"
let noPython = "python3 is not installed"

/// The certificates of Tests/SpindleTLSTests/make-pki.sh, made once per test process in
/// a fresh temporary directory.
final class TestPKI: Sendable {
    let dir: String

    static let shared: Result<TestPKI, TestSetupError> = Result { () throws(TestSetupError) in try TestPKI() }

    static func get() throws -> TestPKI { try shared.get() }

    private init() throws(TestSetupError) {
        var template = Array("/tmp/spindle-tls-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestSetupError("mkdtemp failed: errno \(errno)") }
        dir = String(cString: made)
        let script = String(#filePath.dropLast("Support.swift".count)) + "make-pki.sh"
        let r: (status: Int32, output: String)
        do { r = try runProgram("sh", [script, dir]) } catch { throw TestSetupError("cannot run \(script): \(error)") }
        guard r.status == 0 else { throw TestSetupError("make-pki.sh failed (\(r.status)): \(r.output)") }
    }

    func path(_ name: String) -> String { "\(dir)/\(name)" }
    var root: String { path("root.pem") }

    /// `name`'s certificate with its intermediate (or alone) and its key.
    func identity(_ name: String, withIntermediate: Bool = true) -> TLSIdentity {
        .files(certificateChain: path(withIntermediate ? "\(name).chain.pem" : "\(name).pem"), privateKey: path("\(name).key"))
    }

    func client(alpn: [String] = [], verification: TLSCertificateVerification = .full,
                minimum: TLSVersion = .tls12, crls: Bool = false) throws -> TLSClientContext {
        try TLSClientContext(configuration: TLSClientConfiguration(
            trustRoots: .certificates(.file(root)), verification: verification,
            revocationLists: crls ? [.file(path("int.crl")), .file(path("root.crl"))] : [],
            applicationProtocols: alpn, minimumVersion: minimum))
    }

    func server(_ names: [String] = ["localhost"], alpn: [String] = []) throws -> TLSServerContext {
        try TLSServerContext(configuration: TLSServerConfiguration(identities: names.map { identity($0) }, applicationProtocols: alpn))
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// `openssl s_server` on a free loopback port, until stopped.
final class OpenSSLServer: Sendable {
    let process: BackgroundProcess
    let port: Int

    init(_ args: [String]) throws {
        process = try BackgroundProcess("openssl", ["s_server", "-accept", "127.0.0.1:0"] + args,
                                        mergeStderr: true, keepOutputOpen: true) { $0.hasPrefix("ACCEPT") }
        guard let p = process.firstLine.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.stop()
            throw TestSetupError("openssl s_server did not say where it listens (\"\(process.firstLine)\")")
        }
        port = p
    }

    func stop() { process.stop() }
}

/// A Python program given as text, started in the background; its first output line is
/// what it prints when ready (a port).
func python(_ script: String, _ args: [String]) throws -> BackgroundProcess {
    try BackgroundProcess("python3", ["-c", script] + args)
}

/// Reads until `terminator` or the end (tasks).
func readLine(_ s: TLSStream, terminator: UInt8 = 0x0A) async throws -> [UInt8] {
    var out: [UInt8] = []
    while out.last != terminator {
        let piece = try await s.read(upTo: 4096)
        if piece.isEmpty { break }
        out += piece
    }
    return out
}

/// Reads until `terminator` or the end (fibers).
func readLineBlocking(_ s: TLSStream, terminator: UInt8 = 0x0A) throws -> [UInt8] {
    var out: [UInt8] = []
    while out.last != terminator {
        let piece = try s.read(upTo: 4096)
        if piece.isEmpty { break }
        out += piece
    }
    return out
}

func readToEnd(_ s: TLSStream) async throws -> [UInt8] {
    var out: [UInt8] = []
    while true {
        let piece = try await s.read(upTo: 65536)
        if piece.isEmpty { return out }
        out += piece
    }
}

func readToEndBlocking(_ s: TLSStream) throws -> [UInt8] {
    var out: [UInt8] = []
    while true {
        let piece = try s.read(upTo: 65536)
        if piece.isEmpty { return out }
        out += piece
    }
}

/// A TLS server of the tests' own, on a runtime, handling each connection in a task or a
/// fiber (`mode`) with `behavior`. Errors from handshakes and handlers are kept.
final class TLSTestServer: Sendable {
    enum Behavior: Sendable {
        /// Reads a line, answers it in upper case, sends close_notify, waits for the end.
        case upperLine
        /// Echoes every byte until the peer's end, then sends close_notify.
        case echo
        /// Writes "data", then ends cleanly (close_notify) or abruptly (TCP close).
        case writeThenEnd(clean: Bool)
        /// Completes the handshake only.
        case handshakeOnly
    }

    let runtime: Runtime
    let listener: TCPListener
    let errors = Lock<[Error]>([])
    let handled = Atomic<Int>(0)
    let done = Atomic<Bool>(false)

    init(on runtime: Runtime, _ context: TLSServerContext, _ mode: Mode, _ behavior: Behavior,
         handshakeTimeout: Duration? = .seconds(20)) throws {
        self.runtime = runtime
        listener = try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: runtime)
        let l = listener
        switch mode {
        case .async:
            Task(executorPreference: runtime) { [self] in
                while let socket = try? await l.accept() {
                    Task(executorPreference: runtime) { [self] in
                        do {
                            let s = try await TLSStream.accept(over: socket, context: context, handshakeTimeout: handshakeTimeout)
                            try await Self.serve(s, behavior)
                        } catch { errors.withLock { $0.append(error) } }
                        socket.close()
                        handled.add(1, ordering: .sequentiallyConsistent)
                    }
                }
                done.store(true, ordering: .sequentiallyConsistent)
            }
        case .fiber:
            runtime.spawnFiber(name: "tls-accept") { [self] in
                while let socket = try? l.accept() {
                    runtime.spawnFiber(name: "tls-conn") { [self] in
                        do {
                            let s = try TLSStream.accept(over: socket, context: context, handshakeTimeout: handshakeTimeout)
                            try Self.serveBlocking(s, behavior)
                        } catch { errors.withLock { $0.append(error) } }
                        socket.close()
                        handled.add(1, ordering: .sequentiallyConsistent)
                    }
                }
                done.store(true, ordering: .sequentiallyConsistent)
            }
        }
    }

    var port: Int { listener.localAddress.port! }

    private static func serve(_ s: TLSStream, _ behavior: Behavior) async throws {
        switch behavior {
        case .upperLine:
            let line = try await readLine(s)
            try await s.write(String(decoding: line, as: UTF8.self).uppercased())
            try await s.shutdownWrite()
            _ = try? await readToEnd(s)
        case .echo:
            var buffer = [UInt8](repeating: 0, count: 32 * 1024)
            while true {
                let piece = try await s.read(upTo: buffer.count)
                if piece.isEmpty { break }
                buffer = piece
                try await s.write(buffer)
            }
            try await s.shutdownWrite()
        case .writeThenEnd(let clean):
            try await s.write("data")
            if clean { try await s.shutdownWrite() } else { s.close() }
            _ = try? await readToEnd(s)
        case .handshakeOnly:
            _ = try? await readToEnd(s)
        }
    }

    private static func serveBlocking(_ s: TLSStream, _ behavior: Behavior) throws {
        switch behavior {
        case .upperLine:
            let line = try readLineBlocking(s)
            try s.write(String(decoding: line, as: UTF8.self).uppercased())
            try s.shutdownWrite()
            _ = try? readToEndBlocking(s)
        case .echo:
            while true {
                let piece = try s.read(upTo: 32 * 1024)
                if piece.isEmpty { break }
                try s.write(piece)
            }
            try s.shutdownWrite()
        case .writeThenEnd(let clean):
            try s.write("data")
            if clean { try s.shutdownWrite() } else { s.close() }
            _ = try? readToEndBlocking(s)
        case .handshakeOnly:
            _ = try? readToEndBlocking(s)
        }
    }

    /// The errors so far, as text.
    var errorTexts: [String] { errors.withLock { $0.map { "\($0)" } } }

    func stop() async {
        listener.close()
        #expect(await waitUntil { done.load(ordering: .sequentiallyConsistent) }, "the accept loop did not end after close")
    }
}

/// Open descriptors of this process now.
func openDescriptors() -> Int {
    guard let d = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(d) }
    var n = 0
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { n += 1 }
    }
    return n - 1 // the directory stream's own descriptor
}

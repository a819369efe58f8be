// `spindle fetch`: the defining document's program. Fetch N URLs concurrently (by default
// on one thread) and report wall time, requests per second, latency percentiles, peak
// RSS and RSS per request in flight.
import ArgumentParser
import HTTPTypes
import Spindle
import SpindleHTTP
import SpindleTLS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch a URL N times concurrently (the 1,000 concurrent fetches in one thread).",
        discussion: """
        Every request is in flight at once: one connection each (the pool's per-host limit is \
        --count). The last line is machine-readable: RESULT key=value ...
        """
    )

    @Option(help: "How many fetches run concurrently.")
    var count = 1000

    @Option(help: "async: a task per fetch; fiber: a fiber per fetch with blocking calls.")
    var mode = "async"

    @Option(help: "Worker threads; 1 runs everything on the calling thread (current-thread runtime).")
    var workers = 1

    @Flag(help: "Start a local server (its own runtime and thread) and fetch from it.")
    var serve = false

    @Flag(help: "Like --serve, over HTTPS: a throw-away CA (in memory, trusted by this run only) certifies the local server.")
    var serveTls = false

    @Option(help: "For https URLs: trust the CA certificates in this PEM file instead of the system's.")
    var cacert: String?

    @Flag(help: "For https URLs: a full TLS handshake for every connection (no session resumption).")
    var noResume = false

    @Argument(help: "The URL (not needed with --serve or --serve-tls).")
    var url: String?

    func validate() throws {
        if mode != "async" && mode != "fiber" { throw ValidationError("--mode is async or fiber") }
        if count < 1 { throw ValidationError("--count must be at least 1") }
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if url == nil && !serve && !serveTls { throw ValidationError("give a URL, or --serve (--serve-tls) to fetch from a local server") }
        if serve && serveTls { throw ValidationError("--serve and --serve-tls are two kinds of local server: pick one") }
    }

    func run() throws {
        var server: HTTPServer?
        var serverRuntime: Runtime?
        var target = url ?? ""
        var tls = TLSClientConfiguration()
        if let cacert { tls.trustRoots = .certificates(.file(cacert)) }
        tls.sessionResumption = !noResume
        if serve || serveTls {
            var serverTLS: TLSServerContext?
            if serveTls {
                let ca = try TLSThrowawayAuthority()
                serverTLS = try TLSServerContext(configuration: TLSServerConfiguration(
                    identity: try ca.issue(for: ["localhost", "127.0.0.1"]), applicationProtocols: ["http/1.1"]))
                tls.trustRoots = .certificates(.pem(ca.certificatePEM))
            }
            let rt = try Runtime(flavor: .multiThread, workers: 1)
            let s = try HTTPServer(address: SocketAddress("127.0.0.1:0"), tls: serverTLS, on: rt) { _ in
                HTTPServerResponse(status: .ok, headerFields: [.contentType: "text/plain"], body: "Hello, World!")
            }
            Task(executorPreference: rt) { try await s.run() }
            serverRuntime = rt
            server = s
            if url == nil { target = "\(serveTls ? "https" : "http")://\(s.localAddress)/" }
        }
        let runtime = workers == 1
            ? try Runtime(flavor: .currentThread)
            : try Runtime(flavor: .multiThread, workers: workers)
        let client = HTTPClient(configuration: HTTPClientConfiguration(maxConnectionsPerHost: count, tls: tls), on: runtime)
        let baseline = currentRSSBytes()
        let started = ContinuousClock.now
        let outcomes = try runtime.run { [count, mode, target] () async throws -> [FetchOutcome] in
            if mode == "async" {
                return await withTaskGroup(of: FetchOutcome.self) { group in
                    for _ in 0..<count {
                        group.addTask(executorPreference: runtime) { await fetchAsync(client, target) }
                    }
                    var all: [FetchOutcome] = []
                    all.reserveCapacity(count)
                    for await o in group { all.append(o) }
                    return all
                }
            }
            let handles = (0..<count).map { _ in runtime.spawnFiber { fetchBlocking(client, target) } }
            var all: [FetchOutcome] = []
            all.reserveCapacity(count)
            for h in handles { all.append(try await h.value) }
            return all
        }
        let wall = ContinuousClock.now - started
        let peak = peakRSSBytes()
        client.shutdown()
        runtime.shutdown()
        server?.shutdown()
        serverRuntime?.shutdown()
        report(outcomes, wall: wall, baseline: baseline, peak: peak, target: target)
    }

    func report(_ outcomes: [FetchOutcome], wall: Duration, baseline: Int, peak: Int, target: String) {
        let ok = outcomes.filter { $0.error == nil }
        let errors = outcomes.count - ok.count
        var lat = ok.map(\.latency).sorted()
        if lat.isEmpty { lat = [.zero] }
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15 }
        func pct(_ p: Double) -> Double { ms(lat[min(lat.count - 1, Int(Double(lat.count - 1) * p + 0.5))]) }
        let wallMS = ms(wall)
        let rps = Double(ok.count) / max(wallMS / 1e3, 1e-9)
        let perRequest = max(0, peak - baseline) / max(1, count)
        let sizes = Set(ok.map(\.bytes))
        print("fetched \(target) \(count)× concurrently (\(mode), \(workers == 1 ? "one thread" : "\(workers) workers"))")
        print("  wall \(fmt(wallMS)) ms, \(fmt(rps)) requests/s, latency p50 \(fmt(pct(0.5))) ms, p99 \(fmt(pct(0.99))) ms")
        print("  peak RSS \(fmt(Double(peak) / 1048576)) MiB (baseline \(fmt(Double(baseline) / 1048576)) MiB), \(perRequest) bytes per request in flight")
        print("  \(ok.count) ok, \(errors) failed; body sizes \(sizes.sorted())")
        if let e = outcomes.first(where: { $0.error != nil })?.error { print("  first error: \(e)") }
        print("RESULT wall_ms=\(fmt(wallMS)) rps=\(fmt(rps)) p50_ms=\(fmt(pct(0.5))) p99_ms=\(fmt(pct(0.99))) peak_rss_kib=\(peak / 1024) rss_per_request_bytes=\(perRequest) errors=\(errors)")
    }
}

struct FetchOutcome: Sendable {
    var latency: Duration
    var bytes: Int
    var error: String?
}

func fetchAsync(_ client: HTTPClient, _ url: String) async -> FetchOutcome {
    let start = ContinuousClock.now
    do {
        let response = try await client.get(url)
        let body = try await response.body.collect(upTo: 64 << 20)
        if response.status.code != 200 { return FetchOutcome(latency: .now - start, bytes: body.count, error: "status \(response.status.code)") }
        return FetchOutcome(latency: .now - start, bytes: body.count, error: nil)
    } catch {
        return FetchOutcome(latency: .now - start, bytes: 0, error: "\(error)")
    }
}

func fetchBlocking(_ client: HTTPClient, _ url: String) -> FetchOutcome {
    let start = ContinuousClock.now
    do {
        let response = try client.get(url)
        let body = try response.body.collect(upTo: 64 << 20)
        if response.status.code != 200 { return FetchOutcome(latency: .now - start, bytes: body.count, error: "status \(response.status.code)") }
        return FetchOutcome(latency: .now - start, bytes: body.count, error: nil)
    } catch {
        return FetchOutcome(latency: .now - start, bytes: 0, error: "\(error)")
    }
}

/// Resident set size now (/proc/self/statm's second field, pages), in bytes.
func currentRSSBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, 256, f) != nil else { return 0 }
    let parts = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
    guard parts.count >= 2, let pages = Int(parts[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Peak resident set size (getrusage), in bytes.
func peakRSSBytes() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Int(u.ru_maxrss) * 1024
}

private func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
}

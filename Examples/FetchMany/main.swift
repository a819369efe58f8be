// The defining document's program in Swift: fetch N URLs concurrently in one thread.
// asyncio's version is `await asyncio.gather(*(fetch(session, url) for url in urls))`;
// here a task group on a current-thread runtime (one thread does everything), or a
// fiber per URL with plain blocking calls.
//
//   swift run -c release FetchMany 1000 http://127.0.0.1:8080/          # tasks
//   swift run -c release FetchMany 1000 http://127.0.0.1:8080/ --fiber  # fibers
// (`spindle fetch` is the same program with timing, percentiles and memory figures.)
import Spindle
import SpindleHTTP

let args = CommandLine.arguments
guard args.count >= 3, let n = Int(args[1]), n > 0 else {
    print("usage: FetchMany COUNT URL [--fiber]")
    exit(2)
}
let url = args[2]
let fibers = args.dropFirst(3).contains("--fiber")

let started = ContinuousClock.now
let runtime = try Runtime(flavor: .currentThread)
let client = HTTPClient(configuration: HTTPClientConfiguration(maxConnectionsPerHost: n), on: runtime)
let sizes: [Int] = try runtime.run {
    if fibers {
        let handles = (0..<n).map { _ in
            runtime.spawnFiber { try client.get(url).body.collect(upTo: 1 << 20).count }
        }
        var out: [Int] = []
        for h in handles { out.append(try await h.value) }
        return out
    }
    return try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<n {
            group.addTask(executorPreference: runtime) { try await client.get(url).body.collect(upTo: 1 << 20).count }
        }
        return try await group.reduce(into: []) { $0.append($1) }
    }
}
let wall = ContinuousClock.now - started
var usage = rusage()
getrusage(RUSAGE_SELF.rawValue, &usage)
let ms = Double(wall.components.seconds) * 1e3 + Double(wall.components.attoseconds) / 1e15
print("fetched \(sizes.count) responses, \(sizes.reduce(0, +)) bytes in all, in \(ms) ms")
// For Benchmarks/http/run.sh: wall time, throughput, peak RSS (no per-request latencies here).
print("RESULT wall_ms=\(ms) rps=\(Double(n) / (ms / 1e3)) peak_rss_kib=\(usage.ru_maxrss) errors=0")
client.shutdown()
runtime.shutdown()

#if canImport(Glibc)
import Glibc
#endif

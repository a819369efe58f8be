// The sampler against swift-metrics' own test backend (MetricsTestKit): each series has
// its name and dimensions, counters grow by what the runtime did between samples, gauges
// show what it holds.
import Metrics
import MetricsTestKit
import Spindle
import SpindleMetrics
import SpindleTestTools
import Testing

@Suite struct SamplerTests {
    @Test func publishesCountersAndGauges() async throws {
        let backend = TestMetrics()
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let sampler = RuntimeMetricsSampler(runtime: rt, runtimeName: "test", factory: backend)
        sampler.sample()
        let jobs = { (w: Int) throws -> Int64 in try backend.expectCounter("spindle_worker_jobs_total", [("runtime", "test"), ("worker", "\(w)")]).totalValue }
        let startJobs = try jobs(0) + jobs(1)

        let tasks = 300
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks { group.addTask(executorPreference: rt) {} }
        }
        let listeners = try (0..<2).map { _ in try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt) }
        defer { listeners.forEach { $0.close() } }
        // Exact counts once both workers have parked (they publish then).
        #expect(await waitUntil { rt.metrics().workers.allSatisfy(\.isParked) })
        sampler.sample()
        #expect(try jobs(0) + jobs(1) - startJobs >= Int64(tasks))
        let descriptors = try backend.expectGauge("spindle_registered_descriptors", [("runtime", "test")]).lastValue
        #expect(descriptors == Double(rt.metrics().registeredDescriptors))
        #expect((descriptors ?? 0) >= 2)
        #expect(try backend.expectGauge("spindle_live_fibers", [("runtime", "test")]).lastValue == 0)
        #expect(try backend.expectCounter("spindle_worker_busy_nanoseconds_total", [("runtime", "test"), ("worker", "0")]).totalValue > 0)
        // A counter never steps backwards: a third sample with nothing done adds nothing.
        let before = try jobs(0) + jobs(1)
        sampler.sample()
        #expect(try jobs(0) + jobs(1) >= before)
    }

    @Test func runSamplesUntilCancelled() async throws {
        let backend = TestMetrics()
        let rt = try Runtime(flavor: .multiThread, workers: 1)
        defer { rt.shutdown() }
        let sampler = RuntimeMetricsSampler(runtime: rt, interval: .milliseconds(5), factory: backend)
        let task = Task { try await sampler.run() }
        let sampled = await waitUntil { ((try? backend.expectGauge("spindle_armed_timers").values.count) ?? 0) >= 3 }
        task.cancel()
        _ = await task.result
        #expect(sampled, "fewer than 3 samples")
    }
}

// Runtime.metrics() against known work: each counter moves by what was done, the gauges
// show what is held, and busy/parked time add up to the uptime.
import Spindle
import Synchronization
import Testing

@Suite(.serialized) struct MetricsTests {
    /// Workers publish exact counts once parked: wait for that.
    private func settled(_ rt: Runtime) async -> RuntimeMetrics {
        _ = await waitUntil { rt.metrics().workers.allSatisfy(\.isParked) }
        return rt.metrics()
    }

    @Test func jobsFibersAndWakeUpsAreCounted() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let before = await settled(rt)
        let tasks = 500
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks { group.addTask(executorPreference: rt) {} }
        }
        let afterTasks = await settled(rt)
        #expect(afterTasks.jobs - before.jobs >= tasks, "\(afterTasks.jobs - before.jobs) jobs for \(tasks) tasks")
        // Each fiber runs once to start and once after each of its yields.
        let fibers = 10, yields = 50
        let handles = (0..<fibers).map { _ in rt.spawnFiber { for _ in 0..<yields { try Fiber.yield() } } }
        for h in handles { try await h.value }
        let afterFibers = await settled(rt)
        let resumes = afterFibers.fiberResumes - afterTasks.fiberResumes
        #expect(resumes >= fibers * (yields + 1), "\(resumes) resumes")
        #expect(resumes <= fibers * (yields + 1) + fibers, "\(resumes) resumes")
        #expect(await waitUntil { rt.metrics().liveFibers == 0 })
        #expect(afterFibers.workers.allSatisfy { $0.parks > 0 })
        #expect(afterFibers.workers.count == 2)
        #expect(afterFibers.workers.map(\.index) == [0, 1])
    }

    @Test func gaugesShowWhatIsHeld() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let base = rt.metrics()
        // Descriptors: three listeners.
        let listeners = try (0..<3).map { _ in try TCPListener.bind(to: SocketAddress("127.0.0.1:0"), on: rt) }
        #expect(rt.metrics().registeredDescriptors == base.registeredDescriptors + 3)
        listeners.forEach { $0.close() }
        #expect(await waitUntil { rt.metrics().registeredDescriptors == base.registeredDescriptors })
        // Timers: five sleeping tasks, then none once they are cancelled.
        let sleepers = (0..<5).map { _ in Task(executorPreference: rt) { try await sleep(for: .seconds(600)) } }
        #expect(await waitUntil { rt.metrics().armedTimers == base.armedTimers + 5 })
        sleepers.forEach { $0.cancel() }
        for s in sleepers { _ = await s.result }
        #expect(await waitUntil { rt.metrics().armedTimers == base.armedTimers })
        // Live fibers: parked ones count until they finish.
        let gate = Semaphore(permits: 0)
        let parked = (0..<4).map { _ in rt.spawnFiber { try gate.acquire() } }
        #expect(await waitUntil { rt.metrics().liveFibers == 4 })
        gate.release(count: 4)
        for p in parked { try await p.value }
        // (A joiner may see the value just before the fiber's bookkeeping ends.)
        #expect(await waitUntil { rt.metrics().liveFibers == 0 })
        // The blocking pool: a thread while a job holds it.
        let held = Semaphore(permits: 0)
        let started = Atomic<Bool>(false)
        async let job: Void = rt.spawnBlocking {
            started.store(true, ordering: .sequentiallyConsistent)
            try held.acquire()
        }
        #expect(await waitUntil { started.load(ordering: .sequentiallyConsistent) })
        #expect(rt.metrics().blockingPoolThreads >= 1)
        held.release()
        try await job
    }

    @Test func busyTimeCountsASpinningJob() async throws {
        let rt = try Runtime(flavor: .multiThread, workers: 2)
        defer { rt.shutdown() }
        let before = await settled(rt)
        // One job that spins 50 ms: busy time grows by at least that on one worker.
        await Task(executorPreference: rt) {
            let until = ContinuousClock.now + .milliseconds(50)
            while ContinuousClock.now < until {}
        }.value
        let after = await settled(rt)
        #expect(after.busyTime - before.busyTime >= .milliseconds(50), "\(after.busyTime - before.busyTime)")
        // Both workers have parked (they are now), and spent most of this idle test parked.
        for w in after.workers { #expect(w.parkedTime > .zero && w.parkedTime <= after.uptime) }
        #expect(after.uptime > before.uptime)
    }
}

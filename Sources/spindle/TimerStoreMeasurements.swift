// The runtime's two timer stores side by side (rows `timer.store.*`), on the library's
// `package` timer-store types.
import Spindle
import Glibc

enum TimerStoreBenchmark {
    /// ns per timer: `count` timers inserted with deadlines spread over `spreadNanos`, then
    /// either all cancelled in random order (`fire == false`) or all fired by advancing
    /// the clock 1 ms at a time (what a busy runtime's keeper does).
    static func run(wheel: Bool, count: Int, spreadNanos: Int64, fire: Bool) -> Double {
        if wheel {
            var s = WheelTimerStore()
            return measure(&s, count: count, spreadNanos: spreadNanos, fire: fire)
        }
        var s = HeapTimerStore()
        return measure(&s, count: count, spreadNanos: spreadNanos, fire: fire)
    }

    private static func measure<S: TimerStore>(_ s: inout S, count: Int, spreadNanos: Int64, fire: Bool) -> Double {
        var rng = SystemRandomNumberGenerator()
        let start: Int64 = 1 << 40
        let deadlines = (0..<count).map { _ in start + Int64.random(in: 0..<spreadNanos, using: &rng) }
        var entries: [TimerEntry] = []
        entries.reserveCapacity(count)
        let dummy = Runnable(bits: 16) // never run: the benchmark drops what it takes out
        let order = Array(0..<count).shuffled(using: &rng)
        var taken = 0
        let t0 = Window.begin()
        for d in deadlines { entries.append(s.insert(deadline: d, item: dummy)) }
        if fire {
            var now = start
            while !s.isEmpty {
                now += 1_000_000
                s.popExpired(now: now) { _ in taken += 1 }
            }
        } else {
            for i in order where s.remove(entries[i]) != nil { taken += 1 }
        }
        let elapsed = Window.end(t0, ops: count)
        precondition(taken == count)
        return Double(elapsed) / Double(count)
    }
}

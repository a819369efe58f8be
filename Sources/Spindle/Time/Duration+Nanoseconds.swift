// Duration → nanoseconds for the timer store and the syscalls, clamped instead of trapping.

extension Duration {
    /// Nanoseconds, clamped to Int64's range (negative durations become 0).
    var nanosecondsClamped: Int64 {
        let (s, atto) = components
        if s < 0 { return 0 }
        if s >= Int64.max / 1_000_000_000 { return .max }
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}

// Completion: where `Runtime.run` leaves its body's result for the blocked caller.

/// The result slot of `Runtime.run`.
final class Completion<T: Sendable>: Sendable {
    private let result = Lock<Result<T, any Error>?>(nil)
    let done = Latch()

    var isDone: Bool { done.isOpen }

    func finish(_ r: Result<T, any Error>) {
        result.withLock { $0 = r }
        done.open()
    }

    func take() throws -> T {
        try result.withLock { $0! }.get()
    }
}

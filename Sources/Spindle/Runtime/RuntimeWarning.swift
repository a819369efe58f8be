// Runtime warnings: things a program should hear about that are not errors of any one
// call (accept out of descriptors, jobs reaching a runtime after its shutdown). They go to
// the handlers a program added (SpindleLogging adds one that logs through swift-log), or
// to stderr ("Spindle warning: …") while there are none. Each kind is reported
// at most once a second per runtime; the next report says how many were held back.
import Synchronization

/// A warning from a runtime (see ``RuntimeWarning/addHandler(_:)``).
public struct RuntimeWarning: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// accept() found the process out of descriptors and backs off (EMFILE, ENFILE).
        case descriptorBackoff
        /// A job reached the runtime after it stopped and ran on Swift's global executor.
        case jobForwardedAfterShutdown
        /// A worker stayed inside one job or fiber turn past the stall threshold
        /// (`Runtime.Configuration.stallThreshold`); the message holds its backtrace.
        case stall
    }

    public let kind: Kind
    /// The runtime's name (its configuration's).
    public let runtime: String
    /// What happened and what to do about it.
    public let message: String
    /// Reports of this kind held back by the rate limit since the last one.
    public let suppressed: Int

    /// "Spindle warning: …", as written to stderr by default.
    public var description: String {
        "Spindle warning: \(message)" + (suppressed > 0 ? " (\(suppressed) more like it in the last second)" : "")
    }

    public typealias Handler = @Sendable (RuntimeWarning) -> Void

    private struct Limit {
        var last: Int64
        var suppressed: Int
    }

    /// What ``addHandler(_:)`` returns, to remove that handler again.
    public struct HandlerToken: Hashable, Sendable {
        let id: Int
    }

    private struct Handlers {
        var next = 0
        var all: [Int: Handler] = [:]
    }

    private static let handlers = Lock(Handlers())
    private static let limits = Lock<[String: Limit]>([:])

    /// Sends every runtime's warnings to `handler` too (and no longer to stderr) until it
    /// is removed. A handler runs on the thread that noticed (a worker): keep it short and
    /// non-blocking.
    @discardableResult
    public static func addHandler(_ handler: @escaping Handler) -> HandlerToken {
        handlers.withLock { h in
            h.next += 1
            h.all[h.next] = handler
            return HandlerToken(id: h.next)
        }
    }

    /// Removes a handler; with none left, warnings go to stderr again.
    public static func removeHandler(_ token: HandlerToken) {
        _ = handlers.withLock { $0.all.removeValue(forKey: token.id) }
    }

    /// Reports a warning, unless one of its kind for its runtime went out less than a
    /// second ago (then it is counted and mentioned by the next).
    static func emit(_ kind: Kind, runtime: String, perWorker worker: Int? = nil, _ message: @autoclosure () -> String) {
        let now = Sys.nowNanos()
        let key = "\(runtime)\u{0}\(kind.rawValue)\u{0}\(worker ?? -1)"
        let held: Int? = limits.withLock { l in
            if let prior = l[key], now - prior.last < 1_000_000_000 {
                l[key]!.suppressed += 1
                return nil
            }
            let held = l[key]?.suppressed ?? 0
            l[key] = Limit(last: now, suppressed: 0)
            return held
        }
        guard let held else { return }
        let warning = RuntimeWarning(kind: kind, runtime: runtime, message: message(), suppressed: held)
        let all = handlers.withLock { Array($0.all.values) }
        if !all.isEmpty {
            for h in all { h(warning) }
        } else {
            Sys.writeStandardError(warning.description + "\n")
        }
    }
}

// SpindleLogging: the runtime's warnings (RuntimeWarning) through swift-log, for programs
// that bootstrapped a logging backend; without it they go to stderr.
import Logging
import Spindle

public enum SpindleLogging {
    /// Sends every runtime warning to `logger` at `level` (warning by default), with the
    /// runtime's name, the kind and the number held back by the rate limit as metadata.
    ///
    /// ```swift
    /// LoggingSystem.bootstrap(MyLogHandler.init)
    /// SpindleLogging.install(Logger(label: "spindle"))
    /// ```
    @discardableResult
    public static func install(_ logger: Logger, level: Logger.Level = .warning) -> RuntimeWarning.HandlerToken {
        RuntimeWarning.addHandler { w in
            var metadata: Logger.Metadata = ["spindle.runtime": "\(w.runtime)", "spindle.warning": "\(w.kind.rawValue)"]
            if w.suppressed > 0 { metadata["spindle.suppressed"] = "\(w.suppressed)" }
            logger.log(level: level, "\(w.message)", metadata: metadata)
        }
    }

    /// Stops logging through the logger `install` returned the token of.
    public static func uninstall(_ token: RuntimeWarning.HandlerToken) { RuntimeWarning.removeHandler(token) }
}

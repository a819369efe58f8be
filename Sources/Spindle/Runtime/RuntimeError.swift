/// Errors a user of `Runtime` can cause.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// `Runtime.run` was called on a thread that is running a Spindle worker: blocking that
    /// worker until the body finishes could deadlock (the body may need that very worker).
    case runInsideWorker
    /// The runtime has been shut down; it runs nothing new.
    case shutDown
    /// The kernel refused a thread (out of threads or memory).
    case threadSpawnFailed(SysError)
    /// The configuration is invalid (for example zero workers).
    case invalidConfiguration(String)
    /// The kernel refused the reactor (epoll or eventfd: out of descriptors or memory).
    case reactorUnavailable(SysError)
    /// A current-thread runtime's fibers run on the thread that started the first of them
    /// (a fiber never moves), and another thread called `run` while they are alive.
    case fibersOnAnotherThread

    public var description: String {
        switch self {
        case .runInsideWorker:
            return "Runtime.run was called from inside a Spindle worker thread; await the work instead of blocking the worker"
        case .shutDown:
            return "the Spindle runtime has been shut down"
        case .threadSpawnFailed(let e):
            return "Spindle could not start a thread: \(e)"
        case .invalidConfiguration(let why):
            return "invalid Spindle runtime configuration: \(why)"
        case .reactorUnavailable(let e):
            return "Spindle could not create its I/O reactor: \(e)"
        case .fibersOnAnotherThread:
            return "this current-thread runtime has live fibers, which run only on the thread that started them: call run (and shutdown) from that thread, or use a .multiThread runtime"
        }
    }
}

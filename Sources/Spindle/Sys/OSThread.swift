// OSThread: starting a named, detached kernel thread. UNSAFE FILE: pthread and Unmanaged.
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

enum OSThread {
    private final class Box {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) { self.name = name; self.body = body }
    }

    /// Starts a detached thread running `body`. Fails only if the kernel refuses a thread
    /// (EAGAIN: out of threads or memory), which callers report.
    static func spawn(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) throws(SysError) {
        // Ownership: retained here, released by the new thread in `entry` (exactly once).
        // SAFETY: the pointer is passed to exactly one thread, which balances the retain.
        let context = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        if stackSize > 0 { pthread_attr_setstacksize(&attr, stackSize) }
        var tid = pthread_t()
        let r = pthread_create(&tid, &attr, { raw in
            // SAFETY: raw is the retained Box passed by spawn; taking it retained here
            // balances that retain.
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = spindle_set_thread_name(box.name)
            box.body()
            return nil
        }, context)
        if r != 0 {
            // SAFETY: the thread was not created, so nobody else will release the Box.
            Unmanaged<Box>.fromOpaque(context).release()
            throw SysError(errno: r, call: "pthread_create")
        }
    }
}

// Sys: the one thin layer between Spindle and the kernel. UNSAFE FILE: raw syscalls and
// raw memory.
//
// Error policy, decided here once for every call that goes through `Sys.call`:
//   - EINTR  → retried, never surfaced.
//   - EAGAIN / EWOULDBLOCK → `.wouldBlock`, a normal outcome the caller handles.
//   - EBADF / EFAULT → programmer error: a descriptor or pointer the runtime owns is
//     invalid, so its own bookkeeping is wrong; we stop with "Spindle fatal:".
//   - anything else (EINVAL included: a bad option or address is the caller's) →
//     `SysError(errno, call)`, which higher layers turn into typed errors.
// Calls that cannot fail in a way a workload causes (clock_nanosleep, futex, epoll_wait)
// end the process with "Spindle fatal:" on anything but EINTR. munmap is not one of them:
// it fails with ENOMEM when it would split a mapping at vm.max_map_count, so it throws.
//
// The syscalls live in this file (time, memory, futex, epoll and eventfd) and SysNet.swift
// (sockets), on top of CSpindle's thin C wrappers; the rest of the runtime calls these.
// Exceptions, each a pure query with no error to handle: `pthread_self`/`pthread_equal`
// (Worker+Fibers' thread check) and `sysconf(_SC_PAGESIZE)` (FiberStack).
import CSpindle
#if canImport(Glibc)
import Glibc
#endif

/// An errno from a failed system call, with the call's name.
public struct SysError: Error, Equatable, CustomStringConvertible {
    public let errno: Int32
    public let call: StaticString

    public static func == (a: SysError, b: SysError) -> Bool { a.errno == b.errno }

    public var description: String {
        "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Stops the process with a fixed-prefix message: for broken runtime invariants, and for a
/// misuse that cannot throw (the message then names the misuse and what to do instead).
/// Never for anything a program's input can cause. Tests match on the prefix.
@usableFromInline
func spindleFatal(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("Spindle fatal: \(message)", file: file, line: line)
}

enum Sys {
    /// Writes a line to standard error for the runtime's own messages (warnings): best
    /// effort, whole or in pieces, never failing the caller.
    static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { b in
            var offset = 0
            while offset < b.count {
                let n = Glibc.write(2, b.baseAddress! + offset, b.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }

    enum Outcome<T> {
        case ok(T)
        case wouldBlock
    }

    /// Runs a raw call returning -1/errno with the policy above.
    @inline(__always)
    static func call<T: BinaryInteger>(_ name: StaticString, _ body: () -> T) throws(SysError) -> Outcome<T> {
        while true {
            let e: Int32
            #if DEBUG
            if let injected = FaultInjection.fault(name) {
                e = injected
            } else {
                let r = body()
                if r >= 0 { return .ok(r) }
                e = spindle_errno()
            }
            #else
            let r = body()
            if r >= 0 { return .ok(r) }
            e = spindle_errno()
            #endif
            switch e {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EBADF, EFAULT: spindleFatal("\(name) failed with \(String(cString: strerror(e))): a descriptor or pointer the runtime owns is invalid")
            default: throw SysError(errno: e, call: name)
            }
        }
    }

    /// Monotonic nanoseconds (CLOCK_MONOTONIC): the runtime's one time base.
    @inline(__always)
    static func nowNanos() -> Int64 { spindle_monotonic_ns() }

    /// Blocks the calling thread until the monotonic clock reaches `deadline` (ns).
    static func sleepThread(untilNanos deadline: Int64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while true {
            let r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil)
            if r == EINTR { continue }
            if r != 0 { spindleFatal("clock_nanosleep failed with errno \(r)") }
            return
        }
    }

    // MARK: memory mappings (fiber stacks)

    /// A private anonymous read-write mapping, committed lazily (MAP_NORESERVE), marked as
    /// a stack.
    static func mapStack(size: Int) throws(SysError) -> UnsafeMutableRawPointer {
        #if DEBUG
        if let e = FaultInjection.fault("mmap") { throw SysError(errno: e, call: "mmap") }
        #endif
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else {
            throw SysError(errno: errno, call: "mmap")
        }
        return p
    }

    /// Unmaps `[p, p + size)`. Not fatal: unmapping part of a mapping splits it, and at
    /// vm.max_map_count that fails with ENOMEM, which a workload can cause; the caller
    /// keeps or leaks the memory (FiberStack.swift).
    static func unmap(_ p: UnsafeMutableRawPointer, size: Int) throws(SysError) {
        if munmap(p, size) != 0 { throw SysError(errno: errno, call: "munmap") }
    }

    static func advise(_ p: UnsafeMutableRawPointer, size: Int, _ advice: Int32) throws(SysError) {
        if madvise(p, size, advice) != 0 { throw SysError(errno: errno, call: "madvise") }
    }

    static func protectNone(_ p: UnsafeMutableRawPointer, size: Int) throws(SysError) {
        if mprotect(p, size, PROT_NONE) != 0 { throw SysError(errno: errno, call: "mprotect") }
    }

    // MARK: epoll and eventfd (EpollBackend, SignalStream)

    static func epollCreate() throws(SysError) -> Int32 {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        if ep < 0 { throw SysError(errno: spindle_errno(), call: "epoll_create1") }
        return ep
    }

    /// A non-blocking, close-on-exec eventfd with a zero counter.
    static func eventFD() throws(SysError) -> Int32 {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if fd < 0 { throw SysError(errno: spindle_errno(), call: "eventfd") }
        return fd
    }

    /// Adds `fd` to epoll instance `ep` with `events`, reporting `token`.
    static func epollAdd(_ ep: Int32, _ fd: Int32, events: UInt32, token: UInt64) throws(SysError) {
        _ = try call("epoll_ctl") { spindle_epoll_ctl(ep, EPOLL_CTL_ADD, fd, events, token) }
    }

    /// Removes `fd`; failure means it was not registered, so there is nothing to undo.
    static func epollDelete(_ ep: Int32, _ fd: Int32) {
        _ = spindle_epoll_ctl(ep, EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for events (timeout < 0: forever); 0 on EINTR. Any other failure means the
    /// instance or the buffer the runtime owns is invalid.
    static func epollWait(_ ep: Int32, _ events: UnsafeMutablePointer<epoll_event>, capacity: Int32, timeoutNanos: Int64) -> Int {
        #if DEBUG
        // Only a wait that would block can be interrupted: a zero-timeout look never
        // sleeps, so the kernel never fails it with EINTR. Injecting it there let a worker
        // skip the look at its own backend that follows every wake-up and then block in
        // the shared reactor, whose nested edge for that backend another poller had
        // already taken: FaultInjectionTests hung about 1 run in 15, and 0 in 60 after
        // this (a real signal cannot do it: the look after an interrupted wait is real).
        if timeoutNanos != 0, FaultInjection.fault("epoll_wait") == EINTR { return 0 }
        #endif
        let n = spindle_epoll_wait(ep, events, capacity, timeoutNanos)
        if n >= 0 { return Int(n) }
        let e = spindle_errno()
        if e == EINTR { return 0 }
        spindleFatal("epoll_wait failed with errno \(e): an epoll instance the runtime owns is invalid")
    }

    /// Adds one to an eventfd's counter. EAGAIN (counter full) still leaves it readable, so
    /// a wake-up is never lost; nothing to report.
    static func eventFDSignal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }

    /// Reads an eventfd's counter back to zero (EAGAIN: it was zero).
    @discardableResult
    static func eventFDDrain(_ fd: Int32) -> UInt64 {
        var count: UInt64 = 0
        _ = Glibc.read(fd, &count, 8)
        return count
    }

    // MARK: signals (SignalStream; the handler is in Signals.c)

    /// Installs Spindle's handler for `signo`, which counts it and writes to `wakeFD`.
    static func watchSignal(_ signo: Int32, wakeFD: Int32) throws(SysError) {
        let r = spindle_signal_watch(signo, wakeFD)
        if r != 0 { throw SysError(errno: -r, call: "sigaction") }
    }

    /// Gives `signo` its previous disposition back; on return no handler writes to the
    /// descriptor given to `watchSignal` any more, so it may be closed. Restoring what
    /// sigaction itself handed out cannot fail for a workload reason.
    static func unwatchSignal(_ signo: Int32) {
        let r = spindle_signal_unwatch(signo)
        if r != 0 { spindleFatal("restoring the disposition of signal \(signo) failed with errno \(-r)") }
    }

    /// Blocks every signal in the calling thread (SignalReceiver's, at its start).
    static func blockAllSignals() {
        let r = spindle_signal_block_all()
        if r != 0 { spindleFatal("pthread_sigmask failed with errno \(-r)") }
    }

    /// Waits until `fd` is readable or a signal handler ran, letting through only the
    /// signals in `deliverable` (bit signo - 1) while it waits (ppoll).
    static func waitLettingSignalsThrough(_ deliverable: UInt64, orReadable fd: Int32) {
        let r = spindle_signal_wait(fd, deliverable)
        if r != 0 && r != -EINTR { spindleFatal("ppoll on the signal thread's eventfd failed with errno \(-r)") }
    }

    // MARK: futex

    /// Sleeps while `*word == expected`, at most `timeoutNanos` (< 0: forever). Spurious
    /// returns are allowed; callers re-check their condition. `injectable: false` for
    /// Lock, whose contended path must not re-enter fault injection (which takes a Lock).
    static func futexWait(_ word: UnsafeMutablePointer<UInt32>, expected: UInt32, timeoutNanos: Int64, injectable: Bool = true) {
        #if DEBUG
        if injectable && FaultInjection.fault("futex_wait") == EINTR { return } // a spurious wake-up
        #endif
        let r = spindle_futex_wait(word, expected, timeoutNanos)
        switch -r {
        case 0, EAGAIN, EINTR, ETIMEDOUT: return
        default: spindleFatal("futex wait failed with errno \(-r)")
        }
    }

    static func futexWake(_ word: UnsafeMutablePointer<UInt32>, count: Int32 = 1) {
        let r = spindle_futex_wake(word, count)
        if r < 0 { spindleFatal("futex wake failed with errno \(-r)") }
    }

    // MARK: processors

    /// CPUs this process may use: the affinity mask, further limited by a cgroup CPU quota
    /// (v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`), rounded up, at least 1.
    static func availableCPUs() -> Int {
        var n = Int(spindle_affinity_cpu_count())
        if n <= 0 { n = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
        if let quota = cgroupCPUQuota() { n = min(n, quota) }
        return max(1, n)
    }

    static func cgroupCPUQuota() -> Int? {
        if let text = readSmallFile("/sys/fs/cgroup/cpu.max") {
            return parseCgroupV2CPUMax(text)
        }
        if let q = readSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
           let p = readSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
           let quota = Int(q.trimmingWhitespace), let period = Int(p.trimmingWhitespace),
           quota > 0, period > 0 {
            return (quota + period - 1) / period
        }
        return nil
    }

    /// `"max 100000"` → nil, `"150000 100000"` → 2.
    static func parseCgroupV2CPUMax(_ text: String) -> Int? {
        let parts = text.trimmingWhitespace.split(separator: " ")
        guard parts.count == 2, let quota = Int(parts[0]), let period = Int(parts[1]),
              quota > 0, period > 0 else { return nil }
        return (quota + period - 1) / period
    }

    /// Reads a small text file (procfs, sysfs) in one go, or nil.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { buf in
                // SAFETY: buf is a live 4096-byte buffer for the duration of the call.
                try? Sys.call("read") { Glibc.read(fd, buf.baseAddress, buf.count) }
            }
            guard case .ok(let count)? = n, count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > 1 << 20 { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Creates (or truncates) `path` and writes `bytes` to it: the trace file and the like.
    static func writeWholeFile(_ path: String, _ bytes: [UInt8]) throws(SysError) {
        let opened = try call("open") { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        guard case .ok(let fd) = opened else { throw SysError(errno: EAGAIN, call: "open") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let wrote = try call("write") { () -> Int in
                bytes.withUnsafeBytes { buf in
                    // SAFETY: buf is alive for the call; the range stays inside it.
                    Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                }
            }
            guard case .ok(let n) = wrote, n > 0 else { throw SysError(errno: EIO, call: "write") }
            offset += n
        }
    }

    /// Resident set size of this process in bytes (from /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = readSmallFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// User+system CPU time of this process in nanoseconds.
    static func processCPUNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

extension String {
    var trimmingWhitespace: Substring {
        let s = self.drop { $0 == " " || $0 == "\n" || $0 == "\t" }
        var end = s.endIndex
        while end > s.startIndex, let c = s[s.index(before: end)...].first, c == " " || c == "\n" || c == "\t" {
            end = s.index(before: end)
        }
        return s[s.startIndex..<end]
    }
}

/// Facts about this process that `spindle bench` and the tests report: `package`, not
/// public API (the library's public surface is what programs need).
package enum ProcessStats {
    /// Resident set size in bytes (/proc/self/statm).
    package static func residentBytes() -> Int { Sys.residentBytes() }
    /// CPU time (user + system) consumed by this process, in nanoseconds.
    package static func cpuNanos() -> Int64 { Sys.processCPUNanos() }
    /// CPUs this process may use (affinity mask and cgroup quota).
    package static var availableCPUs: Int { Sys.availableCPUs() }
}

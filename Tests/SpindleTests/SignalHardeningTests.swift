// SignalStream against hostile process state: signals blocked in every thread's mask, the
// wake-up descriptor being number 0, and stop() racing the C handler (a late write must
// never land in a descriptor number the process has reused since).
@testable import Spindle
import CSpindle
import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct SignalHardeningTests {
    /// Before the fix the signal stayed pending forever: every thread blocked it, so no
    /// handler ran and the stream never woke (a server ignoring SIGTERM).
    @Test func aSignalBlockedInEveryThreadStillReachesTheStream() throws {
        let r = try runProbe("signal-blocked-mask")
        #expect(r.status == 0 && !r.signalled, "status \(r.status), stderr: \(r.stderr)")
        #expect(r.check("blocked-signal-delivered") == true, "\(r.stdout)")
        #expect(r.check("masks-restored") == true, "\(r.stdout)")
        #expect(r.check("blocked-again-after-stop") == true, "\(r.stdout)")
        #expect(r.stdout.hasSuffix("done\n"))
    }

    /// Before the fix the handler skipped descriptor 0 (`fd > 0`).
    @Test func descriptorZeroCanBeTheWakeDescriptor() throws {
        let r = try runProbe("signal-fd-zero")
        #expect(r.status == 0 && !r.signalled, "status \(r.status), stderr: \(r.stderr)")
        #expect(r.check("stream-owns-fd-0") == true, "\(r.stdout)")
        #expect(r.check("wakeup-written-to-fd-0") == true, "\(r.stdout)")
        #expect(r.check("signal-received") == true, "\(r.stdout)")
    }

    /// The hand-off itself, with a handler held inside its write(2): the wake descriptor
    /// is a full pipe, so the handler blocks until the test drains it. Unwatching must not
    /// return while the handler is inside (the caller would close, and the process could
    /// reuse, the number it is writing to); it returns once the write is done.
    @Test func unwatchWaitsForAHandlerInsideItsWrite() throws {
        let signo: Int32 = 41 // a real-time signal no other test uses
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        // Fill the pipe with its write end non-blocking, then make that end blocking again.
        #expect(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0)
        #expect(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0)
        var junk = [UInt8](repeating: 1, count: 4096)
        while write(fds[1], &junk, junk.count) > 0 {}
        #expect(fcntl(fds[1], F_SETFL, 0) == 0)
        #expect(spindle_signal_watch(signo, fds[1]) == 0)

        // A thread that lets `signo` through; the signal is sent to it alone.
        let target = Lock<(pthread_t, Int)?>(nil)
        let done = Flag()
        let receiver = try startThread {
            var only = sigset_t()
            sigemptyset(&only)
            sigaddset(&only, signo)
            pthread_sigmask(SIG_UNBLOCK, &only, nil)
            target.withLock { $0 = (pthread_self(), spindle_gettid()) }
            while !done.isSet { _ = poll(nil, 0, 10) }
        }
        let (thread, tid) = try #require(eventually { target.withLock { $0 } })
        #expect(pthread_kill(thread, signo) == 0)
        // The handler is inside write(2) once the thread's current syscall is write.
        let inWrite = eventually { () -> Bool? in
            guard let text = Sys.readSmallFile("/proc/self/task/\(tid)/syscall"),
                  let nr = text.split(separator: " ").first, Int(nr) == writeSyscall else { return nil }
            return true
        }
        try #require(inWrite == true, "the handler never blocked in its write")

        let unwatched = Flag()
        let unwatcher = try startThread {
            _ = spindle_signal_unwatch(signo)
            unwatched.set()
        }
        // A negative observation, so it needs a window: 200 ms in which unwatch must stay
        // inside (before the fix it returned at once).
        let window = Sys.nowNanos() + 200_000_000
        while !unwatched.isSet && Sys.nowNanos() < window { sched_yield() }
        #expect(!unwatched.isSet, "unwatch returned while a handler was still writing to the descriptor")
        // Drain: the handler's write completes, the handler returns, unwatch returns.
        var sink = [UInt8](repeating: 0, count: 8192)
        let returned = eventually { () -> Bool? in
            _ = read(fds[0], &sink, sink.count) // the read end is non-blocking
            return unwatched.isSet ? true : nil
        }
        #expect(returned == true, "unwatch never returned after the handler's write completed")
        done.set()
        receiver.join()
        unwatcher.join()
    }

    /// Many start/stop cycles while another thread raises the signal without pause: after
    /// each stop the stream's descriptor number is reused at once by an eventfd of the
    /// test's, which must never receive a write. (The race window is a few instructions
    /// wide; this is a stress check of the hand-off, not a deterministic reproduction.)
    @Test func startStopCyclesUnderASignalStormNeverWriteToAReusedDescriptor() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 2, name: "sigstorm"))
        defer { rt.shutdown() }
        // SIGWINCH: its default action is to ignore it, so between streams the storm is
        // harmless (one left pending too), and no other test watches it.
        let signal = UnixSignal(rawValue: SIGWINCH)

        let stopStorm = Flag()
        let storm = try startThread {
            while !stopStorm.isSet { kill(getpid(), signal.rawValue) }
        }
        var reused = 0, landed = 0
        // Each eventfd that got a stopped stream's number stays open for 8 more cycles, so
        // a late write would have long landed when it is read.
        var held: [Int32] = []
        func look(_ fd: Int32) {
            var count: UInt64 = 0
            if read(fd, &count, 8) == 8 { landed += 1 }
            close(fd)
        }
        for _ in 0..<(2_000 / testScale) {
            let stream = try SignalStream([signal], on: rt)
            let number = stream.io.fd
            stream.stop()
            let probe = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
            if probe == number {
                reused += 1
                held.append(probe)
            } else {
                close(probe)
            }
            if held.count > 8 { look(held.removeFirst()) }
        }
        held.forEach(look)
        stopStorm.set()
        storm.join()
        #expect(reused > 0, "the descriptor number was never reused: the check checked nothing")
        #expect(landed == 0, "\(landed) handler writes landed in a reused descriptor")
    }

    /// Before: a signal listed twice had the handler installed twice, the second time
    /// saving Spindle's own handler as "previous", so stop() left it installed for good.
    @Test func aSignalListedTwiceGetsItsDispositionBack() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "sigdup"))
        defer { rt.shutdown() }
        func handlerBytes() -> [UInt8] {
            var current = sigaction()
            sigaction(SIGUSR2, nil, &current)
            return withUnsafeBytes(of: current.__sigaction_handler) { Array($0) }
        }
        let before = handlerBytes()
        let s = try SignalStream([.user2, .user2], on: rt)
        #expect(handlerBytes() != before)
        s.stop()
        #expect(handlerBytes() == before, "stop() left Spindle's handler installed")
    }

    /// glibc keeps signals 32 and 33 for itself (thread cancellation, setxid): sigaction
    /// refuses them. Before, the stream was created anyway and never saw anything.
    @Test func signalsTheCLibraryReservesCannotBeWatched() throws {
        let rt = try Runtime(Runtime.Configuration(flavor: .multiThread, workerCount: 1, name: "sigres"))
        defer { rt.shutdown() }
        let reserved = UnixSignal(rawValue: 32)
        #expect(throws: SignalError.cannotWatch(reserved)) { try SignalStream([reserved], on: rt) }
        // Nothing was left half-watched: the usual signals still work afterwards.
        let s = try SignalStream([.user2], on: rt)
        s.stop()
    }
}

/// write(2)'s number, as /proc/<pid>/task/<tid>/syscall reports it.
#if arch(x86_64)
let writeSyscall = 1
#else
let writeSyscall = 64 // aarch64's generic table
#endif

/// Polls `probe` until it returns a value or `seconds` pass (then nil).
func eventually<T>(seconds: Int = 10, _ probe: () -> T?) -> T? {
    let giveUp = Sys.nowNanos() + Int64(seconds) * 1_000_000_000
    while true {
        if let v = probe() { return v }
        if Sys.nowNanos() >= giveUp { return nil }
        sched_yield()
    }
}

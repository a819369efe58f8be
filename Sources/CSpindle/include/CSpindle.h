// CSpindle: the little C the runtime needs. UNSAFE FILE: raw syscalls and raw memory.
//
// Why C at all: Glibc's Swift module does not expose futex(2), epoll or eventfd, and a
// `__thread` variable is the cheapest thread-local slot there is (one %fs-relative load,
// inlined into Swift through the clang importer). Everything here is a thin wrapper with
// no policy: the error policy (EINTR/EAGAIN/EBADF) lives in Swift, in Sys.swift.
#ifndef CSPINDLE_H
#define CSPINDLE_H

#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <linux/futex.h>

// ---- thread-local slot -------------------------------------------------------------
// Initial-exec TLS model: one %fs-relative access with no call. The default model for
// position-independent code calls __tls_get_addr on every access (measured: ~10% of a
// fiber switch). Valid because Spindle is linked into the program (SwiftPM links
// libraries statically) or loaded with it, never dlopen'ed late.
#define SPINDLE_TLS __thread __attribute__((tls_model("initial-exec")))
// The worker (or current-thread driver) that runs on this thread, or NULL. Written only by
// the thread itself, so plain loads and stores are race-free.
extern SPINDLE_TLS void *_Nullable spindle_tls_worker;

static inline void *_Nullable spindle_current_worker(void) { return spindle_tls_worker; }
static inline void spindle_set_current_worker(void *_Nullable w) { spindle_tls_worker = w; }

// ---- futex words -------------------------------------------------------------------
// A futex word lives in memory allocated by Swift (UnsafeMutablePointer<UInt32>); these
// are the atomic operations on it, sequentially consistent so the park/unpark protocol
// can reason about one total order. Returns follow the C11 conventions.
static inline uint32_t spindle_word_load(const uint32_t *_Nonnull w) {
    return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}
static inline void spindle_word_store(uint32_t *_Nonnull w, uint32_t v) {
    __atomic_store_n(w, v, __ATOMIC_SEQ_CST);
}
static inline uint32_t spindle_word_exchange(uint32_t *_Nonnull w, uint32_t v) {
    return __atomic_exchange_n(w, v, __ATOMIC_SEQ_CST);
}
static inline int spindle_word_cas(uint32_t *_Nonnull w, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(w, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// Lock words (Spindle's Lock): 0 free, 1 held, 2 held and someone may sleep on it.
// Acquire on taking, release on giving back (the pairs the thread sanitizer follows).
static inline int spindle_lock_try(uint32_t *_Nonnull w) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(w, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
static inline uint32_t spindle_lock_take_contended(uint32_t *_Nonnull w) {
    return __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
}
static inline uint32_t spindle_lock_give_back(uint32_t *_Nonnull w) {
    return __atomic_exchange_n(w, 0, __ATOMIC_RELEASE);
}
// futex(FUTEX_WAIT_PRIVATE): sleeps while *w == expected. timeout_ns < 0 waits forever.
// Returns 0 or -errno (EAGAIN: the word had changed; ETIMEDOUT; EINTR).
int spindle_futex_wait(uint32_t *_Nonnull w, uint32_t expected, int64_t timeout_ns);
// futex(FUTEX_WAKE_PRIVATE): wakes up to n sleepers. Returns the number woken or -errno.
int spindle_futex_wake(uint32_t *_Nonnull w, int n);

// ---- processor and time facts --------------------------------------------------------
// CPUs in this thread's affinity mask (sched_getaffinity), or -errno.
int spindle_affinity_cpu_count(void);
// CLOCK_MONOTONIC in nanoseconds (vDSO, ~20 ns).
static inline int64_t spindle_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
// Sets the calling thread's timer slack (how late the kernel may end its timed waits so
// it can batch wake-ups; Linux's default is 50 µs). Returns 0 or -errno.
int spindle_set_timer_slack(unsigned long ns);
// Names the calling thread (at most 15 bytes are kept).
int spindle_set_thread_name(const char *_Nonnull name);
static inline int spindle_errno(void) { return errno; }
static inline long spindle_gettid(void) { return syscall(SYS_gettid); }

// A compiler barrier plus the CPU's spin-wait hint (PAUSE / YIELD).
static inline void spindle_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}


// ---- I/O (Net.c) ----------------------------------------------------------------------
// Thin wrappers so Swift need not spell glibc's socket-type enums and packed structs.
// Each returns the syscall's result (-1 with errno set on failure), no policy.
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>

// epoll_pwait2 with a nanosecond timeout (timeout_ns < 0: forever), falling back to
// epoll_wait with the timeout rounded up to milliseconds where the kernel lacks it.
int spindle_epoll_wait(int epfd, struct epoll_event *_Nonnull events, int max, int64_t timeout_ns);
// epoll_ctl ADD/MOD/DEL with events and a 64-bit token.
int spindle_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
// The token and event bits of one returned event (the struct is packed on x86_64).
static inline uint64_t spindle_epoll_event_token(const struct epoll_event *_Nonnull e) { return e->data.u64; }
static inline uint32_t spindle_epoll_event_bits(const struct epoll_event *_Nonnull e) { return e->events; }
// A non-blocking, close-on-exec socket.
int spindle_socket(int domain, int type);
// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC.
int spindle_accept(int fd, struct sockaddr *_Nullable addr, socklen_t *_Nullable len);
static inline int spindle_sock_stream(void) { return SOCK_STREAM; }
static inline int spindle_sock_dgram(void) { return SOCK_DGRAM; }
// send() that never raises SIGPIPE (a write to a reset peer becomes EPIPE).
static inline ssize_t spindle_send(int fd, const void *_Nonnull buf, size_t len) {
    return send(fd, buf, len, MSG_NOSIGNAL);
}
static inline ssize_t spindle_sendto(int fd, const void *_Nonnull buf, size_t len, const struct sockaddr *_Nullable addr, socklen_t alen) {
    return sendto(fd, buf, len, MSG_NOSIGNAL, addr, alen);
}
// SO_ERROR of a socket (a finished non-blocking connect's result), or -errno.
int spindle_socket_error(int fd);
int spindle_set_int_option(int fd, int level, int name, int value);
// Bytes queued for reading on a socket (ioctl FIONREAD), or -errno.
int spindle_socket_queued(int fd);

// ---- signals (Signals.c) ---------------------------------------------------------------
// Installs a handler for `signo` that records it and writes to `wake_fd` (an eventfd, any
// number from 0), both async-signal-safe. Returns 0 or -errno (EINVAL for a signal the
// C library keeps for itself, 32 and 33).
int spindle_signal_watch(int signo, int wake_fd);
// Restores the disposition `signo` had before spindle_signal_watch, and returns only once
// no handler can still write to `wake_fd` (so the caller may close it). 0 or -errno.
int spindle_signal_unwatch(int signo);
// How many times `signo` arrived since the last call (and resets the count).
uint32_t spindle_signal_take(int signo);
// Blocks every signal in the calling thread. Returns 0 or -errno.
int spindle_signal_block_all(void);
// Waits until `fd` is readable or a handler has run (-EINTR), letting through only the
// signals whose bit (signo - 1) is set in `deliverable`, and only during the wait.
// Returns 0 or -errno.
int spindle_signal_wait(int fd, uint64_t deliverable);

// ---- stall backtraces (Stall.c) ----
// The real-time signal the stall backtraces use (installed on first call), or -errno.
int spindle_stall_signal(void);
// Interrupts `thread` (a pthread_t) and walks its frame pointers from where it was: up to
// `max` return addresses into `out`, innermost first. Returns the count, or -errno
// (-ETIMEDOUT if the thread did not take the signal within `timeout_ns`). `fiber_name`
// (optional) gets the name of the fiber it was running: "" if none, "?" if unnamed.
int spindle_stall_capture(uint64_t thread, uintptr_t *_Nonnull out, int max, int64_t timeout_ns,
                          char *_Nullable fiber_name, size_t name_cap);
// A thread's signal mask, saved.
typedef struct { sigset_t set; } spindle_sigmask;
// The return addresses of a suspended fiber's stack (its resume address first), walked
// from the frame its context switch left (frame pointers; reads that fail end the walk).
// The caller makes sure the fiber stays suspended meanwhile (its home thread). Returns how
// many were written.
struct spindle_fiber_context;
int spindle_fiber_backtrace(const struct spindle_fiber_context *_Nonnull ctx, uintptr_t *_Nonnull out, int max);
// Lets the stall signal through in the calling thread, saving its mask in `old`: threads
// spawned meanwhile inherit the unblocked mask (the spawner may have inherited one that
// blocks it, from whatever started the process). 0 or -errno.
int spindle_stall_unblock_saving(spindle_sigmask *_Nonnull old);
// Puts back a mask saved by spindle_stall_unblock_saving.
void spindle_sigmask_restore(const spindle_sigmask *_Nonnull old);
// The function holding `address` (dladdr, then the file's own symbol table for functions
// it does not export) copied into `name` (empty if unknown), the file holding it, and the
// function's (or the file's) start. Returns 0 if no loaded object holds it. Not
// async-signal-safe.
int spindle_symbolize(uintptr_t address, char *_Nonnull name, size_t cap, const char *_Nullable *_Nonnull file,
                      uintptr_t *_Nonnull start);
// Swift's demangler (libswiftCore): a malloc'd, NUL-terminated readable name, or NULL.
char *_Nullable swift_demangle(const char *_Nonnull mangled, size_t length, char *_Nullable out,
                               size_t *_Nullable outLength, uint32_t flags);

#include "CSpindleFiber.h"
#include "CSpindleTrace.h"

#endif

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

#include "CSpindleFiber.h"

#endif

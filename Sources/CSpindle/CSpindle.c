// UNSAFE FILE: raw syscalls. See CSpindle.h for why these live in C.
#define _GNU_SOURCE
#include "CSpindle.h"
#include <sched.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>

int spindle_set_timer_slack(unsigned long ns) {
    return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) == 0 ? 0 : -errno;
}

SPINDLE_TLS void *spindle_tls_worker = NULL;

int spindle_futex_wait(uint32_t *w, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    // SAFETY: w points to a live, 4-byte-aligned word owned by a Parker for as long as any
    // thread can wait on it (the Parker outlives its worker thread).
    long r = syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return r == 0 ? 0 : -errno;
}

int spindle_futex_wake(uint32_t *w, int n) {
    long r = syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    return r >= 0 ? (int)r : -errno;
}

int spindle_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -errno;
    return CPU_COUNT(&set);
}

int spindle_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, 15);
    buf[15] = 0;
    return pthread_setname_np(pthread_self(), buf);
}

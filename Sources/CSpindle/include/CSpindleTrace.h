// The trace recorder's rings (Trace.c). UNSAFE FILE: raw memory shared between a ring's
// one writer and the exporter.
//
// Every thread that records gets its own ring of fixed-size events (32 bytes: a
// timestamp, a kind and three words), taken from a registry on its first event and handed
// back when the thread ends. Its writer is that thread alone: no lock and no allocation on
// the hot path, just four relaxed stores and a release store of `head`. The exporter reads
// a ring while its writer goes on: it loads `head` (acquire), copies the events, fences
// (acquire), loads `head` again, and keeps only those the writer cannot have overwritten
// meanwhile; the writer fences (release) between publishing one event's `head` and
// writing the next event's words. Every access is atomic, so there is no data race.
//
// Off costs one relaxed load of `spindle_trace_enabled` per recording point.
#ifndef CSPINDLE_TRACE_H
#define CSPINDLE_TRACE_H

#include <stdint.h>
#include <time.h>

typedef struct spindle_trace_ring {
    uint64_t head;                 // events ever written (atomic; the writer's)
    uint64_t mask;                 // capacity - 1 (capacity is a power of two)
    uint64_t *_Nonnull slots;      // capacity * 4 words
    struct spindle_trace_ring *_Nullable next;  // registry list (under its lock)
    int64_t tid;                   // the kernel thread id of its current (or last) writer
    int32_t lane;                  // worker index + 1, 0 for a thread that is no worker
    int32_t in_use;                // a thread owns it (atomic)
    char label[32];                // the thread's name when it took the ring
    // The thread before: a reused ring's events below `owner_since` are that thread's.
    uint64_t owner_since;
    int64_t previous_tid;
    int32_t previous_lane;
    char previous_label[32];
} spindle_trace_ring;

// 1 while recording (relaxed loads; written by spindle_trace_set_enabled).
extern int spindle_trace_enabled;
// 1 when events carry raw TSC counts (the kernel's own clocksource is the TSC, so it is
// invariant and synchronized across CPUs): a third of clock_gettime's cost. The exporter
// turns them into CLOCK_MONOTONIC nanoseconds (spindle_trace_to_ns).
extern int spindle_trace_use_tsc;

static inline uint64_t spindle_trace_clock(void) {
#if defined(__x86_64__)
    if (__builtin_expect(__atomic_load_n(&spindle_trace_use_tsc, __ATOMIC_RELAXED), 1)) {
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
    }
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
// The calling thread's ring, NULL until its first event.
extern __thread __attribute__((tls_model("initial-exec"))) spindle_trace_ring *_Nullable spindle_tls_trace_ring;
// The coroutine running on this thread (a job or fiber id), 0 between them: the waker of
// anything woken from here. Written and read by the thread itself.
extern __thread __attribute__((tls_model("initial-exec"))) uint64_t spindle_tls_trace_current;

static inline int spindle_trace_is_on(void) {
    return __atomic_load_n(&spindle_trace_enabled, __ATOMIC_RELAXED);
}

// Slow path of an event: the calling thread's ring (a free one from the registry, or a new
// one of the configured capacity). NULL if memory ran out (the event is dropped).
spindle_trace_ring *_Nullable spindle_trace_take_ring(void);

// Records one event on the calling thread's ring. `c` keeps its low 56 bits.
static inline void spindle_trace_emit(uint32_t kind, uint64_t a, uint64_t b, uint64_t c) {
    spindle_trace_ring *r = spindle_tls_trace_ring;
    if (__builtin_expect(r == 0, 0)) {
        r = spindle_trace_take_ring();
        if (r == 0) return;
    }
    uint64_t now = spindle_trace_clock();
    uint64_t h = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
    // The slot stores below must not become visible before the previous event's `head`
    // store: an exporter that sees any of them then also sees head >= h, and drops the
    // old event it was copying from this slot (its acquire fence pairs with this one).
    __atomic_thread_fence(__ATOMIC_RELEASE);
    uint64_t *s = r->slots + (h & r->mask) * 4;
    __atomic_store_n(&s[0], now, __ATOMIC_RELAXED);
    __atomic_store_n(&s[1], (uint64_t)(kind & 0xff) | (c << 8), __ATOMIC_RELAXED);
    __atomic_store_n(&s[2], a, __ATOMIC_RELAXED);
    __atomic_store_n(&s[3], b, __ATOMIC_RELAXED);
    __atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
}

// The calling thread's worker index + 1 (0: not a worker): the lane of the ring it takes.
extern __thread __attribute__((tls_model("initial-exec"))) int32_t spindle_tls_trace_lane;
// Sets it (0: none), and the lane of the thread's ring if it has one already.
void spindle_trace_set_thread_lane(int32_t lane);

// Recording, on a thread running `id`: 1 the first time this thread sees `id` lately (a
// direct-mapped cache of 64 ids), so the caller looks up its name once, not per event.
extern __thread __attribute__((tls_model("initial-exec"))) uint64_t spindle_tls_trace_named[64];
// Bumped by every start of a recording (names are forgotten then): part of the key.
extern uint64_t spindle_trace_epoch;
static inline int spindle_trace_first_sight(uint64_t id) {
    uint64_t key = id ^ (__atomic_load_n(&spindle_trace_epoch, __ATOMIC_RELAXED) << 56);
    uint64_t *slot = &spindle_tls_trace_named[(id >> 4) & 63];
    if (*slot == key) return 0;
    *slot = key;
    return 1;
}
// Swift's runtime (libswift_Concurrency): the name of the task running on this thread, if
// it was given one (Task(name:)); NULL otherwise.
const char *_Nullable swift_task_getCurrentTaskName(void);

static inline uint64_t spindle_trace_current(void) { return spindle_tls_trace_current; }
static inline void spindle_trace_set_current(uint64_t id) { spindle_tls_trace_current = id; }

// Turns recording on or off; `ring_events` (a power of two, at least 1024) is the capacity
// of rings made from now on (existing rings keep theirs).
void spindle_trace_set_enabled(int on, uint64_t ring_events);

// How the exporter turns stamps into CLOCK_MONOTONIC nanoseconds: ns = ns0 + (stamp -
// tsc0) * rate, from the (TSC, clock) pair taken when recording started and a pair taken
// now; with the TSC unused, tsc0 = ns0 = 0 and rate = 1 (stamps are nanoseconds already).
void spindle_trace_clock_mapping(uint64_t *_Nonnull tsc0, int64_t *_Nonnull ns0, double *_Nonnull rate);

// The exporter's walk: calls `visit` for each ring with a consistent copy of its
// surviving events (oldest first), `count` events of 4 words each, and how many it lost
// to wrapping. The registry lock is held during the walk (rings are never freed).
typedef void (*spindle_trace_visitor)(void *_Nullable context, const spindle_trace_ring *_Nonnull ring,
                                      const uint64_t *_Nonnull events, uint64_t count, uint64_t lost);
void spindle_trace_visit(void *_Nullable context, spindle_trace_visitor _Nonnull visit);

#endif

// The trace recorder's ring registry (CSpindleTrace.h has the design). UNSAFE FILE: raw
// memory, a thread-exit destructor.
//
// Rings are never freed: a thread that ends hands its ring back (the pthread key's
// destructor clears `in_use`) and the next thread that records takes it over, events and
// all, so a trace still shows what ended threads did (blocking-pool threads come and go).
// The registry lock is taken once per thread (its first event) and by the exporter.
#define _GNU_SOURCE
#include "CSpindle.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int spindle_trace_enabled;
int spindle_trace_use_tsc;
uint64_t spindle_trace_epoch;
// (TSC, ns) when recording started.
static uint64_t cal_tsc0;
static int64_t cal_ns0;
SPINDLE_TLS spindle_trace_ring *spindle_tls_trace_ring;
SPINDLE_TLS uint64_t spindle_tls_trace_current;
SPINDLE_TLS int32_t spindle_tls_trace_lane;
SPINDLE_TLS uint64_t spindle_tls_trace_named[64];

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static spindle_trace_ring *registry;
static uint64_t ring_events = 1u << 15;
static pthread_key_t ring_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void give_back(void *ring) {
    // An event from a later thread-exit destructor must not write a ring another thread
    // may own by then: it would take a fresh ring (and give that back) instead.
    spindle_tls_trace_ring = NULL;
    __atomic_store_n(&((spindle_trace_ring *)ring)->in_use, 0, __ATOMIC_RELEASE);
}

static void make_key(void) { pthread_key_create(&ring_key, give_back); }

spindle_trace_ring *spindle_trace_take_ring(void) {
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&registry_lock);
    spindle_trace_ring *r = registry;
    // A free ring of the current capacity first (a thread that ended gave it back).
    while (r && !(__atomic_load_n(&r->in_use, __ATOMIC_ACQUIRE) == 0 && r->mask + 1 == ring_events)) r = r->next;
    if (!r) {
        r = calloc(1, sizeof *r);
        uint64_t *slots = r ? calloc(ring_events, 4 * sizeof(uint64_t)) : NULL;
        if (!slots) {
            free(r);
            pthread_mutex_unlock(&registry_lock);
            return NULL;
        }
        r->slots = slots;
        r->mask = ring_events - 1;
        r->next = registry;
        registry = r;
    }
    __atomic_store_n(&r->in_use, 1, __ATOMIC_RELAXED);
    // A reused ring remembers its last owner, for the events that are still that one's.
    uint64_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
    if (head > 0) {
        r->owner_since = head;
        r->previous_tid = r->tid;
        r->previous_lane = r->lane;
        memcpy(r->previous_label, r->label, sizeof r->label);
    }
    r->tid = syscall(SYS_gettid);
    r->lane = spindle_tls_trace_lane;
    memset(r->label, 0, sizeof r->label);
    pthread_getname_np(pthread_self(), r->label, sizeof r->label - 1);
    pthread_mutex_unlock(&registry_lock);
    pthread_setspecific(ring_key, r);
    spindle_tls_trace_ring = r;
    return r;
}

static uint64_t read_tsc(void) {
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}

// The kernel trusts the TSC as its clock (invariant, synchronized): then so can we.
static int tsc_is_the_clocksource(void) {
#if defined(__x86_64__)
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (!f) return 0;
    char buf[32] = {0};
    int ok = fgets(buf, sizeof buf, f) != NULL && strncmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == 0);
    fclose(f);
    return ok;
#else
    return 0;
#endif
}

void spindle_trace_clock_mapping(uint64_t *tsc0, int64_t *ns0, double *rate) {
    pthread_mutex_lock(&registry_lock);
    if (!__atomic_load_n(&spindle_trace_use_tsc, __ATOMIC_RELAXED)) {
        *tsc0 = 0; *ns0 = 0; *rate = 1;
    } else {
        uint64_t t1 = read_tsc();
        int64_t n1 = spindle_monotonic_ns();
        *tsc0 = cal_tsc0;
        *ns0 = cal_ns0;
        *rate = t1 > cal_tsc0 ? (double)(n1 - cal_ns0) / (double)(t1 - cal_tsc0) : 1;
    }
    pthread_mutex_unlock(&registry_lock);
}

void spindle_trace_set_thread_lane(int32_t lane) {
    spindle_tls_trace_lane = lane;
    spindle_trace_ring *r = spindle_tls_trace_ring;
    if (!r) return;
    pthread_mutex_lock(&registry_lock);
    r->lane = lane;
    pthread_mutex_unlock(&registry_lock);
}

void spindle_trace_set_enabled(int on, uint64_t events) {
    pthread_mutex_lock(&registry_lock);
    if (events >= 1024 && (events & (events - 1)) == 0) ring_events = events;
    if (on) {
        __atomic_fetch_add(&spindle_trace_epoch, 1, __ATOMIC_RELAXED);
        // One clock for a whole recording: chosen at its start, with its first pair.
        int tsc = tsc_is_the_clocksource();
        __atomic_store_n(&spindle_trace_use_tsc, tsc, __ATOMIC_RELAXED);
        cal_tsc0 = read_tsc();
        cal_ns0 = spindle_monotonic_ns();
    }
    pthread_mutex_unlock(&registry_lock);
    __atomic_store_n(&spindle_trace_enabled, on ? 1 : 0, __ATOMIC_RELAXED);
}

void spindle_trace_visit(void *context, spindle_trace_visitor visit) {
    pthread_mutex_lock(&registry_lock);
    uint64_t *copy = NULL;
    uint64_t copy_cap = 0;
    for (spindle_trace_ring *r = registry; r; r = r->next) {
        uint64_t cap = r->mask + 1;
        uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        uint64_t first = head > cap ? head - cap : 0;
        uint64_t n = head - first;
        if (n > copy_cap) {
            free(copy);
            copy = malloc(n * 4 * sizeof(uint64_t));
            copy_cap = copy ? n : 0;
            if (!copy) break;
        }
        for (uint64_t i = 0; i < n; i++) {
            const uint64_t *s = r->slots + ((first + i) & r->mask) * 4;
            for (int w = 0; w < 4; w++) copy[i * 4 + w] = __atomic_load_n(&s[w], __ATOMIC_RELAXED);
        }
        // The writer went on meanwhile: index i survived only if i > after - cap (the
        // writer may be filling slot `after`, which is index after - cap's slot). The
        // fence pairs with the writer's: a copied word of a newer event implies a newer
        // `head` here.
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint64_t after = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        uint64_t keep_from = after >= cap ? after - cap + 1 : 0;
        uint64_t skip = keep_from > first ? keep_from - first : 0;
        if (skip > n) skip = n;
        visit(context, r, copy + skip * 4, n - skip, first + skip);
    }
    free(copy);
    pthread_mutex_unlock(&registry_lock);
}

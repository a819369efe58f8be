// AllocCounter: counts heap allocations for `spindle bench` (allocs per operation).
//
// UNSAFE FILE: it replaces the C allocator's entry points for the whole `spindle` process.
// The executable defines malloc, calloc, realloc, free, posix_memalign, aligned_alloc,
// memalign, valloc and pvalloc; the dynamic linker binds every library's calls (the Swift
// runtime's, Foundation's, glibc's own) to these definitions, because symbols of the main
// executable come first in the global lookup scope. Each one forwards to glibc's exported
// __libc_* implementation, so the heap itself is glibc's, unchanged.
//
// Counting is off unless SPINDLE_BENCH_COUNT_ALLOCS=1 is in the environment when the
// process starts (read once, by a constructor). Off, an allocation pays one predictable
// branch; on, one relaxed atomic add on a shared counter, which contends between threads,
// so `spindle bench` takes timings from runs with counting off and the count from one
// extra run with it on.
//
// Under AddressSanitizer or ThreadSanitizer the sanitizer owns malloc: nothing is
// defined here and spindle_bench_alloc_count() returns -1 (unknown).
#include "CSpindleBench.h"
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SPINDLE_NO_ALLOC_COUNTER 1
#endif
#endif

#ifndef SPINDLE_NO_ALLOC_COUNTER

// glibc's implementations (exported by libc.so.6 on every glibc architecture).
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

// SAFETY: written once by the constructor before main (single-threaded), read-only after.
static int counting = 0;
// SAFETY: only touched with atomic operations.
static _Atomic int64_t allocations = 0;

__attribute__((constructor)) static void spindle_alloc_counter_init(void) {
    const char *v = getenv("SPINDLE_BENCH_COUNT_ALLOCS");
    counting = v != NULL && v[0] == '1';
}

static inline void count_one(void) {
    if (__builtin_expect(counting, 0)) {
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    }
}

// SAFETY (all below): same contracts as the C standard's functions; each forwards its
// arguments unchanged to glibc's implementation, which checks them.
void *malloc(size_t size) { count_one(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { count_one(); return __libc_calloc(count, size); }
void *realloc(void *ptr, size_t size) { count_one(); return __libc_realloc(ptr, size); }
void free(void *ptr) { __libc_free(ptr); }
void *memalign(size_t alignment, size_t size) { count_one(); return __libc_memalign(alignment, size); }
void *valloc(size_t size) { count_one(); return __libc_valloc(size); }
void *pvalloc(size_t size) { count_one(); return __libc_pvalloc(size); }

void *aligned_alloc(size_t alignment, size_t size) {
    count_one();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    // POSIX: a power of two and a multiple of sizeof(void *), else EINVAL (glibc's check).
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) {
        return EINVAL;
    }
    count_one();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

int64_t spindle_bench_alloc_count(void) {
    return counting ? atomic_load_explicit(&allocations, memory_order_relaxed) : -1;
}

void spindle_bench_allocate_for_test(int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        // volatile: the compiler may not pair and remove a malloc/free it can see.
        void *volatile p = malloc(24);
        free(p);
    }
}

#else

int64_t spindle_bench_alloc_count(void) { return -1; }

void spindle_bench_allocate_for_test(int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        void *volatile p = malloc(24);
        free(p);
    }
}

#endif

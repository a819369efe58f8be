// UNSAFE FILE: raw stacks, raw context switches, raw futexes. Benchmark code only.
#define _GNU_SOURCE
#include "CSpindleBench.h"
#include "CSpindle.h"
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>

// The assembly switch (hidden, but linked into the same executable).
extern void spindle_switch(void **save_sp, void *load_sp);

// ---- bare switch ----------------------------------------------------------------------
static void *main_sp, *fiber_sp;
static volatile int64_t raw_left;

static void raw_body(void *arg) {
    (void)arg;
    for (;;) {
        raw_left--;
        spindle_switch(&fiber_sp, main_sp);
    }
}

static void raw_entry(void *arg) { raw_body(arg); }

double spindle_bench_raw_switch(int64_t iterations) {
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return -1;
    // Build the first frame with the library's own initializer, then switch by hand.
    spindle_fiber_context ctx = {0};
    spindle_fiber_init(&ctx, stack, size, raw_entry, NULL);
    fiber_sp = ctx.sp;
    raw_left = 1000;
    while (raw_left > 0) spindle_switch(&main_sp, fiber_sp);   // warm-up
    raw_left = iterations;
    int64_t t0 = spindle_monotonic_ns();
    while (raw_left > 0) spindle_switch(&main_sp, fiber_sp);
    int64_t dt = spindle_monotonic_ns() - t0;
    // The fiber is abandoned suspended; its stack holds nothing that needs releasing.
    munmap(stack, size);
    return (double)dt / (double)(iterations * 2);
}

// ---- through the wrapper -------------------------------------------------------------
static volatile int64_t wrapped_left;

static void wrapped_entry(void *arg) {
    spindle_fiber_context *ctx = arg;
    while (wrapped_left > 0) {
        wrapped_left--;
        spindle_fiber_suspend(ctx);
    }
}

double spindle_bench_wrapped_switch(int64_t iterations) {
    size_t size = 64 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return -1;
    spindle_fiber_context *ctx = calloc(1, sizeof *ctx);
    spindle_fiber_init(ctx, stack, size, wrapped_entry, ctx);
    wrapped_left = iterations + 1000;
    for (int i = 0; i < 1000; i++) spindle_fiber_resume(ctx);   // warm-up
    int64_t t0 = spindle_monotonic_ns();
    for (int64_t i = 0; i < iterations; i++) spindle_fiber_resume(ctx);
    int64_t dt = spindle_monotonic_ns() - t0;
    spindle_fiber_resume(ctx);   // lets the entry return: the fiber ends
    spindle_fiber_destroy(ctx);
    free(ctx);
    munmap(stack, size);
    return (double)dt / (double)(iterations * 2);
}

// ---- two threads -----------------------------------------------------------------------
// One futex word per direction: 0 = wait, 1 = go.
static uint32_t to_b, to_a;
static int64_t thread_rounds;

static void wait_for(uint32_t *w) {
    while (spindle_word_exchange(w, 0) == 0) spindle_futex_wait(w, 0, -1);
}

static void signal_to(uint32_t *w) {
    spindle_word_store(w, 1);
    spindle_futex_wake(w, 1);
}

static void *thread_b(void *arg) {
    (void)arg;
    for (int64_t i = 0; i < thread_rounds; i++) {
        wait_for(&to_b);
        signal_to(&to_a);
    }
    return NULL;
}

double spindle_bench_thread_switch(int64_t iterations, int same_cpu) {
    thread_rounds = iterations / 2 + 100;
    to_a = to_b = 0;
    cpu_set_t saved;
    sched_getaffinity(0, sizeof saved, &saved);
    if (same_cpu) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        sched_setaffinity(0, sizeof one, &one);   // the new thread inherits it
    }
    pthread_t b;
    pthread_create(&b, NULL, thread_b, NULL);
    for (int i = 0; i < 100; i++) { signal_to(&to_b); wait_for(&to_a); }   // warm-up
    int64_t rounds = iterations / 2;
    int64_t t0 = spindle_monotonic_ns();
    for (int64_t i = 0; i < rounds; i++) { signal_to(&to_b); wait_for(&to_a); }
    int64_t dt = spindle_monotonic_ns() - t0;
    pthread_join(b, NULL);
    sched_setaffinity(0, sizeof saved, &saved);
    return (double)dt / (double)(rounds * 2);
}

#include <malloc.h>
void spindle_bench_trim_heap(void) { malloc_trim(0); }

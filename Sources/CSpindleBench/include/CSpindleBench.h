// CSpindleBench: C loops for `spindle bench` that Swift cannot express without adding its
// own overhead: the bare context switch, and a futex ping-pong between two OS threads.
#ifndef CSPINDLE_BENCH_H
#define CSPINDLE_BENCH_H
#include <stdint.h>

/// ns per one-way switch of two contexts ping-ponging with the bare assembly switch
/// (no exclusivity swap, no sanitizer hooks).
double spindle_bench_raw_switch(int64_t iterations);

/// ns per one-way switch through spindle_fiber_resume/suspend (the assembly switch plus
/// Swift's exclusivity-state swap on every switch).
double spindle_bench_wrapped_switch(int64_t iterations);

/// ns per one-way hand-off between two OS threads ping-ponging through futexes.
/// `same_cpu`: pin both threads to the CPU the caller runs on.
double spindle_bench_thread_switch(int64_t iterations, int same_cpu);

/// Returns free heap memory to the kernel (malloc_trim(0)), so RSS shows what is in use.
void spindle_bench_trim_heap(void);

/// Heap allocations counted since the process started, or -1 when counting is off
/// (SPINDLE_BENCH_COUNT_ALLOCS=1 turns it on) or compiled out (under a sanitizer).
/// See AllocCounter.c.
int64_t spindle_bench_alloc_count(void);

/// Makes exactly `count` malloc calls (and frees them): the counter's self-test.
void spindle_bench_allocate_for_test(int64_t count);
#endif

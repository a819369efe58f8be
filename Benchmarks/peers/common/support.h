// Shared by the C and Boost peers of `spindle bench --peers`: the measured window
// (CLOCK_MONOTONIC time, heap allocations counted by support.c's malloc interposer,
// context switches from getrusage), the iteration scaling, the one-line report and the
// command line (`PEER --list`, `PEER ROW SYSTEM [--scale S]`).
#ifndef PEER_SUPPORT_H
#define PEER_SUPPORT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct peer_window {
    uint64_t allocs, ctxsw;   // counts at begin, deltas after end
    int64_t t0, elapsed_ns;
};

void peer_begin(struct peer_window *w);
void peer_end(struct peer_window *w);
// Prints `NS_PER_OP ALLOCS_PER_OP CTXSW_PER_OP` for a closed window over `ops`.
void peer_report_ns(const struct peer_window *w, double ops);
// base × scale, at least 1,000.
long peer_iters(long base, double scale);
void peer_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

struct peer_row {
    const char *row, *system;
    void (*run)(double scale);   // does one measurement and reports it
};
int peer_main(int argc, char **argv, const struct peer_row *rows, size_t count);

#ifdef __cplusplus
}
#endif
#endif

// See support.h. Also interposes glibc's allocator (malloc, calloc, realloc,
// posix_memalign, aligned_alloc, memalign) to count every heap allocation made by the
// program and its libraries (C++'s operator new calls malloc), forwarding each to
// glibc's own __libc_* entry points so that free() stays glibc's.
#define _GNU_SOURCE
#include "support.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static uint64_t allocations;
static inline void counted(void) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); }

void *malloc(size_t size) { counted(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { counted(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { counted(); return __libc_realloc(p, size); }
void *memalign(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    counted();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

static uint64_t ctx_switches(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) peer_fail("getrusage: %s", strerror(errno));
    return (uint64_t)(ru.ru_nvcsw + ru.ru_nivcsw);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void peer_begin(struct peer_window *w) {
    w->allocs = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    w->ctxsw = ctx_switches();
    w->t0 = now_ns();
}

void peer_end(struct peer_window *w) {
    w->elapsed_ns = now_ns() - w->t0;
    w->allocs = __atomic_load_n(&allocations, __ATOMIC_RELAXED) - w->allocs;
    w->ctxsw = ctx_switches() - w->ctxsw;
}

void peer_report_ns(const struct peer_window *w, double ops) {
    printf("%.3f %.6f %.6f\n", (double)w->elapsed_ns / ops, (double)w->allocs / ops, (double)w->ctxsw / ops);
}

long peer_iters(long base, double scale) {
    long n = (long)((double)base * scale);
    return n < 1000 ? 1000 : n;
}

static const char *prog = "peer";

void peer_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

int peer_main(int argc, char **argv, const struct peer_row *rows, size_t count) {
    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < count; i++) printf("%s %s\n", rows[i].row, rows[i].system);
        return 0;
    }
    double scale = 1.0;
    if (argc == 5 && strcmp(argv[3], "--scale") == 0) {
        char *end;
        scale = strtod(argv[4], &end);
        if (*end != '\0' || !(scale > 0)) peer_fail("bad --scale '%s'", argv[4]);
    } else if (argc != 3) {
        peer_fail("usage: %s --list | ROW SYSTEM [--scale S]", prog);
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(rows[i].row, argv[1]) == 0 && strcmp(rows[i].system, argv[2]) == 0) {
            rows[i].run(scale);
            return fflush(stdout) == 0 ? 0 : 1;
        }
    }
    peer_fail("unknown row/system: %s %s", argv[1], argv[2]);
}

// Reporting fiber stack overflows. UNSAFE FILE: signal handling, raw memory.
//
// A fiber's stack has guard pages below it (FiberStack.swift). Running into them raises
// SIGSEGV with si_addr inside the guard. The kernel can only deliver that signal if the
// handler has a stack of its own (the fiber's stack is exhausted), hence an alternate
// signal stack on every thread that runs fibers.
//
// The handler looks at the fibers running on this thread (innermost first, through
// `parent`); if the fault is in one's guard, it writes one line naming the fiber and its
// stack size to stderr, restores the default action and returns: the faulting instruction
// runs again and the process dies of SIGSEGV as it would have (exit status, core dump).
// Any other fault is handed to whatever handler was installed before ours (the Swift
// runtime's backtracer, a sanitizer), by reinstalling it and returning.
// Everything here is async-signal-safe: no malloc, no stdio, only write(2) and sigaction.
#define _GNU_SOURCE
#include "CSpindle.h"
#include <signal.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

static struct sigaction previous_segv, previous_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;

// Alternate stack size: the handler needs little, but a chained handler (the Swift
// backtracer) may need more; 64 KiB of address space, committed only as touched.
#define ALTSTACK_SIZE (64 * 1024)

static size_t append(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at + 1 < cap) buf[at++] = *s++;
    return at;
}

static size_t append_unsigned(char *buf, size_t at, size_t cap, uintptr_t v, int base) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v && n < 24);
    if (base == 16) at = append(buf, at, cap, "0x");
    while (n > 0 && at + 1 < cap) buf[at++] = tmp[--n];
    return at;
}

static void report_overflow(const spindle_fiber_context *ctx, uintptr_t addr) {
    char line[256];
    size_t n = 0;
    n = append(line, n, sizeof line, "Spindle fatal: stack overflow in ");
    n = append(line, n, sizeof line, ctx->owner ? "fiber" : "generator");
    if (ctx->name[0]) {
        n = append(line, n, sizeof line, " '");
        char name[sizeof ctx->name + 1];
        memcpy(name, ctx->name, sizeof ctx->name);
        name[sizeof ctx->name] = 0;
        n = append(line, n, sizeof line, name);
        n = append(line, n, sizeof line, "'");
    }
    n = append(line, n, sizeof line, ": its stack is ");
    n = append_unsigned(line, n, sizeof line, ctx->stack_size, 10);
    n = append(line, n, sizeof line, " bytes (fault at ");
    n = append_unsigned(line, n, sizeof line, addr, 16);
    n = append(line, n, sizeof line, "); give it a bigger stackSize\n");
    ssize_t ignored = write(2, line, n);
    (void)ignored;
}

static void overflow_handler(int sig, siginfo_t *info, void *uctx) {
    (void)uctx;
    uintptr_t addr = (uintptr_t)info->si_addr;
    for (const spindle_fiber_context *c = spindle_tls_running_fiber; c; c = c->parent) {
        uintptr_t base = (uintptr_t)c->stack_base;
        if (addr < base && addr >= base - c->guard_size) {
            report_overflow(c, addr);
            signal(sig, SIG_DFL);
            return;
        }
    }
    // Not ours: let the previous handler see the same fault when it is raised again.
    sigaction(sig, sig == SIGSEGV ? &previous_segv : &previous_bus, NULL);
}

static void free_altstack(void *mem) {
    stack_t off = { .ss_flags = SS_DISABLE };
    sigaltstack(&off, NULL);
    munmap(mem, ALTSTACK_SIZE);
}

static void install_handler(void) {
    pthread_key_create(&altstack_key, free_altstack);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

int spindle_prepare_thread_for_fibers(void) {
    pthread_once(&handler_once, install_handler);
    stack_t current;
    if (sigaltstack(NULL, &current) != 0) return -errno;
    if (!(current.ss_flags & SS_DISABLE)) return 0;   // the thread already has one
    // SAFETY: a private mapping owned by this thread until it exits (free_altstack).
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) return -errno;
    stack_t alt = { .ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
    if (sigaltstack(&alt, NULL) != 0) {
        int e = errno;
        munmap(mem, ALTSTACK_SIZE);
        return -e;
    }
    pthread_setspecific(altstack_key, mem);
    return 0;
}

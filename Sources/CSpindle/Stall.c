// Backtraces of a stalled worker, taken on that worker's own thread. UNSAFE FILE: signal
// handling, raw stack memory.
//
// The Monitor (Monitor.swift) sees a worker inside one job or fiber turn for longer than
// the stall threshold. It asks for that thread's stack: it sends the thread a real-time
// signal, whose handler walks the frame pointers from the interrupted context (the stalled
// code's own registers) into one static buffer and marks it done. The Monitor, on its own
// thread, waits for the mark, copies the addresses and symbolizes them there (dladdr and
// Swift's demangler are not async-signal-safe; nothing in the handler allocates or locks).
//
// Every read of stack memory in the handler goes through process_vm_readv on our own pid,
// which fails with EFAULT on an unmapped address instead of faulting: a frame pointer
// that is not one (code built without frame pointers) ends the walk, it cannot crash it.
// One capture at a time (the Monitor's stall reports and Runtime.dump both ask): a mutex
// around each capture.
#define _GNU_SOURCE
#include "CSpindle.h"
#include <signal.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <ucontext.h>

#define STALL_MAX_FRAMES 64

static uintptr_t stall_frames[STALL_MAX_FRAMES];
static int stall_count;
// The name of the fiber the stalled thread was running (empty: none, or unnamed), and
// whether it was in a fiber at all. Copied from the running fiber's context, which is
// alive: the fiber is the code the signal interrupted.
static char stall_fiber_name[sizeof(((spindle_fiber_context *)0)->name)];
static int stall_in_fiber;
// 0: idle; 1: requested; 3: a handler claimed the request and is filling the buffer;
// 2: filled. Only the handler that claims (1 -> 3) writes the buffer, and the capturer
// withdraws a request only while nobody has claimed it (1 -> 0), so a late handler can
// never write into the next capture's buffer.
static int stall_state;
static int stall_signal;
static pthread_once_t stall_once = PTHREAD_ONCE_INIT;
static int stall_install_error;

static int read_word(uintptr_t address, uintptr_t *out) {
    struct iovec local = { out, sizeof *out };
    struct iovec remote = { (void *)address, sizeof *out };
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof *out;
}

// The frame-pointer walk: `pc`, then the return address of each frame. Each frame:
// [fp] = the caller's fp, [fp + 8] = the return address. A frame pointer lies above the
// stack pointer and grows toward the stack's base with every frame; `upper` bounds it
// (the stack's end, when known). Async-signal-safe.
static int walk_frames(uintptr_t pc, uintptr_t fp, uintptr_t sp, uintptr_t upper, uintptr_t *out, int max) {
    int n = 0;
    if (pc && n < max) out[n++] = pc;
    uintptr_t lower = sp;
    while (n < max && fp >= lower && fp < upper && (fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t next, ret;
        if (!read_word(fp, &next) || !read_word(fp + sizeof(uintptr_t), &ret) || ret == 0) break;
        out[n++] = ret;
        if (next <= fp) break;
        lower = fp;
        fp = next;
    }
    return n;
}

static void stall_handler(int signo, siginfo_t *info, void *context) {
    (void)signo; (void)info;
    int saved = errno;
    // Only a requested capture fills the buffer (a stray or late signal does nothing).
    int requested = 1;
    if (!__atomic_compare_exchange_n(&stall_state, &requested, 3, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        errno = saved;
        return;
    }
    ucontext_t *uc = context;
    uintptr_t pc, fp, sp;
#if defined(__x86_64__)
    pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    pc = (uintptr_t)uc->uc_mcontext.pc;
    fp = (uintptr_t)uc->uc_mcontext.regs[29];
    sp = (uintptr_t)uc->uc_mcontext.sp;
#else
    pc = 0; fp = 0; sp = 0;
#endif
    stall_count = walk_frames(pc, fp, sp, UINTPTR_MAX, stall_frames, STALL_MAX_FRAMES);
    spindle_fiber_context *fiber = spindle_tls_running_fiber;  // initial-exec TLS: signal-safe
    stall_in_fiber = fiber != 0;
    if (fiber) {
        memcpy(stall_fiber_name, fiber->name, sizeof stall_fiber_name);
        stall_fiber_name[sizeof stall_fiber_name - 1] = 0;
    } else {
        stall_fiber_name[0] = 0;
    }
    __atomic_store_n(&stall_state, 2, __ATOMIC_RELEASE);
    errno = saved;
}

static void stall_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stall_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    stall_signal = SIGRTMIN + 6;
    if (sigaction(stall_signal, &sa, NULL) != 0) stall_install_error = errno;
}

int spindle_fiber_backtrace(const spindle_fiber_context *ctx, uintptr_t *out, int max) {
    uintptr_t sp = (uintptr_t)ctx->sp, pc, fp;
    if (!sp) return 0;
#if defined(__x86_64__)
    // The suspended frame (switch_x86_64.S): +48 rbp, +56 the resume address.
    if (!read_word(sp + 48, &fp) || !read_word(sp + 56, &pc)) return 0;
#elif defined(__aarch64__)
    // The suspended frame (switch_aarch64.S): +80 x29 (fp), +88 x30 (the resume address).
    if (!read_word(sp + 80, &fp) || !read_word(sp + 88, &pc)) return 0;
#else
    return 0;
#endif
    uintptr_t upper = (uintptr_t)ctx->stack_base + ctx->stack_size;
    return walk_frames(pc, fp, sp, upper, out, max);
}

int spindle_stall_signal(void) {
    pthread_once(&stall_once, stall_install);
    return stall_install_error ? -stall_install_error : stall_signal;
}

static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static int capture_locked(uint64_t thread, uintptr_t *_Nonnull out, int max, int64_t timeout_ns);

int spindle_stall_capture(uint64_t thread, uintptr_t *_Nonnull out, int max, int64_t timeout_ns,
                          char *_Nullable fiber_name, size_t name_cap) {
    pthread_mutex_lock(&capture_lock);
    int r = capture_locked(thread, out, max, timeout_ns);
    if (fiber_name && name_cap > 0) {
        // "" when the thread was not in a fiber; "?" for an unnamed fiber.
        const char *name = r >= 0 && stall_in_fiber ? (stall_fiber_name[0] ? stall_fiber_name : "?") : "";
        strncpy(fiber_name, name, name_cap - 1);
        fiber_name[name_cap - 1] = 0;
    }
    pthread_mutex_unlock(&capture_lock);
    return r;
}

static int capture_locked(uint64_t thread, uintptr_t *_Nonnull out, int max, int64_t timeout_ns) {
    int signo = spindle_stall_signal();
    if (signo < 0) return signo;
    __atomic_store_n(&stall_count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&stall_state, 1, __ATOMIC_RELEASE);
    int r = pthread_kill((pthread_t)thread, signo);
    if (r != 0) {
        __atomic_store_n(&stall_state, 0, __ATOMIC_RELEASE);
        return -r;
    }
    int64_t deadline = spindle_monotonic_ns() + timeout_ns;
    while (__atomic_load_n(&stall_state, __ATOMIC_ACQUIRE) != 2) {
        if (spindle_monotonic_ns() >= deadline) {
            // Too late: withdraw the request unless a handler claimed it (then it is
            // filling the buffer right now, a bounded walk: wait for it).
            int one = 1;
            if (__atomic_compare_exchange_n(&stall_state, &one, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return -ETIMEDOUT;
        }
        struct timespec pause = { 0, 200000 };
        nanosleep(&pause, NULL);
    }
    int n = stall_count < max ? stall_count : max;
    memcpy(out, stall_frames, (size_t)n * sizeof(uintptr_t));
    __atomic_store_n(&stall_state, 0, __ATOMIC_RELEASE);
    return n;
}

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>

// The static symbol table (.symtab) of the ELF file at `path`, mapped at `base`: the
// function holding `address`, copied into `name`. For the program's own functions, which
// dladdr cannot see unless the program was linked with --export-dynamic.
static int elf_symbol(const char *path, uintptr_t base, uintptr_t address, char *name, size_t cap, uintptr_t *start) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(ElfW(Ehdr))) { close(fd); return 0; }
    size_t size = (size_t)st.st_size;
    const unsigned char *file = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (file == MAP_FAILED) return 0;
    int found = 0;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)file;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > size) goto done;
    // Position-independent files' symbols are relative to where they are loaded.
    uintptr_t bias = eh->e_type == ET_DYN ? base : 0;
    uintptr_t target = address - bias;
    const ElfW(Shdr) *sections = (const ElfW(Shdr) *)(file + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum && !found; i++) {
        if (sections[i].sh_type != SHT_SYMTAB || sections[i].sh_link >= eh->e_shnum) continue;
        const ElfW(Shdr) *strtab = &sections[sections[i].sh_link];
        if (sections[i].sh_offset + sections[i].sh_size > size || strtab->sh_offset + strtab->sh_size > size) continue;
        const ElfW(Sym) *syms = (const ElfW(Sym) *)(file + sections[i].sh_offset);
        size_t count = sections[i].sh_size / sizeof(ElfW(Sym));
        const ElfW(Sym) *best = NULL;
        for (size_t k = 0; k < count; k++) {
            const ElfW(Sym) *sym = &syms[k];
            if (ELF64_ST_TYPE(sym->st_info) != STT_FUNC || sym->st_value == 0) continue;
            if (target < sym->st_value) continue;
            if (sym->st_size ? target < sym->st_value + sym->st_size : 0) { best = sym; break; }
        }
        if (best && best->st_name < strtab->sh_size) {
            const char *s = (const char *)(file + strtab->sh_offset + best->st_name);
            size_t n = strnlen(s, strtab->sh_size - best->st_name);
            if (n >= cap) n = cap - 1;
            memcpy(name, s, n);
            name[n] = 0;
            *start = best->st_value + bias;
            found = 1;
        }
    }
done:
    munmap((void *)file, size);
    return found;
}

int spindle_symbolize(uintptr_t address, char *_Nonnull name, size_t cap, const char *_Nullable *_Nonnull file,
                      uintptr_t *_Nonnull start) {
    Dl_info info;
    if (cap == 0 || dladdr((void *)address, &info) == 0) return 0;
    *file = info.dli_fname;
    name[0] = 0;
    if (info.dli_sname) {
        size_t n = strlen(info.dli_sname);
        if (n >= cap) n = cap - 1;
        memcpy(name, info.dli_sname, n);
        name[n] = 0;
        *start = (uintptr_t)info.dli_saddr;
        return 1;
    }
    *start = (uintptr_t)info.dli_fbase;
    const char *path = info.dli_fname;
    // The main program's dli_fname may be its argv[0]; its file is /proc/self/exe.
    if (!path || !*path || path[0] != '/') path = "/proc/self/exe";
    elf_symbol(path, (uintptr_t)info.dli_fbase, address, name, cap, start);
    return 1;
}

int spindle_stall_unblock_saving(spindle_sigmask *_Nonnull old) {
    int signo = spindle_stall_signal();
    if (signo < 0) return signo;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return -pthread_sigmask(SIG_UNBLOCK, &set, &old->set);
}

void spindle_sigmask_restore(const spindle_sigmask *_Nonnull old) {
    pthread_sigmask(SIG_SETMASK, &old->set, NULL);
}

// UNSAFE FILE: stack switching. See CSpindleFiber.h for the contract.
#include "CSpindleFiber.h"
#include <string.h>

// The assembly (switch_x86_64.S, switch_aarch64.S).
extern void spindle_switch(void **save_sp, void *load_sp);
extern void spindle_switch_symmetric(void **save_sp, void *load_sp);
extern void spindle_fiber_trampoline(void);

// Exported by libswiftCore; Swift calling convention.
__attribute__((swiftcall)) extern void swift_task_enterThreadLocalContext(char *state);
__attribute__((swiftcall)) extern void swift_task_exitThreadLocalContext(char *state);

#if defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define SPINDLE_TSAN 1
#  endif
#  if __has_feature(address_sanitizer)
#    define SPINDLE_ASAN 1
#  endif
#endif

#if SPINDLE_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif
#if SPINDLE_ASAN
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
#endif

// The first function on a new fiber's stack (called by the trampoline).
static void fiber_main(void *raw) {
    spindle_fiber_context *ctx = raw;
#if SPINDLE_ASAN
    __sanitizer_finish_switch_fiber(NULL, &ctx->asan_caller_bottom, &ctx->asan_caller_size);
#endif
    ctx->entry(ctx->arg);
    // The entry returned, so every frame it had (and whatever those frames retained) is
    // gone: now leave for good.
    spindle_fiber_exit(ctx);
}

void spindle_fiber_init(spindle_fiber_context *ctx, void *stack_base, size_t stack_size,
                        spindle_fiber_entry entry, void *arg) {
#if SPINDLE_TSAN
    void *tsan = ctx->tsan_fiber;   // a reused context keeps its TSan fiber
#endif
    memset(ctx, 0, sizeof(*ctx));
    ctx->stack_base = stack_base;
    ctx->stack_size = stack_size;
    ctx->entry = entry;
    ctx->arg = arg;
#if SPINDLE_TSAN
    ctx->tsan_fiber = tsan ? tsan : __tsan_create_fiber(0);
#endif
    // SAFETY: the caller owns [stack_base, stack_base + stack_size); we write the initial
    // frame at its top, 16-byte aligned, as the assembly files' layout tables describe.
    uintptr_t top = ((uintptr_t)stack_base + stack_size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    uint64_t *sp = (uint64_t *)(top - 16 - 64);   // 16 bytes of padding, then the frame
    uint32_t mxcsr = 0x1F80;                        // default: all exceptions masked, round to nearest
    uint16_t fpucw = 0x037F;                        // default x87 control word
    memcpy((char *)sp + 0, &mxcsr, 4);
    memcpy((char *)sp + 4, &fpucw, 2);
    sp[1] = 0;                                  // r15
    sp[2] = 0;                                  // r14
    sp[3] = (uint64_t)(uintptr_t)ctx;           // r13: argument of fiber_main
    sp[4] = (uint64_t)(uintptr_t)fiber_main;    // r12: called by the trampoline
    sp[5] = 0;                                  // rbx
    sp[6] = 0;                                  // rbp: ends the frame-pointer chain
    sp[7] = (uint64_t)(uintptr_t)spindle_fiber_trampoline;   // where spindle_switch returns to
    sp[8] = 0;                                  // padding (a null "return address")
    sp[9] = 0;
    ctx->sp = sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)fiber_main;    // x19: called by the trampoline
    sp[1] = (uint64_t)(uintptr_t)ctx;           // x20: its argument
    sp[11] = (uint64_t)(uintptr_t)spindle_fiber_trampoline;  // x30: where spindle_switch returns to
    sp[20] = 0;                                 // FPCR: round to nearest, no traps
    ctx->sp = sp;
#else
#  error "Spindle fibers support x86_64 and aarch64"
#endif
}

__thread __attribute__((tls_model("initial-exec"))) spindle_fiber_context *spindle_tls_running_fiber = NULL;
static __thread __attribute__((tls_model("initial-exec"))) int thread_prepared = 0;

spindle_fiber_context *spindle_fiber_resume(spindle_fiber_context *ctx) {
    if (__builtin_expect(!thread_prepared, 0)) {
        // Once per thread: an alternate signal stack, so a stack overflow can be reported
        // (Overflow.c). Failure only loses the nice message, so it is not fatal.
        (void)spindle_prepare_thread_for_fibers();
        thread_prepared = 1;
    }
    ctx->parent = spindle_tls_running_fiber;
    spindle_tls_running_fiber = ctx;
    swift_task_enterThreadLocalContext((char *)ctx->exclusivity);
#if SPINDLE_TSAN
    ctx->tsan_caller = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(ctx->tsan_fiber, 0);
#endif
#if SPINDLE_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, ctx->stack_base, ctx->stack_size);
#endif
    spindle_switch(&ctx->caller_sp, ctx->sp);
#if SPINDLE_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    // Whoever switched back: `ctx`, or a fiber `ctx` handed over to (spindle_fiber_switch).
    spindle_fiber_context *back = spindle_tls_running_fiber;
    swift_task_exitThreadLocalContext((char *)back->exclusivity);
    spindle_tls_running_fiber = back->parent;
    return back;
}

// After arriving on a fiber's stack through spindle_switch (ASan bookkeeping).
static inline void arrived(spindle_fiber_context *ctx) {
#if SPINDLE_ASAN
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(ctx->asan_fake_stack, &bottom, &size);
    if (ctx->asan_direct) {
        // Came from a sibling fiber: the caller stack to return to is the one the
        // sibling recorded (copied by spindle_fiber_switch), not the sibling's.
        ctx->asan_direct = 0;
    } else {
        ctx->asan_caller_bottom = bottom;
        ctx->asan_caller_size = size;
    }
#else
    (void)ctx;
#endif
}

void spindle_fiber_suspend(spindle_fiber_context *ctx) {
#if SPINDLE_TSAN
    __tsan_switch_to_fiber(ctx->tsan_caller, 0);
#endif
#if SPINDLE_ASAN
    __sanitizer_start_switch_fiber(&ctx->asan_fake_stack, ctx->asan_caller_bottom, ctx->asan_caller_size);
#endif
    spindle_switch(&ctx->sp, ctx->caller_sp);
    arrived(ctx);
}

void spindle_fiber_switch(spindle_fiber_context *from, spindle_fiber_context *to) {
    // `to` takes over `from`'s place: same caller, same parent, and the exclusivity state
    // swaps from one fiber's to the other's on this thread.
    swift_task_exitThreadLocalContext((char *)from->exclusivity);
    to->caller_sp = from->caller_sp;
    to->parent = from->parent;
    spindle_tls_running_fiber = to;
    swift_task_enterThreadLocalContext((char *)to->exclusivity);
#if SPINDLE_TSAN
    to->tsan_caller = from->tsan_caller;
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#if SPINDLE_ASAN
    to->asan_caller_bottom = from->asan_caller_bottom;
    to->asan_caller_size = from->asan_caller_size;
    to->asan_direct = 1;
    __sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack_base, to->stack_size);
#endif
    spindle_switch_symmetric(&from->sp, to->sp);
    arrived(from);
}

void spindle_fiber_exit(spindle_fiber_context *ctx) {
#if SPINDLE_TSAN
    __tsan_switch_to_fiber(ctx->tsan_caller, 0);
#endif
#if SPINDLE_ASAN
    // NULL: this fiber's fake stack is released; it never comes back.
    __sanitizer_start_switch_fiber(NULL, ctx->asan_caller_bottom, ctx->asan_caller_size);
#endif
    // The outgoing stack pointer is stored in the context, not in a local: under ASan a
    // local may live in the fake stack released just above.
    spindle_switch(&ctx->sp, ctx->caller_sp);
    __builtin_trap();
}

void spindle_fiber_describe(spindle_fiber_context *ctx, const char *name, size_t guard_size) {
    ctx->guard_size = guard_size;
    if (name) {
        strncpy(ctx->name, name, sizeof ctx->name - 1);
        ctx->name[sizeof ctx->name - 1] = 0;
    } else {
        ctx->name[0] = 0;
    }
}

void spindle_stack_recycled(void *base, size_t size) {
#if SPINDLE_ASAN
    // SAFETY: the caller owns [base, base + size) and nothing runs on it.
    __asan_unpoison_memory_region(base, size);
#else
    (void)base;
    (void)size;
#endif
}

void spindle_fiber_destroy(spindle_fiber_context *ctx) {
#if SPINDLE_TSAN
    if (ctx->tsan_fiber) { __tsan_destroy_fiber(ctx->tsan_fiber); ctx->tsan_fiber = NULL; }
#endif
    (void)ctx;
}

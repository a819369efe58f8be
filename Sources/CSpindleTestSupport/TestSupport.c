#include <string.h>
#include "CSpindleTestSupport.h"
#include <fenv.h>

static __thread int spindle_test_counter = 0;
static __thread spindle_fiber_context *spindle_test_current = 0;

int spindle_test_get_counter(void) { return spindle_test_counter; }
void spindle_test_set_counter(int value) { spindle_test_counter = value; }
void spindle_test_set_current(spindle_fiber_context *ctx) { spindle_test_current = ctx; }

int spindle_test_get_round(void) { return fegetround(); }
void spindle_test_set_round(int mode) { fesetround(mode); }
int spindle_test_round_upward(void) { return FE_UPWARD; }
int spindle_test_round_nearest(void) { return FE_TONEAREST; }

// Not instrumented by ASan: the sanitizer needs registers this asm clobbers on purpose.
__attribute__((no_sanitize("address")))
int spindle_test_resume_preserves_callee_saved(spindle_fiber_context *fiber) {
#if defined(__x86_64__)
    uint64_t out[5] = {0, 0, 0, 0, 0};
    uint64_t *outp = out;
    __asm__ volatile(
        "movq %0, %%rdi\n\t"                 // argument, read before rsp moves
        "movq %1, %%rax\n\t"
        "pushq %%rax\n\t"                    // keep the output pointer on the stack
        "subq $136, %%rsp\n\t"               // step over the red zone; keeps 16-byte alignment
        "movabsq $0x1111111111111111, %%rbx\n\t"
        "movabsq $0x2222222222222222, %%r12\n\t"
        "movabsq $0x3333333333333333, %%r13\n\t"
        "movabsq $0x4444444444444444, %%r14\n\t"
        "movabsq $0x5555555555555555, %%r15\n\t"
        "callq spindle_fiber_resume\n\t"
        "addq $136, %%rsp\n\t"
        "popq %%rax\n\t"
        "movq %%rbx, 0(%%rax)\n\t"
        "movq %%r12, 8(%%rax)\n\t"
        "movq %%r13, 16(%%rax)\n\t"
        "movq %%r14, 24(%%rax)\n\t"
        "movq %%r15, 32(%%rax)\n\t"
        :
        : "m"(fiber), "m"(outp)
        : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
          "r12", "r13", "r14", "r15", "memory", "cc",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    return out[0] == 0x1111111111111111ull && out[1] == 0x2222222222222222ull &&
           out[2] == 0x3333333333333333ull && out[3] == 0x4444444444444444ull &&
           out[4] == 0x5555555555555555ull;
#else
    spindle_fiber_resume(fiber);
    return 1; // the aarch64 variant of this check is not written yet
#endif
}

void spindle_test_clobbering_fiber(void *arg) {
    int *rounds = arg;
    for (;;) {
        fesetround(FE_TOWARDZERO);
#if defined(__x86_64__)
        __asm__ volatile(
            "xorq %%rbx, %%rbx\n\t"
            "xorq %%r12, %%r12\n\t"
            "xorq %%r13, %%r13\n\t"
            "xorq %%r14, %%r14\n\t"
            "xorq %%r15, %%r15\n\t"
            ::: "rbx", "r12", "r13", "r14", "r15");
#endif
        spindle_fiber_suspend(spindle_test_current);
        if (fegetround() != FE_TOWARDZERO) { *rounds = -1000000; }
        else if (*rounds >= 0) { *rounds += 1; }
    }
}

void spindle_test_counting_fiber(void *arg) {
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        spindle_test_counter += 1;
        spindle_fiber_suspend(spindle_test_current);
    }
    spindle_test_counter += 1000;
    spindle_fiber_exit(spindle_test_current);
}

// Direct fiber-to-fiber hand-off (spindle_fiber_switch): A and B take turns, each handing
// over to the other; only B returns to the resumer, through A's caller.
static spindle_fiber_context handoff_a, handoff_b;
static char handoff_trace[16];
static int handoff_len;

static void handoff_body_a(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) {
        handoff_trace[handoff_len++] = 'a';
        spindle_fiber_switch(&handoff_a, &handoff_b);
    }
}

static void handoff_body_b(void *arg) {
    (void)arg;
    for (;;) {
        handoff_trace[handoff_len++] = 'b';
        if (handoff_len >= 6) spindle_fiber_suspend(&handoff_b);
        else spindle_fiber_switch(&handoff_b, &handoff_a);
    }
}

int spindle_test_direct_handoff(void *stack_a, void *stack_b, size_t size) {
    handoff_len = 0;
    spindle_fiber_init(&handoff_a, stack_a, size, handoff_body_a, 0);
    spindle_fiber_init(&handoff_b, stack_b, size, handoff_body_b, 0);
    spindle_fiber_context *back = spindle_fiber_resume(&handoff_a);
    handoff_trace[handoff_len] = 0;
    int ok = back == &handoff_b && strcmp(handoff_trace, "ababab") == 0
             && spindle_running_fiber() == NULL;
    spindle_fiber_destroy(&handoff_a);
    spindle_fiber_destroy(&handoff_b);
    return ok;
}

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SPINDLE_TEST_ASAN 1
#  endif
#endif
#if SPINDLE_TEST_ASAN
extern int __asan_option_detect_stack_use_after_return;
#endif

int spindle_test_asan_fake_stacks(void) {
#if SPINDLE_TEST_ASAN
    return __asan_option_detect_stack_use_after_return != 0;
#else
    return 0;
#endif
}

#include <malloc.h>
unsigned long spindle_test_heap_in_use(void) { return (unsigned long)mallinfo2().uordblks; }

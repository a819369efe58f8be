#include <string.h>
// Runs the aarch64 fiber switch (Sources/CSpindle/switch_aarch64.S) under qemu-user:
// callee-saved x19-x28 and d8-d15 and the FPCR rounding mode must survive switches in both
// directions while the fiber clobbers them all. Built and run by Tests/aarch64/run.sh; the
// Swift runtime hooks of Fiber.c are stubbed (no Swift for aarch64 here).
#include "CSpindleFiber.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <fenv.h>
void swift_task_enterThreadLocalContext(char *s) { (void)s; }
void swift_task_exitThreadLocalContext(char *s) { (void)s; }
static spindle_fiber_context ctx;
static long counter;
static void body(void *arg) {
    (void)arg;
    for (;;) {
        fesetround(FE_TOWARDZERO);
        __asm__ volatile(
            "mov x19, xzr\n mov x20, xzr\n mov x21, xzr\n mov x22, xzr\n mov x23, xzr\n"
            "mov x24, xzr\n mov x25, xzr\n mov x26, xzr\n mov x27, xzr\n mov x28, xzr\n"
            "fmov d8, xzr\n fmov d9, xzr\n fmov d10, xzr\n fmov d11, xzr\n"
            "fmov d12, xzr\n fmov d13, xzr\n fmov d14, xzr\n fmov d15, xzr\n"
            ::: "x19","x20","x21","x22","x23","x24","x25","x26","x27","x28",
                "d8","d9","d10","d11","d12","d13","d14","d15");
        counter++;
        spindle_fiber_suspend(&ctx);
        if (fegetround() != FE_TOWARDZERO) { puts("FAIL: fiber lost its rounding mode"); exit(1); }
    }
}
uint64_t gout[18];
static int resume_preserves(void) {
    uint64_t *out = gout;
    for (int i = 0; i < 18; i++) gout[i] = 0;
    __asm__ volatile(
        "adrp x0, ctx\n add x0, x0, :lo12:ctx\n"
        "mov x19, #0x19\n mov x20, #0x20\n mov x21, #0x21\n mov x22, #0x22\n mov x23, #0x23\n"
        "mov x24, #0x24\n mov x25, #0x25\n mov x26, #0x26\n mov x27, #0x27\n mov x28, #0x28\n"
        "fmov d8, #1.0\n fmov d9, #2.0\n fmov d10, #3.0\n fmov d11, #4.0\n"
        "fmov d12, #5.0\n fmov d13, #6.0\n fmov d14, #7.0\n fmov d15, #8.0\n"
        "bl spindle_fiber_resume\n"
        "adrp x9, gout\n add x9, x9, :lo12:gout\n"
        "stp x19, x20, [x9, #0]\n stp x21, x22, [x9, #16]\n stp x23, x24, [x9, #32]\n"
        "stp x25, x26, [x9, #48]\n stp x27, x28, [x9, #64]\n"
        "stp d8, d9, [x9, #80]\n stp d10, d11, [x9, #96]\n stp d12, d13, [x9, #112]\n stp d14, d15, [x9, #128]\n"
        : :
        : "x0","x1","x2","x3","x4","x5","x6","x7","x8","x9","x10","x11","x12","x13","x14","x15",
          "x16","x17","x19","x20","x21","x22","x23","x24","x25","x26","x27","x28","x30",
          "d0","d1","d2","d3","d4","d5","d6","d7","d8","d9","d10","d11","d12","d13","d14","d15",
          "d16","d17","d18","d19","d20","d21","d22","d23","d24","d25","d26","d27","d28","d29","d30","d31",
          "memory","cc");
    static const uint64_t want[10] = {0x19,0x20,0x21,0x22,0x23,0x24,0x25,0x26,0x27,0x28};
    for (int i = 0; i < 10; i++) if (out[i] != want[i]) return 0;
    double *d = (double *)(out + 10);
    for (int i = 0; i < 8; i++) if (d[i] != (double)(i + 1)) return 0;
    return 1;
}
// Direct fiber-to-fiber hand-off (spindle_fiber_switch): A and B take turns, each
// handing over to the other, and only B returns to main; the trace shows the order.
static spindle_fiber_context fa, fb;
static char trace[64];
static int trace_len;
static void body_a(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) {
        trace[trace_len++] = 'a';
        spindle_fiber_switch(&fa, &fb);
    }
}
static void body_b(void *arg) {
    (void)arg;
    for (;;) {
        trace[trace_len++] = 'b';
        if (trace_len >= 6) spindle_fiber_suspend(&fb);   // back to main, through A's caller
        else spindle_fiber_switch(&fb, &fa);
    }
}
static int direct_handoff_works(void) {
    size_t sz = 64 * 1024;
    spindle_fiber_init(&fa, aligned_alloc(4096, sz), sz, body_a, 0);
    spindle_fiber_init(&fb, aligned_alloc(4096, sz), sz, body_b, 0);
    spindle_fiber_context *back = spindle_fiber_resume(&fa);
    trace[trace_len] = 0;
    return back == &fb && strcmp(trace, "ababab") == 0;
}
int main(void) {
    size_t sz = 64 * 1024;
    void *stack = aligned_alloc(4096, sz);
    spindle_fiber_init(&ctx, stack, sz, body, 0);
    fesetround(FE_UPWARD);
    int ok = 0;
    for (int i = 0; i < 1000; i++) {
        ok += resume_preserves();
        if (fegetround() != FE_UPWARD) { puts("FAIL: main lost its rounding mode"); return 1; }
    }
    if (ok != 1000 || counter != 1000) { printf("FAIL: preserved %d/1000, counter %ld\n", ok, counter); return 1; }
    if (!direct_handoff_works()) { printf("FAIL: direct hand-off, trace %s\n", trace); return 1; }
    printf("aarch64 ok: x19-x28, d8-d15 and FPCR rounding preserved across %d switches each way; direct hand-off ok\n", ok);
    return 0;
}

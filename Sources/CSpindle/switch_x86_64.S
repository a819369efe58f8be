// Fiber context switch, x86_64 System V. UNSAFE FILE: hand-written assembly.
//
// void spindle_switch(void **save_sp, void *load_sp)
//   Saves the caller's callee-saved state on its own stack, stores the stack pointer in
//   *save_sp, switches to load_sp, restores the state saved there and returns into that
//   context. Everything caller-saved is already saved by the compiler at the call.
//
// What is saved, and why (System V AMD64 ABI §3.2.1, §3.2.3):
//   rbx, rbp, r12-r15   callee-saved general registers
//   MXCSR control bits  SSE rounding mode, flush-to-zero, exception masks: "callee-saved"
//   x87 control word    x87 precision/rounding control: "callee-saved"
// Not saved: xmm/ymm registers (all caller-saved on System V), the status flags of MXCSR
// and x87 (not preserved across calls), segment registers (per-thread, and a fiber never
// leaves its thread).
//
// Frame left on a suspended stack (saved sp points at offset 0; 64 bytes, 16-aligned):
//   +0   MXCSR (4 bytes)     +4  x87 control word (2 bytes)   +6  unused
//   +8   r15     +16 r14     +24 r13     +32 r12     +40 rbx     +48 rbp
//   +56  resume address (popped and jumped to, not `ret`urned to: see the end of spindle_switch)
// A new fiber's frame is built by spindle_fiber_init (Fiber.c) with r12 = fiber_main,
// r13 = its context and the resume address = spindle_fiber_trampoline.
#if defined(__x86_64__)

    .text

// One body, two endings (a macro so the two cannot drift apart):
//   spindle_switch            ends with pop+jmp, for switches between a fiber and its
//                             resumer (different call sites on each side);
//   spindle_switch_symmetric  ends with ret, for fiber-to-fiber hand-offs where both sides
//                             suspended at the same call site (spindle_fiber_switch).
// Why two: `ret` pops the return-stack predictor, which still holds *our* caller's entry.
// When the other side was suspended from the same call site, that entry is exactly right,
// and so are the returns after it (both stacks run the same code): every return is
// predicted. When the sites differ, `ret` and every later return miss; pop+jmp leaves the
// predictor alone so only the jump is at the mercy of the indirect-branch predictor.
// Measured here (medians of 3 child processes): bare ping-pong between two different call
// sites 7.3 ns with pop+jmp, 13.9 ns with ret; two fibers yielding to each other
// 67 ns with pop+jmp everywhere, 32-46 ns with ret for the direct hand-off.
.macro SPINDLE_SWITCH name, symmetric
    .globl  \name
    .hidden \name
    .type   \name, @function
    .p2align 4
\name:
    .cfi_startproc
    pushq   %rbp                    // save callee-saved registers of the current context
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    subq    $8, %rsp                // room for MXCSR + x87 CW; rsp is now 16-aligned
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)                  // save SSE control/status register
    fnstcw  4(%rsp)                 // save x87 control word
    movq    %rsp, (%rdi)            // *save_sp = current stack pointer
    movq    %rsi, %rsp              // switch stacks: from here on we are the other context
    ldmxcsr (%rsp)                  // restore its SSE control register
    fldcw   4(%rsp)                 // restore its x87 control word
    addq    $8, %rsp                // drop the control-word slot
    popq    %r15                    // restore its callee-saved registers
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
.if \symmetric
    retq                            // resume it at its return address (see above)
.else
    popq    %r8                     // its resume address (r8 is caller-saved: free to use)
    jmpq    *%r8                    // resume it where it called the switch, or enter the
                                    // trampoline, without touching the return predictor
.endif
    .cfi_endproc
    .size   \name, .-\name
.endm

    SPINDLE_SWITCH spindle_switch, 0
    SPINDLE_SWITCH spindle_switch_symmetric, 1

// First code a new fiber runs: call entry(arg), which must never return (a fiber ends by
// switching away for good). If it does return, trap rather than run off the stack.
    .globl  spindle_fiber_trampoline
    .hidden spindle_fiber_trampoline
    .type   spindle_fiber_trampoline, @function
    .p2align 4
spindle_fiber_trampoline:
    .cfi_startproc
    .cfi_undefined rip              // no caller: unwinders and debuggers stop here
    movq    %r13, %rdi              // first argument: arg
    callq   *%r12                   // entry(arg); rsp is 16-aligned here as the ABI requires
    ud2                             // entry returned: a runtime bug; trap
    .cfi_endproc
    .size   spindle_fiber_trampoline, .-spindle_fiber_trampoline

#endif
    .section .note.GNU-stack,"",@progbits   // this code needs no executable stack

// Fiber context switch, AArch64 AAPCS64. UNSAFE FILE: hand-written assembly.
//
// void spindle_switch(void **save_sp, void *load_sp)   (x0 = save_sp, x1 = load_sp)
//   Same contract as switch_x86_64.S.
//
// What is saved, and why (AAPCS64 §6.1.1, §6.1.2):
//   x19-x28        callee-saved general registers
//   x29 (fp), x30 (lr)   frame pointer and the return address (where the context resumes)
//   d8-d15         low 64 bits of v8-v15 are callee-saved
//   FPCR           floating-point control (rounding, flush-to-zero): preserved across calls
// Not saved: x0-x18, v0-v7/v16-v31 and the upper halves of v8-v15 (caller-saved), FPSR
// (status flags, not preserved), x18 (platform register, per-thread on Linux).
//
// Frame left on a suspended stack (saved sp points at offset 0; 176 bytes, 16-aligned):
//   +0   x19  +8   x20  +16 x21  +24 x22  +32 x23  +40 x24  +48 x25  +56 x26
//   +64  x27  +72  x28  +80 x29  +88 x30 (resume address)
//   +96  d8   +104 d9   +112 d10 +120 d11 +128 d12 +136 d13 +144 d14 +152 d15
//   +160 FPCR +168 unused
// A new fiber's frame, built by spindle_fiber_init (Fiber.c): x19 = fiber_main, x20 = its
// context, x30 = spindle_fiber_trampoline.
#if defined(__aarch64__)

    .text
    .globl  spindle_switch
    .hidden spindle_switch
    .type   spindle_switch, %function
    .p2align 4
spindle_switch:
    .cfi_startproc
    sub     sp, sp, #176            // make room for the frame
    stp     x19, x20, [sp, #0]      // save callee-saved general registers
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]     // frame pointer and return address
    stp     d8,  d9,  [sp, #96]     // save callee-saved FP/SIMD registers (low halves)
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr                // save the floating-point control register
    str     x9, [sp, #160]
    mov     x9, sp                  // *save_sp = sp (sp cannot be stored directly)
    str     x9, [x0]
    mov     sp, x1                  // switch stacks: from here on we are the other context
    ldr     x9, [sp, #160]          // restore its FPCR
    msr     fpcr, x9
    ldp     d8,  d9,  [sp, #96]     // restore its FP/SIMD registers
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldp     x19, x20, [sp, #0]      // restore its general registers
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #176            // pop the frame
    ret                             // jump to x30: where it called spindle_switch, or the trampoline
    .cfi_endproc
    .size   spindle_switch, .-spindle_switch

// On aarch64 both kinds of switch use the same code (`ret` through x30); the x86_64 file
// explains why it has two.
    .globl  spindle_switch_symmetric
    .hidden spindle_switch_symmetric
    .set    spindle_switch_symmetric, spindle_switch

    .globl  spindle_fiber_trampoline
    .hidden spindle_fiber_trampoline
    .type   spindle_fiber_trampoline, %function
    .p2align 4
spindle_fiber_trampoline:
    .cfi_startproc
    .cfi_undefined x30              // no caller: unwinders and debuggers stop here
    mov     x29, xzr                // terminate the frame-pointer chain
    mov     x0, x20                 // first argument: arg
    blr     x19                     // entry(arg); must never return
    brk     #0x1                    // entry returned: a runtime bug; trap
    .cfi_endproc
    .size   spindle_fiber_trampoline, .-spindle_fiber_trampoline

#endif
    .section .note.GNU-stack,"",%progbits   // this code needs no executable stack

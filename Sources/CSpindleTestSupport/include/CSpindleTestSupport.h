// Test-only C helpers for the fiber switch: things Swift cannot express (pinning values in
// callee-saved registers across a call, reading the FP control state).
#ifndef CSPINDLE_TEST_SUPPORT_H
#define CSPINDLE_TEST_SUPPORT_H
#include <CSpindle.h>

/// Loads known values into every callee-saved general register, resumes `fiber` (whose body
/// clobbers them all), and returns 1 if every value survived, 0 otherwise.
int spindle_test_resume_preserves_callee_saved(spindle_fiber_context *_Nonnull fiber);

/// A fiber body that clobbers every callee-saved register and sets its own FP rounding
/// mode (toward zero) before each suspend, and checks that mode is still its own after each
/// resume; arg points to an int that counts its rounds (negative on a failed check).
void spindle_test_clobbering_fiber(void *_Nullable arg);

/// fegetround()/fesetround() and their constants, for Swift.
int spindle_test_get_round(void);
void spindle_test_set_round(int mode);
int spindle_test_round_upward(void);
int spindle_test_round_nearest(void);

/// Bytes of glibc's heap in use now (mallinfo2's uordblks); 0 under a sanitizer, whose
/// allocator is not glibc's.
unsigned long spindle_test_heap_in_use(void);

/// A fiber body that suspends `*(int *)arg` times, incrementing a shared counter, then exits.
void spindle_test_counting_fiber(void *_Nullable arg);
/// The counter the counting fiber bumps (thread-local: each test thread has its own).
int spindle_test_get_counter(void);
void spindle_test_set_counter(int value);
/// The context the test fibers suspend; set before each resume (thread-local).
void spindle_test_set_current(spindle_fiber_context *_Nullable ctx);
/// Runs two fibers that hand over to each other directly (spindle_fiber_switch) three
/// times each; 1 if the order and the final return to the resumer are right.
int spindle_test_direct_handoff(void *_Nonnull stack_a, void *_Nonnull stack_b, size_t size);

/// 1 when AddressSanitizer keeps fake stacks (detect_stack_use_after_return, its default
/// here): it then maps one per fiber and unmaps it when the fiber ends, so the process's
/// mapping count also carries ASan's own fragmentation. 0 otherwise.
int spindle_test_asan_fake_stacks(void);

#endif

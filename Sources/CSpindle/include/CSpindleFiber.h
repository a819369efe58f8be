// CSpindleFiber: the fiber context switch as C calls. UNSAFE FILE: stack switching.
//
// A fiber is resumed by a "caller" context (a worker loop or the thread's own stack) and
// runs until it suspends, which returns control to that caller. One caller per resume.
//
// Around every switch this layer tells the tools and the Swift runtime:
//   - Swift exclusivity checking keeps the running code's open accesses in a thread-local
//     list. Each fiber has its own 2-word state, swapped in by
//     swift_task_enterThreadLocalContext before the fiber runs and swapped out by
//     swift_task_exitThreadLocalContext when it suspends, on the same thread (PLATFORM.md:
//     without this, accesses open across a switch trap as false conflicts).
//   - ThreadSanitizer gets __tsan_switch_to_fiber, AddressSanitizer
//     __sanitizer_start/finish_switch_fiber, when the code is built with them.
#ifndef CSPINDLE_FIBER_H
#define CSPINDLE_FIBER_H

#include <stddef.h>
#include <stdint.h>

typedef void (*spindle_fiber_entry)(void *_Nullable arg);

typedef struct spindle_fiber_context {
    /// The fiber's saved stack pointer while it is suspended (or not yet started).
    void *_Nullable sp;
    /// The caller's saved stack pointer while the fiber runs.
    void *_Nullable caller_sp;
    /// Usable stack: [stack_base, stack_base + stack_size).
    void *_Nullable stack_base;
    size_t stack_size;
    /// Swift's exclusivity-tracking state for this fiber (starts zeroed).
    void *_Nullable exclusivity[2];
    /// The function the fiber runs, and its argument.
    spindle_fiber_entry _Nullable entry;
    void *_Nullable arg;
    /// Sanitizer bookkeeping (unused in plain builds).
    void *_Nullable tsan_fiber;
    void *_Nullable tsan_caller;
    void *_Nullable asan_fake_stack;
    const void *_Nullable asan_caller_bottom;
    size_t asan_caller_size;
} spindle_fiber_context;

/// Prepares `ctx` to run entry(arg) on the given stack the first time it is resumed.
/// `stack_base` is the lowest usable address (above any guard page); the stack grows down
/// from stack_base + stack_size. The fiber ends when entry returns (control goes back to
/// the resumer for the last time), or when it calls spindle_fiber_exit. Prefer returning:
/// frames abandoned by spindle_fiber_exit never release what they hold.
void spindle_fiber_init(spindle_fiber_context *_Nonnull ctx, void *_Nonnull stack_base, size_t stack_size,
                        spindle_fiber_entry _Nonnull entry, void *_Nullable arg);

/// Switches from the calling context into the fiber; returns when the fiber suspends.
void spindle_fiber_resume(spindle_fiber_context *_Nonnull ctx);

/// Called on the fiber's own stack: switches back to whoever resumed it. Returns when the
/// fiber is resumed again.
void spindle_fiber_suspend(spindle_fiber_context *_Nonnull ctx);

/// Called on the fiber's own stack for the last time: switches back to the caller and never
/// returns. The context may be reused (spindle_fiber_init) or freed afterwards.
void spindle_fiber_exit(spindle_fiber_context *_Nonnull ctx) __attribute__((noreturn));

/// Releases sanitizer state of a fiber that will not run again.
void spindle_fiber_destroy(spindle_fiber_context *_Nonnull ctx);

#endif

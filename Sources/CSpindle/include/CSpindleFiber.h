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
    int asan_direct;
    /// Whoever runs this fiber (Spindle's fiber object, unretained), or NULL (generators).
    void *_Nullable owner;
    /// The context that was running on this thread when this one was resumed (nesting).
    struct spindle_fiber_context *_Nullable parent;
    /// Bytes of guard below stack_base; a fault there is reported as an overflow.
    size_t guard_size;
    /// Shown in the overflow message; NUL-terminated, may be empty.
    char name[32];
} spindle_fiber_context;

/// The fiber context running on this thread right now (innermost), or NULL on a thread's
/// own stack. Maintained by spindle_fiber_resume.
extern __thread __attribute__((tls_model("initial-exec"))) spindle_fiber_context *_Nullable spindle_tls_running_fiber;
static inline spindle_fiber_context *_Nullable spindle_running_fiber(void) { return spindle_tls_running_fiber; }

/// Makes stack overflows in fibers on this thread reportable: installs (once per process)
/// a SIGSEGV/SIGBUS handler that names the fiber whose guard was hit, and (once per thread)
/// an alternate signal stack for it to run on. spindle_fiber_resume calls it; exposed for
/// tests. Returns 0, or -errno if the alternate stack could not be set up.
int spindle_prepare_thread_for_fibers(void);

/// Prepares `ctx` to run entry(arg) on the given stack the first time it is resumed.
/// `stack_base` is the lowest usable address (above any guard page); the stack grows down
/// from stack_base + stack_size. The fiber ends when entry returns (control goes back to
/// the resumer for the last time), or when it calls spindle_fiber_exit. Prefer returning:
/// frames abandoned by spindle_fiber_exit never release what they hold.
void spindle_fiber_init(spindle_fiber_context *_Nonnull ctx, void *_Nonnull stack_base, size_t stack_size,
                        spindle_fiber_entry _Nonnull entry, void *_Nullable arg);

/// Switches from the calling context into the fiber; returns when the fiber, or a fiber it
/// handed over to with spindle_fiber_switch, suspends or ends. Returns that fiber.
spindle_fiber_context *_Nonnull spindle_fiber_resume(spindle_fiber_context *_Nonnull ctx);

/// Called on the running fiber `from`: switches straight to the suspended fiber `to`,
/// which takes over `from`'s caller (its next suspend returns to whoever resumed `from`).
/// One stack switch instead of two through the caller. Returns when `from` is resumed.
/// Both must belong to the same thread and caller.
void spindle_fiber_switch(spindle_fiber_context *_Nonnull from, spindle_fiber_context *_Nonnull to);

/// Called on the fiber's own stack: switches back to whoever resumed it. Returns when the
/// fiber is resumed again.
void spindle_fiber_suspend(spindle_fiber_context *_Nonnull ctx);

/// Called on the fiber's own stack for the last time: switches back to the caller and never
/// returns. The context may be reused (spindle_fiber_init) or freed afterwards.
void spindle_fiber_exit(spindle_fiber_context *_Nonnull ctx) __attribute__((noreturn));

/// Sets the name shown in the overflow message (truncated to 31 bytes) and the guard size.
void spindle_fiber_describe(spindle_fiber_context *_Nonnull ctx, const char *_Nullable name, size_t guard_size);

/// The stack [base, base + size) is going back to its arena to be reused by any fiber:
/// AddressSanitizer forgets poisoning left there (munmap did that when every stack was
/// its own mapping). Nothing in other builds.
void spindle_stack_recycled(void *_Nonnull base, size_t size);

/// Releases sanitizer state of a fiber that will not run again.
void spindle_fiber_destroy(spindle_fiber_context *_Nonnull ctx);

#endif

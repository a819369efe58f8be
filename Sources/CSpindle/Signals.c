// UNSAFE FILE: a signal handler. It only does async-signal-safe things: atomic adds,
// loads and a write(2) to an eventfd the reactor watches (the classic self-pipe), so
// signals reach Swift code as ordinary reactor events on a worker, never inside the
// handler.
//
// The hand-off with unwatch. SignalStream.stop closes the eventfd once unwatch returns,
// and from then on the process may reuse its number for any other file, so no handler may
// still be about to write to it:
//   - wake_fds[signo] holds the descriptor + 1 (0: nobody watches), so descriptor 0 is a
//     valid wake-up target like any other;
//   - the handler counts itself in writers[signo] *before* it loads wake_fds[signo], and
//     counts itself out after its write;
//   - unwatch clears wake_fds[signo], *then* waits until writers[signo] is 0.
// All of these are sequentially consistent, so in their one total order either the
// handler's count-in comes before unwatch reads writers (unwatch waits for that write to
// finish) or unwatch's clear comes before the handler's load (the handler writes nothing).
// The wait is short: the handler's write to a non-blocking eventfd never blocks.
#define _GNU_SOURCE
#include "CSpindle.h"
#include <poll.h>
#include <pthread.h>
#include <string.h>

#define SPINDLE_NSIG 65
// SAFETY: arrivals not yet taken, per signal; only atomics touch it.
static uint32_t pending[SPINDLE_NSIG];
// SAFETY: written by watch/unwatch (one caller per signal at a time: SignalStream's
// `watched` set), read by the handler; every access is an atomic.
static int wake_fds[SPINDLE_NSIG];
// SAFETY: handlers between their load of wake_fds[signo] and the end of their write;
// only atomics touch it.
static uint32_t writers[SPINDLE_NSIG];
// SAFETY: written by watch and read by unwatch of the same signal, which SignalStream
// orders (its `watched` set): never both at once; the handler does not touch it.
static struct sigaction previous[SPINDLE_NSIG];

static void on_signal(int signo) {
    int saved = errno;
    if (signo > 0 && signo < SPINDLE_NSIG) {
        __atomic_add_fetch(&pending[signo], 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&writers[signo], 1, __ATOMIC_SEQ_CST);
        int fd_plus_one = __atomic_load_n(&wake_fds[signo], __ATOMIC_SEQ_CST);
        if (fd_plus_one > 0) {
            uint64_t one = 1;
            ssize_t r = write(fd_plus_one - 1, &one, sizeof one);
            (void)r;
        }
        __atomic_sub_fetch(&writers[signo], 1, __ATOMIC_SEQ_CST);
    }
    errno = saved;
}

int spindle_signal_watch(int signo, int wake_fd) {
    if (signo <= 0 || signo >= SPINDLE_NSIG || wake_fd < 0) return -EINVAL;
    __atomic_store_n(&wake_fds[signo], wake_fd + 1, __ATOMIC_SEQ_CST);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, &previous[signo]) != 0) {
        int e = errno;
        __atomic_store_n(&wake_fds[signo], 0, __ATOMIC_SEQ_CST);
        return -e;
    }
    return 0;
}

int spindle_signal_unwatch(int signo) {
    if (signo <= 0 || signo >= SPINDLE_NSIG) return -EINVAL;
    // Back to whatever was installed before (default, ignore, or another handler).
    int r = sigaction(signo, &previous[signo], NULL) == 0 ? 0 : -errno;
    // Then the hand-off above: unpublish, wait for handlers already past their load.
    __atomic_store_n(&wake_fds[signo], 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&writers[signo], __ATOMIC_SEQ_CST) != 0) sched_yield();
    return r;
}

uint32_t spindle_signal_take(int signo) {
    if (signo <= 0 || signo >= SPINDLE_NSIG) return 0;
    return __atomic_exchange_n(&pending[signo], 0, __ATOMIC_SEQ_CST);
}

// ---- the signal-receiving thread (SignalReceiver in Signals.swift) ----------------------

int spindle_signal_block_all(void) {
    sigset_t all;
    sigfillset(&all);
    int r = pthread_sigmask(SIG_SETMASK, &all, NULL);
    return -r;
}

int spindle_signal_wait(int fd, uint64_t deliverable) {
    sigset_t mask;
    sigfillset(&mask);
    for (int signo = 1; signo < SPINDLE_NSIG; signo++) {
        if (deliverable & ((uint64_t)1 << (signo - 1))) sigdelset(&mask, signo);
    }
    struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
    // The mask applies only while ppoll waits (atomically), so the thread lets signals
    // through exactly then; a handler that runs ends the wait with EINTR.
    return ppoll(&p, 1, NULL, &mask) < 0 ? -errno : 0;
}

// UNSAFE FILE: a signal handler. It only does async-signal-safe things: an atomic add and
// a write(2) to an eventfd the reactor watches (the classic self-pipe), so signals reach
// Swift code as ordinary reactor events on a worker, never inside the handler.
#define _GNU_SOURCE
#include "CSpindle.h"
#include <string.h>

#define SPINDLE_NSIG 65
static uint32_t pending[SPINDLE_NSIG];
static int wake_fds[SPINDLE_NSIG];
static struct sigaction previous[SPINDLE_NSIG];

static void on_signal(int signo) {
    int saved = errno;
    if (signo > 0 && signo < SPINDLE_NSIG) {
        __atomic_add_fetch(&pending[signo], 1, __ATOMIC_SEQ_CST);
        int fd = __atomic_load_n(&wake_fds[signo], __ATOMIC_SEQ_CST);
        uint64_t one = 1;
        if (fd > 0) { ssize_t r = write(fd, &one, sizeof one); (void)r; }
    }
    errno = saved;
}

int spindle_signal_watch(int signo, int wake_fd) {
    if (signo <= 0 || signo >= SPINDLE_NSIG) return -EINVAL;
    __atomic_store_n(&wake_fds[signo], wake_fd, __ATOMIC_SEQ_CST);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, &previous[signo]) != 0) return -errno;
    return 0;
}

int spindle_signal_unwatch(int signo) {
    if (signo <= 0 || signo >= SPINDLE_NSIG) return -EINVAL;
    // Back to whatever was installed before (default, ignore, or another handler).
    if (sigaction(signo, &previous[signo], NULL) != 0) return -errno;
    __atomic_store_n(&wake_fds[signo], 0, __ATOMIC_SEQ_CST);
    return 0;
}

uint32_t spindle_signal_take(int signo) {
    if (signo <= 0 || signo >= SPINDLE_NSIG) return 0;
    return __atomic_exchange_n(&pending[signo], 0, __ATOMIC_SEQ_CST);
}

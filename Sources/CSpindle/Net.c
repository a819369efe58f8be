// UNSAFE FILE: raw syscalls for the reactor and sockets. No policy here (see Sys.swift).
#define _GNU_SOURCE
#include "CSpindle.h"
#include <string.h>
#include <sys/ioctl.h>

int spindle_epoll_wait(int epfd, struct epoll_event *events, int max, int64_t timeout_ns) {
#ifdef SYS_epoll_pwait2
    static int no_pwait2 = 0;
    if (!__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            tsp = &ts;
        }
        // SAFETY: events points to `max` writable entries owned by the caller.
        long r = syscall(SYS_epoll_pwait2, epfd, events, max, tsp, NULL, 0);
        if (r >= 0 || errno != ENOSYS) return (int)r;
        __atomic_store_n(&no_pwait2, 1, __ATOMIC_RELAXED);
    }
#endif
    int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
    return epoll_wait(epfd, events, max, ms);
}

int spindle_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int spindle_socket(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int spindle_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int spindle_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
    return err;
}

int spindle_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

int spindle_socket_queued(int fd) {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) != 0) return -errno;
    return n;
}

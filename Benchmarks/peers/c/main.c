// C peer for `spindle bench --peers`: thread.switch, ns per one-way hand-off between two
// OS threads. Each thread waits for its own futex word (raw FUTEX_WAIT_PRIVATE) and hands
// over by setting the other's word and waking it (FUTEX_WAKE_PRIVATE); 200,000
// hand-offs. c-futex lets the threads run on any CPU; c-futex-1cpu pins both to CPU 0.
#define _GNU_SOURCE
#include "../common/support.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t to_main, to_other;
static long other_rounds;
static int pin;

static void pin_to_cpu0(void) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    int err = pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    if (err != 0) peer_fail("pthread_setaffinity_np(CPU 0): %s", strerror(err));
}

static void wait_for(uint32_t *word) {
    while (__atomic_exchange_n(word, 0, __ATOMIC_ACQUIRE) == 0)
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void hand_to(uint32_t *word) {
    __atomic_store_n(word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *other(void *arg) {
    (void)arg;
    if (pin) pin_to_cpu0();
    for (long i = 0; i < other_rounds; i++) {
        wait_for(&to_other);
        hand_to(&to_main);
    }
    return NULL;
}

static void thread_switch(double scale, int pinned) {
    long rounds = peer_iters(200000, scale) / 2, warmup = 500;
    pin = pinned;
    if (pin) pin_to_cpu0();
    other_rounds = warmup + rounds;
    pthread_t t;
    int err = pthread_create(&t, NULL, other, NULL);
    if (err != 0) peer_fail("pthread_create: %s", strerror(err));
    for (long i = 0; i < warmup; i++) { hand_to(&to_other); wait_for(&to_main); }
    struct peer_window w;
    peer_begin(&w);
    for (long i = 0; i < rounds; i++) { hand_to(&to_other); wait_for(&to_main); }
    peer_end(&w);
    pthread_join(t, NULL);
    peer_report_ns(&w, (double)(rounds * 2));
}

static void any_cpu(double scale) { thread_switch(scale, 0); }
static void one_cpu(double scale) { thread_switch(scale, 1); }

static const struct peer_row rows[] = {
    {"thread.switch", "c-futex", any_cpu},
    {"thread.switch", "c-futex-1cpu", one_cpu},
};

int main(int argc, char **argv) { return peer_main(argc, argv, rows, sizeof rows / sizeof rows[0]); }

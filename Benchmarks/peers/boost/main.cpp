// Boost peer for `spindle bench --peers`: fiber.switch, ns per one-way switch between
// two coroutines on one thread with boost::context::fiber. The main context resumes a
// fiber that resumes straight back; each resume is one switch (10,000,000 switches).
#include "../common/support.h"
#include <boost/context/fiber.hpp>
#include <utility>

namespace ctx = boost::context;

static void fiber_switch(double scale) {
    long rounds = peer_iters(10000000, scale) / 2;
    bool done = false;
    ctx::fiber f{[&done](ctx::fiber &&back) {
        while (!done) back = std::move(back).resume();
        return std::move(back);
    }};
    for (int i = 0; i < 500; i++) f = std::move(f).resume();   // warm-up: 1,000 switches
    peer_window w;
    peer_begin(&w);
    for (long i = 0; i < rounds; i++) f = std::move(f).resume();
    peer_end(&w);
    done = true;
    f = std::move(f).resume();   // the fiber returns
    if (f) peer_fail("the fiber did not finish");
    peer_report_ns(&w, (double)(rounds * 2));
}

static const peer_row rows[] = {
    {"fiber.switch", "boost", fiber_switch},
};

int main(int argc, char **argv) { return peer_main(argc, argv, rows, sizeof rows / sizeof rows[0]); }

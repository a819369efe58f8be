// The load-time constructor of SpindleAutoInstall.
//
// Why a C constructor: Swift 6.3.1 creates its global executors lazily from a factory the
// first time anything needs one, and `_createExecutors(factory:)` only takes effect if it
// runs before that (shared PLATFORM notes, "Replacing Swift's global executors"). A
// constructor of the program's own image runs after every shared library's constructors
// (libswiftCore, libdispatch, Foundation, XCTest are initialised) and before `main`, so
// before the test runner's async main enqueues its first job.
//
// Why it is linked: SwiftPM links every object file of every target a product depends on
// straight into the binary (no archive, so nothing is dropped for being unreferenced),
// and `.init_array` entries are kept by the linker even with --gc-sections. As a second
// guarantee for other build systems that go through a static archive, the Swift API
// (SpindleAutoInstall.isInstalled) calls spindle_auto_install_state() below, which lives
// in this same object file: a program that references the API links the constructor.
#include "CSpindleAutoInstall.h"
#include <stdlib.h>
#include <string.h>

// Implemented in Swift (@_cdecl in SpindleAutoInstall): installs Spindle's global
// executors and returns 1 if Swift's default executor is now Spindle's runtime. Declared
// here, not in the header, so Swift does not also import it.
int spindle_auto_install_run(void);

static int spindle_auto_install_outcome = SPINDLE_AUTO_INSTALL_NOT_RUN;

int spindle_auto_install_state(void) {
    return __atomic_load_n(&spindle_auto_install_outcome, __ATOMIC_ACQUIRE);
}

__attribute__((constructor, used))
static void spindle_auto_install_constructor(void) {
    // getenv before main is safe: the environment is set up before any constructor runs,
    // and no other thread exists yet that could call setenv.
    const char *knob = getenv("SPINDLE_AUTO_INSTALL");
    int outcome;
    if (knob != NULL && strcmp(knob, "0") == 0) {
        outcome = SPINDLE_AUTO_INSTALL_DISABLED;
    } else {
        outcome = spindle_auto_install_run() ? SPINDLE_AUTO_INSTALL_INSTALLED : SPINDLE_AUTO_INSTALL_FAILED;
    }
    __atomic_store_n(&spindle_auto_install_outcome, outcome, __ATOMIC_RELEASE);
}

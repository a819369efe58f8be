// CSpindleAutoInstall: the load-time constructor that makes Spindle Swift's global
// executor before anything in the program touches Swift concurrency (see
// Sources/SpindleAutoInstall/SpindleAutoInstall.swift for the public API and the knob).
#ifndef CSPINDLE_AUTO_INSTALL_H
#define CSPINDLE_AUTO_INSTALL_H

// What the constructor did. Written once, by the constructor, before `main` runs and
// before any thread it did not start exists; read with acquire ordering afterwards.
enum {
    SPINDLE_AUTO_INSTALL_NOT_RUN = 0,   // constructor not (yet) run: object not linked?
    SPINDLE_AUTO_INSTALL_DISABLED = 1,  // SPINDLE_AUTO_INSTALL=0 in the environment
    SPINDLE_AUTO_INSTALL_INSTALLED = 2, // Spindle is Swift's global default executor
    SPINDLE_AUTO_INSTALL_FAILED = 3,    // installation ran but Swift kept another executor
};

// The constructor's outcome, one of the values above. Defined in the same object file as
// the constructor, so any program that calls it (SpindleAutoInstall.isInstalled does)
// links the constructor too.
int spindle_auto_install_state(void);

#endif

#!/usr/bin/env bash
# Installs the toolchains for the peer programs of `spindle bench --peers` from Debian:
# Go (golang-go), Tokio and its crates for offline cargo builds (librust-tokio-dev),
# Boost.Context (libboost-context-dev) and g++, plus Debian's cargo when no cargo is on
# PATH (librust-tokio-dev does not bring one). Needs root. Never run by CI; build.sh
# never runs it either and skips any peer whose toolchain is missing.
set -euo pipefail
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go librust-tokio-dev libboost-context-dev g++
if ! command -v cargo >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get install -y cargo; fi

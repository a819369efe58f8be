#!/usr/bin/env bash
# Builds the peer programs of `spindle bench --peers` into OUTDIR:
#   go     go/main.go         (Go, GO111MODULE=off, GOCACHE in OUTDIR)
#   tokio  tokio/             (cargo offline against Debian's crate directory)
#   boost  boost/main.cpp     (g++ -O2, -lboost_context)
#   c      c/main.c           (gcc -O2 -pthread)
# and prints `NAME ABSOLUTE_PATH` on stdout for each one built. A peer whose toolchain is
# missing is skipped with a note on stderr; a failed build of a present toolchain exits
# non-zero. Installs nothing (install.sh does) and writes nothing outside OUTDIR.
#
#   Benchmarks/peers/build.sh OUTDIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
. "$here/../cargo-offline.sh"
registry=$debian_crates

current=""
trap 'echo "build.sh: building the $current peer failed" >&2' ERR
skip() { echo "skipping $1: $2 (Benchmarks/peers/install.sh installs it)" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

current=go
if ! have go; then skip go "no go command"
else
    GOCACHE="$out/gocache" GO111MODULE=off go build -o "$out/go-peer" "$here/go/main.go"
    echo "go $out/go-peer"
fi

current=tokio
if ! have cargo; then skip tokio "no cargo command"
elif ! ls "$registry" 2>/dev/null | grep -q '^tokio-1\.'; then skip tokio "no Tokio crate in $registry"
else
    mkdir -p "$out/tokio-src"
    cargo_offline_home "$out/cargo-home"
    # Built from a copy so that Cargo.lock lands in OUTDIR, not in the source folder.
    rm -rf "$out/tokio-src/src"
    cp -p "$here/tokio/Cargo.toml" "$out/tokio-src/"
    cp -pr "$here/tokio/src" "$out/tokio-src/"
    (cd "$out/tokio-src" && CARGO_HOME="$out/cargo-home" CARGO_TARGET_DIR="$out/cargo-target" cargo build --release -q)
    cp "$out/cargo-target/release/tokio-peer" "$out/tokio-peer"
    echo "tokio $out/tokio-peer"
fi

current=boost
if ! have g++ || ! have gcc; then skip boost "no g++/gcc command"
elif [ ! -f /usr/include/boost/context/fiber.hpp ] || [ ! -e "$(g++ -print-file-name=libboost_context.so)" ]; then
    skip boost "no Boost.Context headers or library"
else
    gcc -O2 -Wall -c "$here/common/support.c" -o "$out/support.o"
    g++ -O2 -Wall -o "$out/boost-peer" "$here/boost/main.cpp" "$out/support.o" -lboost_context
    echo "boost $out/boost-peer"
fi

current=c
if ! have gcc; then skip c "no gcc command"
else
    gcc -O2 -Wall -pthread -o "$out/c-peer" "$here/c/main.c" "$here/common/support.c"
    echo "c $out/c-peer"
fi

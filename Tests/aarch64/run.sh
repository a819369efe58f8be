#!/usr/bin/env bash
# Assembles the aarch64 context switch with the Swift toolchain's clang (always), then, if
# qemu-user and an aarch64 C toolchain are installed (Debian: qemu-user,
# gcc-aarch64-linux-gnu), runs Tests/aarch64/switch_check.c under qemu-aarch64.
# Exit 0 on success or when the run step is skipped for lack of tools; 1 on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
S=Sources/CSpindle
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

clang --target=aarch64-linux-gnu -c "$S/switch_aarch64.S" -o "$out/switch.o"
echo "aarch64: switch_aarch64.S assembles"

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    echo "aarch64: qemu-aarch64 or aarch64-linux-gnu-gcc missing; run step skipped"
    exit 0
fi
for f in Tests/aarch64/switch_check.c "$S/Fiber.c" "$S/Overflow.c"; do
    clang --target=aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include -O2 -w \
        -I"$S/include" -c "$f" -o "$out/$(basename "$f").o"
done
aarch64-linux-gnu-gcc "$out"/*.o -lm -o "$out/check"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/check"

#!/usr/bin/env bash
# CI: apple/swift-async-algorithms' own test suite (a large, timing-heavy body of
# concurrency code we did not write) run twice, outside this repository:
#   1. as-is, on Swift's default (Dispatch) executors: the baseline;
#   2. with Spindle as Swift's global executor through the SpindleAutoInstall product
#      (one dependency added to its test targets, no code change), plus one test of ours
#      that fails unless Spindle really is installed.
# Prints the wall time and pass/fail counts of each run, names the failed tests and the
# test that hung (if one did), and exits non-zero if the Spindle run fails or hangs or the
# proof test did not pass. The default-executor run is the baseline, not a test of ours: a
# failure or hang there is printed as such ("BASELINE ...") and does not fail CI. (A race in
# 1.1.4 itself, see SKIP_TESTS below, hung the baseline and failed CI once after a 1500 s
# wait.)
# Nothing is written inside this repository; their code is never committed.
#
# Usage: .ci/async-algorithms.sh          (CI=true and no stdin are fine)
# Knobs (environment):
#   ASYNC_ALGORITHMS_TIMEOUT   seconds per test run before it counts as a hang (300; the
#                              whole suite takes 6-10 s on either executor)
#   ASYNC_ALGORITHMS_FILTER    a `swift test --filter` regex, to run part of the suite
#   ASYNC_ALGORITHMS_RUNS      which runs: "default spindle" (both, the default), or one
#   ASYNC_ALGORITHMS_KEEP=1    keep the temporary directory (builds and logs) for a look
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VERSION=1.1.4
URL=https://github.com/apple/swift-async-algorithms.git
RUN_TIMEOUT="${ASYNC_ALGORITHMS_TIMEOUT:-300}"
BUILD_TIMEOUT=2400
FILTER="${ASYNC_ALGORITHMS_FILTER:-}"
RUNS="${ASYNC_ALGORITHMS_RUNS:-default spindle}"
PROOF_CLASS=SpindleInstalledTests
# Upstream tests left out of both runs, each with the reason printed when the run starts.
# test_empty_inner: 1.1.4's flatMapLatest stores the inner task's handle outside its lock
# after the task is already running (FlatMapLatestStorage.swift, innerTaskStarted), so an
# inner sequence that finishes at once can leave the consumer's continuation stored with
# nothing left to resume it. A race in the library on any parallel executor: here it hung
# 10 runs in 40 (the test, then its class) on Swift's default executor, 0 in 40 on
# Spindle.
SKIP_TESTS='TestFlatMapLatest/test_empty_inner'
SKIP_REASON="TestFlatMapLatest.test_empty_inner skipped in both runs: upstream 1.1.4's flatMapLatest races (innerTaskStarted records a task that may have finished, outside the lock) and can hang on any parallel executor; see .ci/async-algorithms.sh"
PROOF_TEST="$PROOF_CLASS.test_spindleIsTheGlobalExecutor"
# SwiftPM names a path dependency after its directory's last component, lowercased.
SPINDLE_IDENTITY="$(basename "$REPO" | tr '[:upper:]' '[:lower:]')"
export GIT_TERMINAL_PROMPT=0

WORK="$(mktemp -d "${TMPDIR:-/tmp}/spindle-async-algorithms.XXXXXX")"
cleanup() {
    if [ "${ASYNC_ALGORITHMS_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
exec </dev/null

now_ms() { date +%s%3N; }
seconds_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# ---- the pristine copy: 1.1.4 plus the two symlinks the mirror lost ---------------------
SRC="$WORK/src/swift-async-algorithms"
git clone -q "$URL" "$SRC"
git -C "$SRC" -c advice.detachedHead=false checkout -q "$VERSION"
for link in Sources/AsyncSequenceValidation/Locking.swift Tests/AsyncAlgorithmsTests/Support/Locking.swift; do
    if [ ! -e "$SRC/$link" ]; then
        dir="$(dirname "$link")"
        up="$(echo "$dir" | sed 's|[^/][^/]*|..|g')"
        ln -s "$up/Sources/AsyncAlgorithms/Locking.swift" "$SRC/$link"
        [ -e "$SRC/$link" ] || { echo "error: $link does not resolve" >&2; exit 1; }
    fi
done
rm -rf "$SRC/.git"

# Each run gets its own copy, in a directory that keeps the name swift-async-algorithms:
# Spindle itself depends on swift-async-algorithms (for `spindle bench`), and SwiftPM only
# accepts the root package in its place (an override) when the identities match.
prepare_default() {
    mkdir -p "$WORK/default" && cp -a "$SRC" "$WORK/default/"
}

prepare_spindle() {
    mkdir -p "$WORK/spindle" && cp -a "$SRC" "$WORK/spindle/"
    local dir="$WORK/spindle/swift-async-algorithms"
    # Their manifest is left as is (tools version 6.2, their language modes and
    # settings); Spindle (tools 6.1) is added as a path dependency of every test target.
    cat >>"$dir/Package.swift" <<EOF

// Added by Spindle's .ci/async-algorithms.sh: the test suite runs on Spindle.
package.dependencies.append(.package(path: "$REPO"))
for target in package.targets where target.type == .test {
  target.dependencies += [
    .product(name: "SpindleAutoInstall", package: "$SPINDLE_IDENTITY"),
    .product(name: "Spindle", package: "$SPINDLE_IDENTITY"),
  ]
}
EOF
    cat >"$dir/Tests/AsyncAlgorithmsTests/$PROOF_CLASS.swift" <<'EOF'
// Added by Spindle's .ci/async-algorithms.sh: fails unless Spindle is Swift's global
// executor, so the Spindle run cannot pass with Spindle silently not installed.
import Spindle
import SpindleAutoInstall
import XCTest

final class SpindleInstalledTests: XCTestCase {
  func test_spindleIsTheGlobalExecutor() async {
    XCTAssertTrue(SpindleAutoInstall.isInstalled, "SpindleAutoInstall did not install Spindle")
    XCTAssertNotNil(Runtime.global, "no global Spindle runtime")
    // Unstructured tasks created outside any actor run on the global default executor.
    let plain = await Task { Runtime.currentWorkerIndex }.value
    let detached = await Task.detached { Runtime.currentWorkerIndex }.value
    XCTAssertNotNil(plain, "Task {} did not run on a Spindle worker")
    XCTAssertNotNil(detached, "Task.detached {} did not run on a Spindle worker")
    print("spindle-proof: installed=\(SpindleAutoInstall.isInstalled) Task{} on worker \(plain.map { String($0) } ?? "none"), Task.detached on worker \(detached.map { String($0) } ?? "none")")
  }
}
EOF
}

# ---- running -------------------------------------------------------------------------
# run_bounded SECONDS CMD...: runs CMD with line-buffered output, so a hang's log ends
# with the test that hung (XCTest's output to a pipe is block-buffered and would be lost
# when the process is killed). At the deadline it sends SIGINT: swift test then stops the
# test process it started (that process has its own process group, so a plain SIGTERM to
# swift test leaves it running, hung); SIGKILL 30 s later if that did not work. Exits 124
# on a timeout.
run_bounded() {
    local seconds="$1"; shift
    timeout -s INT -k 30 "$seconds" stdbuf -oL -eL "$@"
}

# Kills any process still running a binary built under $WORK (a test process orphaned by
# a timeout), matched by its executable's path, never by name.
kill_leftovers() {
    local p exe
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null || true)"
        case "$exe" in
        "$WORK"/*) echo "killing leftover ${p#/proc/} ($exe)"; kill -9 "${p#/proc/}" 2>/dev/null || true ;;
        esac
    done
}

declare -A BUILD_S TEST_S PASSED FAILED EXECUTED STATUS HUNG FAILED_NAMES
OVERALL=0
BASELINE_FAILED=0

# Counts XCTest results in a log; sets the globals for run $1.
summarize() {
    local run="$1" log="$2"
    PASSED[$run]=$(grep -cE "^Test Case '.*' passed" "$log" || true)
    FAILED[$run]=$(grep -cE "^Test Case '.*' failed" "$log" || true)
    EXECUTED[$run]=$(grep -E "^Test Suite '(All|Selected) tests' (passed|failed)" -A1 "$log" | grep -oE "Executed [0-9]+ tests?, with [0-9]+ failures?" | tail -1 || true)
    FAILED_NAMES[$run]=$(grep -oE "^Test Case '[^']*' failed" "$log" | sed -E "s/^Test Case '([^']*)' failed/\1/" | sort -u | tr '\n' ' ' || true)
    # The test that hung: the last one started that neither passed nor failed.
    local last
    last=$(grep -oE "^Test Case '[^']*' started" "$log" | tail -1 | sed -E "s/^Test Case '([^']*)' started/\1/" || true)
    HUNG[$run]=""
    if [ -n "$last" ] && ! grep -qE "^Test Case '$last' (passed|failed)" "$log"; then
        HUNG[$run]="$last"
    fi
}

# fail RUN: the run failed; it fails CI unless it is the baseline (default executor).
fail() {
    if [ "$1" = default ]; then BASELINE_FAILED=1; else OVERALL=1; fi
}

# run_suite NAME DIR [FILTER]: builds the tests, then runs them under the timeout.
run_suite() {
    local run="$1" dir="$2" filter="${3:-}" log="$WORK/$1.log" start rc
    echo
    echo "=== $run: building (swift build --build-tests) in $dir"
    start=$(now_ms)
    if ! (cd "$dir" && timeout -s INT -k 30 "$BUILD_TIMEOUT" swift build --build-tests) >"$WORK/$run.build.log" 2>&1; then
        tail -50 "$WORK/$run.build.log"
        echo "=== $run: BUILD FAILED"
        STATUS[$run]="build failed"; BUILD_S[$run]=$(seconds_since "$start"); TEST_S[$run]=-
        PASSED[$run]=0; FAILED[$run]=0; fail "$run"
        return
    fi
    BUILD_S[$run]=$(seconds_since "$start")
    echo "=== $run: built in ${BUILD_S[$run]} s"
    local args=(test --no-parallel --skip-build --skip "$SKIP_TESTS")
    [ -n "$filter" ] && args+=(--filter "$filter")
    echo "=== $run: $SKIP_REASON"
    echo "=== $run: swift ${args[*]} (timeout $RUN_TIMEOUT s)"
    start=$(now_ms)
    set +e
    (cd "$dir" && run_bounded "$RUN_TIMEOUT" swift "${args[@]}") 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    kill_leftovers
    TEST_S[$run]=$(seconds_since "$start")
    summarize "$run" "$log"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        STATUS[$run]="TIMED OUT after $RUN_TIMEOUT s"; fail "$run"
    elif [ "$rc" != 0 ]; then
        STATUS[$run]="FAILED (exit $rc)"; fail "$run"
    else
        STATUS[$run]="passed"
    fi
    echo "=== $run: ${STATUS[$run]} in ${TEST_S[$run]} s"
}

for run in $RUNS; do
    case "$run" in
    default)
        prepare_default
        run_suite default "$WORK/default/swift-async-algorithms" "$FILTER"
        ;;
    spindle)
        prepare_spindle
        filter="$FILTER"
        [ -n "$filter" ] && filter="$filter|$PROOF_CLASS"
        run_suite spindle "$WORK/spindle/swift-async-algorithms" "$filter"
        if [ "${STATUS[spindle]}" != "build failed" ] \
            && ! grep -qE "^Test Case '$PROOF_TEST' passed" "$WORK/spindle.log"; then
            # It may not have been reached (a hang or crash before it): ask it alone, so the
            # report says whether Spindle was installed at all.
            echo "=== spindle: $PROOF_TEST did not pass in the suite run; running it alone"
            set +e
            (cd "$WORK/spindle/swift-async-algorithms" \
                && run_bounded 120 swift test --no-parallel --skip-build --filter "$PROOF_CLASS") 2>&1 \
                | tee "$WORK/spindle-proof.log"
            set -e
            kill_leftovers
            if grep -qE "^Test Case '$PROOF_TEST' passed" "$WORK/spindle-proof.log"; then
                STATUS[spindle]="${STATUS[spindle]}; proof test passed only when run alone"
            else
                STATUS[spindle]="${STATUS[spindle]}; PROOF TEST DID NOT PASS: Spindle not shown installed"
            fi
            OVERALL=1
        fi
        ;;
    *)
        echo "error: unknown run '$run' in ASYNC_ALGORITHMS_RUNS" >&2
        exit 2
        ;;
    esac
done

echo
echo "=== swift-async-algorithms $VERSION test suite${FILTER:+ (filter: $FILTER)}"
for run in $RUNS; do
    label="$run"
    [ "$run" = default ] && label="default executor"
    [ "$run" = spindle ] && label="Spindle (SpindleAutoInstall)"
    printf '%-30s %s; build %s s, tests %s s wall; %s passed, %s failed%s\n' \
        "$label:" "${STATUS[$run]}" "${BUILD_S[$run]}" "${TEST_S[$run]}" \
        "${PASSED[$run]:-0}" "${FAILED[$run]:-0}" "${EXECUTED[$run]:+ (XCTest: ${EXECUTED[$run]})}"
    [ -n "${FAILED_NAMES[$run]:-}" ] && echo "    failed: ${FAILED_NAMES[$run]}"
    [ -n "${HUNG[$run]:-}" ] && echo "    hung (started, never finished): ${HUNG[$run]}"
done
if [ "$BASELINE_FAILED" = 1 ]; then
    echo "BASELINE (Swift's default executor) did not pass: that is upstream's suite on Swift's own"
    echo "executor, reported for comparison; it does not fail CI. The Spindle run decides."
fi
exit "$OVERALL"

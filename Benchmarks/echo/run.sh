#!/usr/bin/env bash
# Echo-server comparison: the same echo protocol served by Spindle (async tasks and
# fibers), SwiftNIO, Go and Tokio, each driven in turn by one load generator (Go, in its
# own process) with 100 and 1000 concurrent connections. Peers come from Debian
# (golang-go, librust-tokio-dev; cargo uses Debian's crate directory offline) and the
# local Swift package mirror (swift-nio). Never run by CI.
#
#   Benchmarks/echo/run.sh [SECONDS] [SIZE] [RUNS]          (defaults: 5 64 5)
#
# Two placements, both measured and reported:
#   pinned    the server on one CPU (taskset -c $ECHO_SERVER_CPU, default 0) and the load
#             generator on another (taskset -c $ECHO_LOADGEN_CPU, default 1): on a 2-core
#             machine the honest placement, neither steals the other's core;
#   unpinned  no taskset: both may use every CPU, and compete for them.
# Every server counts the CPUs it may use (NIO's loop count is passed as `nproc`, since
# System.coreCount ignores the affinity mask), so a pinned server runs one worker/loop.
#
# RUNS rounds (at least 5), each measuring every (connections, server, placement) once,
# so drift hits all servers alike; the server order is reversed, and the placement order
# swapped, every other round. Each measurement starts a fresh server, warms up 1 s, then
# measures SECONDS. Reported per (placement, server, connections): the median over rounds
# of requests/s (with min–max), p50 and p99 latency, and server CPU time per request and
# as % of one core (utime+stime of the server from /proc/PID/stat, read by the load
# generator just before and just after its measured window, over the requests completed
# in it), and the load generator's own CPU % (near 100 per CPU it has, it is what limits
# requests/s); errors are summed over rounds (failed connects, writes and reads; warm-up
# included). The table goes to stdout in Markdown; raw per-run lines go to stderr and to
# .build-echo/results-*.txt.
#
# ECHO_SMOKE=1 allows fewer than 5 runs (even 1) for a quick check; its table says it is
# not for publishing. SPINDLE_SCRATCH is the --scratch-path for Spindle's echo-server
# build (default $root/.build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-5}"
size="${2:-64}"
runs="${3:-5}"
warmup=1
smoke="${ECHO_SMOKE:-0}"
scratch="${SPINDLE_SCRATCH:-$root/.build}"
server_cpu="${ECHO_SERVER_CPU:-0}"
loadgen_cpu="${ECHO_LOADGEN_CPU:-1}"
servers=(spindle-async spindle-fiber nio go tokio)
conn_counts=(100 1000)
placements=(pinned unpinned)
out="$here/.build-echo"

log() { echo "$@" >&2; }
die() { log "run.sh: $*"; exit 2; }

[[ "$secs" =~ ^[0-9]+([.][0-9]+)?$ ]] && [ "$secs" != 0 ] || die "SECONDS must be a positive number, got '$secs'"
[[ "$size" =~ ^[1-9][0-9]*$ ]] || die "SIZE must be a positive integer, got '$size'"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$runs'"
if [ "$smoke" = 1 ]; then
    log "ECHO_SMOKE=1: a quick check, $runs run(s); the figures are not for publishing."
elif [ "$runs" -lt 5 ]; then
    die "RUNS must be at least 5 (got $runs): fewer give medians that swing as much as the gaps between servers. For a quick check that is not for publishing, set ECHO_SMOKE=1."
fi
command -v taskset >/dev/null || die "taskset (util-linux) is needed for the pinned placement"
taskset -c "$server_cpu" true 2>/dev/null && taskset -c "$loadgen_cpu" true 2>/dev/null \
    || die "cannot pin to CPUs $server_cpu and $loadgen_cpu (ECHO_SERVER_CPU / ECHO_LOADGEN_CPU)"
[ "$server_cpu" != "$loadgen_cpu" ] || die "the server and the load generator must be pinned to different CPUs"

mkdir -p "$out/logs"
ulimit -n "$(ulimit -Hn)"
clk_tck="$(getconf CLK_TCK)"

if ! command -v go >/dev/null || [ ! -d /usr/share/cargo/registry ] || ! ls /usr/share/cargo/registry | grep -q '^tokio-[0-9]'; then
    log "installing golang-go and librust-tokio-dev from Debian…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go librust-tokio-dev >/dev/null
fi

log "building the load generator and the Go server…"
(cd "$here" && GOCACHE="$out/gocache" GO111MODULE=off go build -o "$out/loadgen" loadgen/main.go)
(cd "$here" && GOCACHE="$out/gocache" GO111MODULE=off go build -o "$out/go-echo" go-server/main.go)

log "building the Tokio server (offline, Debian's crates)…"
. "$root/Benchmarks/cargo-offline.sh"
cargo_offline_home "$out/cargo-home"
(cd "$here/tokio-server" && CARGO_HOME="$out/cargo-home" CARGO_TARGET_DIR="$out/cargo-target" cargo build --release -q)
tokio_bin="$out/cargo-target/release/tokio-echo"

log "building the SwiftNIO server…"
nio_build=(swift build -c release --package-path "$here/nio-server" --scratch-path "$out/nio")
"${nio_build[@]}" >/dev/null
nio_bin="$("${nio_build[@]}" --show-bin-path)/nio-echo"

log "building Spindle's echo server (scratch path $scratch)…"
spindle_build=(swift build -c release --package-path "$root" --scratch-path "$scratch")
"${spindle_build[@]}" --product echo-server >/dev/null
spindle_bin="$("${spindle_build[@]}" --show-bin-path)/echo-server"

for bin in "$out/loadgen" "$out/go-echo" "$tokio_bin" "$nio_bin" "$spindle_bin"; do
    [ -x "$bin" ] || die "missing binary $bin"
done

# ---- one measurement ---------------------------------------------------------------------

port=7400
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# State letter of a process (R, S, Z…), empty once it is gone.
proc_state() { sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true; }
alive() { local s; s="$(proc_state "$1")"; [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }

start_server() { # placement server logfile → $server_pid listening on $port; fails if it does not
    local pin=()
    [ "$1" = pinned ] && pin=(taskset -c "$server_cpu")
    port=$((port + 1))
    while port_busy "$port"; do port=$((port + 1)); done
    local cmd
    case "$2" in
        spindle-async) cmd=("$spindle_bin" async "127.0.0.1:$port") ;;
        spindle-fiber) cmd=("$spindle_bin" fiber "127.0.0.1:$port") ;;
        nio) cmd=("$nio_bin" 127.0.0.1 "$port" "$("${pin[@]}" nproc)") ;;
        go) cmd=("$out/go-echo" -addr "127.0.0.1:$port") ;;
        tokio) cmd=("$tokio_bin" "127.0.0.1:$port") ;;
    esac
    # taskset execs the server, so $! is the server's own pid either way.
    "${pin[@]}" "${cmd[@]}" >"$3" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        port_busy "$port" && return 0
        alive "$server_pid" || break
        sleep 0.05
    done
    return 1
}

stop_server() { # SIGTERM, then SIGKILL after 5 s
    kill -TERM "$server_pid" 2>/dev/null || true
    (sleep 5; kill -KILL "$server_pid" 2>/dev/null) &
    local watchdog=$!
    wait "$server_pid" 2>/dev/null || true
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
}

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
results="$out/results-$stamp.txt"
: >"$results"

measure() { # round placement server conns
    local round=$1 placement=$2 server=$3 conns=$4 line status=ok threads=NA
    local tag="run=$round placement=$placement server=$server conns=$conns"
    local slog="$out/logs/$stamp-$round-$placement-$server-$conns.log"
    local pin=()
    [ "$placement" = pinned ] && pin=(taskset -c "$loadgen_cpu")
    if ! start_server "$placement" "$server" "$slog"; then
        log "  $server ($placement) did not start; see $slog"
        stop_server
        echo "$tag status=nostart" | tee -a "$results" >&2
        return
    fi
    if ! line="$("${pin[@]}" "$out/loadgen" -addr "127.0.0.1:$port" -c "$conns" -size "$size" \
        -d "${secs}s" -warmup "${warmup}s" -pid "$server_pid" -clk-tck "$clk_tck")"; then
        status=loadgen-failed
    fi
    threads="$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$server_pid/status" 2>/dev/null || true)"
    alive "$server_pid" || status=died
    stop_server
    # Spindle's server prints its thread-hop statistics on shutdown: keep them in the raw line.
    local extra=""
    case "$server" in spindle-*) extra="$(tail -n 1 "$slog" | sed -n 's/^echo-server: //p' | tr ' ' '_')" ;; esac
    echo "$tag status=$status threads=${threads:-NA} $line${extra:+ spindle=$extra}" | tee -a "$results" >&2
}

# ---- the rounds --------------------------------------------------------------------------

# How busy the machine is with other work, over one second now (the load average would
# still count the builds above): % of all CPUs not idle, from /proc/stat.
cpu_busy() {
    local a b
    a="$(head -n 1 /proc/stat)"; sleep 1; b="$(head -n 1 /proc/stat)"
    printf '%s\n%s\n' "$a" "$b" | awk '{ t = 0; for (i = 2; i <= NF; i++) t += $i; idle = $5 + $6 }
        NR == 1 { t0 = t; i0 = idle } NR == 2 { printf "%.0f", 100 * (1 - (idle - i0) / (t - t0)) }'
}
busy_before="$(cpu_busy)"
log "machine busy before the runs: ${busy_before}% of all CPUs (anything else running skews the figures)"
[ "$busy_before" -le 10 ] || log "warning: the machine is not idle; the table will say so"
for round in $(seq "$runs"); do
    order=("${servers[@]}")
    places=("${placements[@]}")
    if [ $((round % 2)) = 0 ]; then
        order=(); for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
        places=(); for ((i = ${#placements[@]} - 1; i >= 0; i--)); do places+=("${placements[i]}"); done
    fi
    log "round $round/$runs: ${order[*]}; ${places[*]} first"
    for conns in "${conn_counts[@]}"; do
        for server in "${order[@]}"; do
            for placement in "${places[@]}"; do
                measure "$round" "$placement" "$server" "$conns"
            done
        done
    done
done
log "raw lines: $results"

# ---- the table ---------------------------------------------------------------------------

rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
echo "Echo servers, $(date -u +%Y-%m-%d), Spindle $rev: ${size}-byte messages, ${secs} s per run after a ${warmup} s warm-up, $runs interleaved run(s), median over runs (errors: sum over runs); $(nproc) CPUs, pinned = server on CPU $server_cpu and load generator on CPU $loadgen_cpu, unpinned = both free."
if [ "$smoke" = 1 ]; then
    echo
    echo "**Smoke run (ECHO_SMOKE=1): not for publishing.**"
fi
if [ "$busy_before" -gt 10 ]; then
    echo
    echo "**The machine was not idle: other work used ${busy_before}% of all CPUs just before the runs, and may have taken CPU from these figures.**"
fi
echo
awk -v order="${placements[*]}|${servers[*]}|${conn_counts[*]}" '
function med(s,    a, n, i, j, t) {
    n = split(s, a, " ")
    if (n == 0) return "NA"
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(s,    a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function hi(s,    a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
function num(x) { return x ~ /^[0-9.]+$/ }
{
    delete f
    for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
    key = f["placement"] SUBSEP f["server"] SUBSEP f["conns"]
    runs[key]++
    if (f["status"] != "ok") bad[key] = bad[key] " run " f["run"] ": " f["status"] ";"
    if (f["status"] == "nostart") next
    err[key] += f["errors"]
    if (num(f["rps"])) rps[key] = rps[key] " " f["rps"]
    if (num(f["p50_us"])) p50[key] = p50[key] " " f["p50_us"]
    if (num(f["p99_us"])) p99[key] = p99[key] " " f["p99_us"]
    if (num(f["srv_cpu_us_per_req"])) cpu[key] = cpu[key] " " f["srv_cpu_us_per_req"]
    if (num(f["srv_cpu_pct"])) pct[key] = pct[key] " " f["srv_cpu_pct"]
    if (num(f["lg_cpu_pct"])) lg[key] = lg[key] " " f["lg_cpu_pct"]
}
END {
    split(order, o, "|"); np = split(o[1], P, " "); ns = split(o[2], S, " "); nc = split(o[3], C, " ")
    print "| placement | server | conns | req/s (median) | req/s (min–max) | p50 µs | p99 µs | errors | server CPU µs/req | server CPU % | loadgen CPU % |"
    print "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for (p = 1; p <= np; p++) for (c = 1; c <= nc; c++) for (s = 1; s <= ns; s++) {
        key = P[p] SUBSEP S[s] SUBSEP C[c]
        if (!(key in runs)) continue
        r = rps[key] == "" ? "NA" : sprintf("%.0f", med(rps[key]))
        range = rps[key] == "" ? "NA" : sprintf("%.0f–%.0f", lo(rps[key]), hi(rps[key]))
        a = p50[key] == "" ? "NA" : sprintf("%.0f", med(p50[key]))
        b = p99[key] == "" ? "NA" : sprintf("%.0f", med(p99[key]))
        u = cpu[key] == "" ? "NA" : sprintf("%.1f", med(cpu[key]))
        q = pct[key] == "" ? "NA" : sprintf("%.0f", med(pct[key]))
        g = lg[key] == "" ? "NA" : sprintf("%.0f", med(lg[key]))
        printf "| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s |\n", P[p], S[s], C[c], r, range, a, b, err[key] + 0, u, q, g
        if (key in bad) notes = notes sprintf("- %s %s %s:%s\n", P[p], S[s], C[c], bad[key])
    }
    if (notes != "") { print ""; print "Runs that did not complete cleanly (their figures, if any, are in the medians above):"; printf "%s", notes }
}' "$results"

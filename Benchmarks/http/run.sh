#!/usr/bin/env bash
# HTTP/1.1 comparison: Spindle's HTTP client and server (SpindleHTTP: `spindle fetch`,
# `http-server`) beside peers written for this folder. Never run by CI.
#
#   Benchmarks/http/run.sh [OUTDIR]                  (default /tmp/spindle-http-bench)
#
# Part A, "1000 GETs in one client thread": one Go net/http server (go-server, GOMAXPROCS=1,
# pinned to $HTTP_SERVER_CPU) answers COUNT concurrent GETs of `/` from each client in turn,
# pinned to $HTTP_CLIENT_CPU: `spindle fetch --mode async --workers 1`, `spindle fetch
# --mode fiber --workers 1`, aiohttp_fetch.py as the defining document writes it (default
# connector: at most 100 connections), the same with TCPConnector(limit=0), and go-client
# with GOMAXPROCS=1. Each client prints `RESULT wall_ms= rps= p50_ms= p99_ms= peak_rss_kib=
# errors=` as its last line (Spindle's adds rss_per_request_bytes=); the client's CPU time
# (user + system, from bash's `times` over it, so every thread it had) is measured here.
# RUNS_A runs, interleaved (odd runs in order, even runs reversed); medians.
#
# Part B, "servers under wrk": each server pinned to $HTTP_SERVER_CPU with one thread of
# work (Spindle's --workers 1, Go's GOMAXPROCS=1, hyper's current-thread runtime, NIO's and
# Hummingbird's one event loop), wrk pinned to $HTTP_CLIENT_CPU: `wrk -t1 -cC -dSECS
# --latency` with C = 100 and 1000, paths `/` (13 bytes) and `/4k` (4096 bytes). Every
# measurement starts a fresh server, warms it with WARMUP s of the same load, then
# measures. Recorded: requests/s, p50 and p99 latency (wrk's --latency percentiles),
# errors (non-2xx/3xx answers plus socket connect/read/write/timeout errors), and the
# server's CPU per request (utime + stime from /proc/PID/stat just before and just after
# the measured wrk run, over the requests wrk completed). RUNS_B rounds, each measuring
# every (server, connections, path) once, the server order reversed every other round;
# medians (errors summed).
#
# Environment:
#   HTTP_RUNS_A (5), HTTP_RUNS_B (3), HTTP_COUNT (1000), HTTP_WRK_SECONDS (10),
#   HTTP_WRK_WARMUP (1), HTTP_SERVER_CPU (1), HTTP_CLIENT_CPU (0)
#   HTTP_PARTS      "a b" (default), "a" or "b"
#   HTTP_CLIENTS, HTTP_SERVERS  a subset, space-separated (default: every one, in the order
#                   of the tables: spindle-async spindle-fiber fetchmany-async fetchmany-fiber aiohttp
#                   aiohttp-limit0 go;
#                   spindle-async spindle-fiber go hyper nio hummingbird)
#   HTTP_SMOKE=1    one run/round, COUNT 100, 2 s wrk runs: checks the script end to end;
#                   the tables say it is not for publishing
#   HTTP_NO_INSTALL=1  install nothing (by default, missing peers are installed: apt-get
#                   golang-go wrk librust-hyper-dev librust-tokio-dev [cargo], pip aiohttp)
#   SPINDLE_SCRATCH the --scratch-path of Spindle's build (default $root/.build)
#   SPINDLE_BUILD=0 do not build Spindle; use the binaries already in $SPINDLE_SCRATCH/release
#   HTTP_SWIFT_PEERS_SCRATCH  scratch path of the NIO/Hummingbird build (OUTDIR/swift-peers)
# A peer that cannot be installed, built or started is skipped with its reason, never the
# whole run. Progress and raw lines go to stderr; the two Markdown tables to stdout and to
# OUTDIR/tables-STAMP.md; raw lines to OUTDIR/results-STAMP-{clients,servers}.txt; each
# process's output to OUTDIR/logs/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-/tmp/spindle-http-bench}"
smoke="${HTTP_SMOKE:-0}"
runs_a="${HTTP_RUNS_A:-5}"
runs_b="${HTTP_RUNS_B:-3}"
count="${HTTP_COUNT:-1000}"
wrk_secs="${HTTP_WRK_SECONDS:-10}"
warmup="${HTTP_WRK_WARMUP:-1}"
if [ "$smoke" = 1 ]; then
    runs_a="${HTTP_RUNS_A:-1}"; runs_b="${HTTP_RUNS_B:-1}"; count="${HTTP_COUNT:-100}"; wrk_secs="${HTTP_WRK_SECONDS:-2}"
fi
parts="${HTTP_PARTS:-a b}"
server_cpu="${HTTP_SERVER_CPU:-1}"
client_cpu="${HTTP_CLIENT_CPU:-0}"
scratch="${SPINDLE_SCRATCH:-$root/.build}"
swift_peers_scratch="${HTTP_SWIFT_PEERS_SCRATCH:-}"
all_clients=(spindle-async spindle-fiber fetchmany-async fetchmany-fiber aiohttp aiohttp-limit0 go)
all_servers=(spindle-async spindle-fiber go hyper nio hummingbird)
read -r -a clients <<<"${HTTP_CLIENTS:-${all_clients[*]}}"
read -r -a servers <<<"${HTTP_SERVERS:-${all_servers[*]}}"
conn_counts=(100 1000)
paths=(/ /4k)

log() { echo "$@" >&2; }
die() { log "run.sh: $*"; exit 2; }
posint() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
posint "$runs_a" && posint "$runs_b" && posint "$count" || die "HTTP_RUNS_A, HTTP_RUNS_B and HTTP_COUNT must be positive integers"
for c in "${clients[@]}"; do [[ " ${all_clients[*]} " == *" $c "* ]] || die "unknown client '$c' in HTTP_CLIENTS (known: ${all_clients[*]})"; done
for c in "${servers[@]}"; do [[ " ${all_servers[*]} " == *" $c "* ]] || die "unknown server '$c' in HTTP_SERVERS (known: ${all_servers[*]})"; done
posint "$wrk_secs" || die "HTTP_WRK_SECONDS must be a positive integer"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "HTTP_WRK_WARMUP must be a whole number of seconds"
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin servers and clients"
taskset -c "$server_cpu" true 2>/dev/null && taskset -c "$client_cpu" true 2>/dev/null \
    || die "cannot pin to CPUs $server_cpu and $client_cpu (HTTP_SERVER_CPU / HTTP_CLIENT_CPU)"
[ "$server_cpu" != "$client_cpu" ] || die "the server and the client must be pinned to different CPUs"
[ "$smoke" = 1 ] && log "HTTP_SMOKE=1: a quick check ($runs_a client run(s), $runs_b server round(s), COUNT $count, ${wrk_secs} s wrk runs); the figures are not for publishing."

mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"
[ -n "$swift_peers_scratch" ] || swift_peers_scratch="$out/swift-peers"
ulimit -n "$(ulimit -Hn)"
clk_tck="$(getconf CLK_TCK)"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
have() { command -v "$1" >/dev/null 2>&1; }

# ---- install what is missing --------------------------------------------------------------

. "$root/Benchmarks/cargo-offline.sh"
have_crate() { ls "$debian_crates" 2>/dev/null | grep -q "^$1-$2"; }
if [ "${HTTP_NO_INSTALL:-0}" != 1 ]; then
    pkgs=()
    have go || pkgs+=(golang-go)
    have wrk || pkgs+=(wrk)
    have_crate hyper 0.14 || pkgs+=(librust-hyper-dev)
    have_crate tokio 1. || pkgs+=(librust-tokio-dev)
    have cargo || pkgs+=(cargo)
    if [ ${#pkgs[@]} -gt 0 ]; then
        log "installing from Debian: ${pkgs[*]}…"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"; } \
            >"$out/logs/apt-$stamp.log" 2>&1 || log "apt-get failed (see $out/logs/apt-$stamp.log); peers it should have brought will be skipped"
    fi
    if have python3 && ! python3 -c 'import aiohttp' 2>/dev/null; then
        log "installing aiohttp from PyPI…"
        python3 -m pip install -q aiohttp >"$out/logs/pip-$stamp.log" 2>&1 \
            || log "pip install aiohttp failed (see $out/logs/pip-$stamp.log); the aiohttp clients will be skipped"
    fi
fi

# ---- build --------------------------------------------------------------------------------

# skipped[NAME] = why NAME (a client "c:…" or server "s:…") is not measured.
declare -A skipped=()
skip() { skipped[$1]="$2"; log "skipping $1: $2"; }

go_ok=0
if ! have go; then
    skip c:go "no go command (golang-go)"; skip s:go "no go command (golang-go)"
else
    log "building the Go server and client…"
    if (cd "$here" && GOCACHE="$out/gocache" GO111MODULE=off nice -n 19 go build -o "$out/go-server" go-server/main.go \
        && GOCACHE="$out/gocache" GO111MODULE=off nice -n 19 go build -o "$out/go-client" go-client/main.go) >"$out/logs/build-go.log" 2>&1; then
        go_ok=1
    else
        skip c:go "go build failed (see $out/logs/build-go.log)"; skip s:go "go build failed (see $out/logs/build-go.log)"
    fi
fi

if ! have cargo; then skip s:hyper "no cargo command"
elif ! have_crate hyper 0.14 || ! have_crate tokio 1.; then skip s:hyper "no hyper 0.14 / Tokio 1 in $debian_crates (librust-hyper-dev, librust-tokio-dev)"
else
    log "building the hyper server (offline, Debian's crates)…"
    cargo_offline_home "$out/cargo-home"
    # Built from a copy so that Cargo.lock lands in OUTDIR, not in the source folder.
    mkdir -p "$out/hyper-src"
    rm -rf "$out/hyper-src/src"
    cp -p "$here/hyper-server/Cargo.toml" "$out/hyper-src/"
    cp -pr "$here/hyper-server/src" "$out/hyper-src/"
    if (cd "$out/hyper-src" && CARGO_HOME="$out/cargo-home" CARGO_TARGET_DIR="$out/cargo-target" nice -n 19 cargo build --release -q) >"$out/logs/build-hyper.log" 2>&1; then
        cp "$out/cargo-target/release/hyper-server" "$out/hyper-server"
        log "  hyper $(sed -n '/^name = "hyper"$/{n;s/^version = "\(.*\)"$/\1/p}' "$out/hyper-src/Cargo.lock")"
    else
        skip s:hyper "cargo build failed (see $out/logs/build-hyper.log)"
    fi
fi

if ! have swift; then skip s:nio "no swift command"; skip s:hummingbird "no swift command"
else
    log "building the SwiftNIO and Hummingbird servers (scratch path $swift_peers_scratch)…"
    peers_build=(nice -n 19 swift build -c release --package-path "$here/swift-peers" --scratch-path "$swift_peers_scratch")
    if "${peers_build[@]}" >"$out/logs/build-swift-peers.log" 2>&1; then
        swift_peers_bin="$("${peers_build[@]}" --show-bin-path)"
    else
        skip s:nio "swift build failed (see $out/logs/build-swift-peers.log)"
        skip s:hummingbird "swift build failed (see $out/logs/build-swift-peers.log)"
    fi
fi

if ! have python3; then skip c:aiohttp "no python3"; skip c:aiohttp-limit0 "no python3"
elif ! python3 -c 'import aiohttp' 2>/dev/null; then skip c:aiohttp "aiohttp is not importable"; skip c:aiohttp-limit0 "aiohttp is not importable"
fi

spindle_bin_dir="$scratch/release"
if [ "${SPINDLE_BUILD:-1}" = 0 ]; then
    log "SPINDLE_BUILD=0: using the Spindle binaries in $spindle_bin_dir as they are"
elif ! have swift; then
    log "no swift command: using the Spindle binaries in $spindle_bin_dir, if any"
else
    log "building Spindle's spindle and http-server (scratch path $scratch)…"
    spindle_build=(swift build -c release --package-path "$root" --scratch-path "$scratch")
    # A failed build skips its entries rather than measure an older binary left in place.
    for product in spindle http-server FetchMany; do
        kind=c; prefix=spindle; [ "$product" = http-server ] && kind=s; [ "$product" = FetchMany ] && prefix=fetchmany
        if ! "${spindle_build[@]}" --product "$product" >"$out/logs/build-spindle-$product.log" 2>&1; then
            for mode in async fiber; do skip "$kind:$prefix-$mode" "building Spindle's $product failed (see $out/logs/build-spindle-$product.log)"; done
        fi
    done
    spindle_bin_dir="$("${spindle_build[@]}" --show-bin-path 2>/dev/null || echo "$scratch/release")"
fi
for mode in async fiber; do
    [ -n "${skipped[c:spindle-$mode]:-}" ] || [ -x "$spindle_bin_dir/spindle" ] || skip "c:spindle-$mode" "no $spindle_bin_dir/spindle"
    [ -n "${skipped[s:spindle-$mode]:-}" ] || [ -x "$spindle_bin_dir/http-server" ] || skip "s:spindle-$mode" "no $spindle_bin_dir/http-server"
    [ -n "${skipped[c:fetchmany-$mode]:-}" ] || [ -x "$spindle_bin_dir/FetchMany" ] || skip "c:fetchmany-$mode" "no $spindle_bin_dir/FetchMany"
done
if [ "$go_ok" = 0 ]; then
    case " $parts " in *" a "*) log "part A needs the Go server: it is skipped"; parts="${parts//a/}" ;; esac
fi
have wrk || { case " $parts " in *" b "*) log "part B needs wrk (Debian's wrk): it is skipped"; parts="${parts//b/}" ;; esac; }

# ---- processes ----------------------------------------------------------------------------

port=7500
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# State letter of a process (R, S, Z…), empty once it is gone.
proc_state() { sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$1/stat" 2>/dev/null || true; }
alive() { local s; s="$(proc_state "$1")"; [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted
# after the parenthesised command name, which may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }

start_server() { # NAME LOGFILE → $server_pid listening on 127.0.0.1:$port, or status 1
    port=$((port + 1))
    while port_busy "$port"; do port=$((port + 1)); done
    local cmd
    case "$1" in
        spindle-async) cmd=("$spindle_bin_dir/http-server" --port "$port" --mode async --workers 1) ;;
        spindle-fiber) cmd=("$spindle_bin_dir/http-server" --port "$port" --mode fiber --workers 1) ;;
        go) cmd=(env GOMAXPROCS=1 "$out/go-server" -addr "127.0.0.1:$port") ;;
        hyper) cmd=("$out/hyper-server" --port "$port") ;;
        nio) cmd=("$swift_peers_bin/nio-server" --port "$port" --threads 1) ;;
        hummingbird) cmd=("$swift_peers_bin/hb-server" --port "$port" --threads 1) ;;
    esac
    # taskset and env exec the server, so $! is the server's own pid.
    taskset -c "$server_cpu" "${cmd[@]}" >"$2" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        port_busy "$port" && return 0
        alive "$server_pid" || break
        sleep 0.05
    done
    return 1
}

stop_server() { # SIGTERM, then SIGKILL after 5 s; reaps it
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$server_pid" || break; sleep 0.05; done
    alive "$server_pid" && kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
server_pid=""
trap '[ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null; true' EXIT

# How busy the machine is with other work, over one second now: % of all CPUs not idle.
cpu_busy() {
    local a b
    a="$(head -n 1 /proc/stat)"; sleep 1; b="$(head -n 1 /proc/stat)"
    printf '%s\n%s\n' "$a" "$b" | awk '{ t = 0; for (i = 2; i <= NF; i++) t += $i; idle = $5 + $6 }
        NR == 1 { t0 = t; i0 = idle } NR == 2 { printf "%.0f", 100 * (1 - (idle - i0) / (t - t0)) }'
}
# 1m2.345s → 62345 (ms)
ms_of() { echo "$1" | awk -F'[ms]' '{ printf "%.0f", ($1 * 60 + $2) * 1000 }'; }

busy_before="$(cpu_busy)"
log "machine busy before the runs: ${busy_before}% of all CPUs (anything else running skews the figures)"
[ "$busy_before" -le 10 ] || log "warning: the machine is not idle; the tables will say so"

# ---- part A: one client, COUNT concurrent GETs ----------------------------------------------

results_a="$out/results-$stamp-clients.txt"
results_b="$out/results-$stamp-servers.txt"
: >"$results_a"; : >"$results_b"

run_client() { # round name url
    local round=$1 name=$2 url=$3 tag="run=$1 client=$2" base="$out/logs/$stamp-a-$1-$2" cmd
    case "$name" in
        spindle-async) cmd=("$spindle_bin_dir/spindle" fetch --count "$count" --mode async --workers 1 "$url") ;;
        spindle-fiber) cmd=("$spindle_bin_dir/spindle" fetch --count "$count" --mode fiber --workers 1 "$url") ;;
        fetchmany-async) cmd=("$spindle_bin_dir/FetchMany" "$count" "$url") ;;
        fetchmany-fiber) cmd=("$spindle_bin_dir/FetchMany" "$count" "$url" --fiber) ;;
        aiohttp) cmd=(python3 "$here/aiohttp_fetch.py" --count "$count" "$url") ;;
        aiohttp-limit0) cmd=(python3 "$here/aiohttp_fetch.py" --count "$count" --limit-zero "$url") ;;
        go) cmd=(env GOMAXPROCS=1 "$out/go-client" -count "$count" -url "$url") ;;
    esac
    # `times` in this subshell reports its children's user and system time: the client's
    # (timeout waits for it, so its time is counted through timeout).
    local t rc line status=ok
    t="$( { taskset -c "$client_cpu" timeout -k 5 120 "${cmd[@]}" >"$base.out" 2>"$base.err"; echo "rc=$?"; times; } )"
    rc="$(echo "$t" | sed -n 's/^rc=//p')"
    local ut st
    read -r ut st < <(echo "$t" | tail -n 1)
    line="$(grep '^RESULT ' "$base.out" | tail -n 1 | sed 's/^RESULT //')" || true
    [ "$rc" = 0 ] || status="exit-$rc"
    [ -n "$line" ] || { [ "$status" = ok ] && status=no-result; }
    alive "$server_pid" || status="server-died"
    [ "$status" = ok ] || log "  $name: $status; its output is in $base.out and $base.err"
    echo "$tag status=$status cpu_ms=$(( $(ms_of "$ut") + $(ms_of "$st") )) $line" | tee -a "$results_a" >&2
}

if [[ " $parts " == *" a "* ]]; then
    log "part A: $count concurrent GETs per client, $runs_a interleaved run(s); Go server on CPU $server_cpu, clients on CPU $client_cpu"
    if start_server go "$out/logs/$stamp-a-go-server.log"; then
        url="http://127.0.0.1:$port/"
        # One unmeasured run first, so the server's first connections are not anyone's.
        taskset -c "$client_cpu" env GOMAXPROCS=1 "$out/go-client" -count "$count" -url "$url" >/dev/null 2>&1 || true
        active=()
        for c in "${clients[@]}"; do [ -z "${skipped[c:$c]:-}" ] && active+=("$c"); done
        for round in $(seq "$runs_a"); do
            order=("${active[@]}")
            if [ $((round % 2)) = 0 ]; then order=(); for ((i = ${#active[@]} - 1; i >= 0; i--)); do order+=("${active[i]}"); done; fi
            log "run $round/$runs_a: ${order[*]}"
            for c in "${order[@]}"; do run_client "$round" "$c" "$url"; done
        done
        stop_server
    else
        log "the Go server did not start (see $out/logs/$stamp-a-go-server.log): part A is skipped"
        stop_server
        parts="${parts//a/}"
    fi
    log "raw lines: $results_a"
fi

# ---- part B: servers under wrk --------------------------------------------------------------

# wrk latency "810.00us" / "3.26ms" / "1.45s" / "2.00m" → ms
wrk_ms() { echo "$1" | awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v = v; else if ($1 ~ /m$/) v *= 60000; else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'; }

measure_server() { # round server conns path
    local round=$1 server=$2 conns=$3 path=$4 status=ok
    local tag="run=$round server=$server conns=$conns path=$path"
    local base="$out/logs/$stamp-b-$round-$server-$conns-${path//\//_}"
    if ! start_server "$server" "$base.server.log"; then
        log "  $server did not start; see $base.server.log"
        stop_server
        echo "$tag status=nostart" | tee -a "$results_b" >&2
        return
    fi
    local url="http://127.0.0.1:$port$path"
    if [ "$warmup" -gt 0 ]; then
        taskset -c "$client_cpu" timeout -k 5 $((warmup + 30)) wrk -t1 -c"$conns" -d"${warmup}s" "$url" >"$base.warmup.txt" 2>&1 || true
    fi
    local c0 c1
    c0="$(cpu_ticks "$server_pid")"
    taskset -c "$client_cpu" timeout -k 5 $((wrk_secs + 30)) wrk -t1 -c"$conns" -d"${wrk_secs}s" --latency "$url" >"$base.wrk.txt" 2>&1 || status=wrk-failed
    c1="$(cpu_ticks "$server_pid")"
    alive "$server_pid" || status=died
    stop_server
    local w="$base.wrk.txt" reqs rps p50 p99 sock non2xx
    reqs="$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$w")"
    rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$w")"
    p50="$(awk '$1 == "50%" { print $2 }' "$w")"
    p99="$(awk '$1 == "99%" { print $2 }' "$w")"
    sock="$(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$w" | awk '{ print $1 + $2 + $3 + $4 }')"
    non2xx="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$w")"
    [ -n "$reqs" ] && [ -n "$rps" ] || { [ "$status" = ok ] && status=no-output; }
    local line="requests=${reqs:-NA} rps=${rps:-NA} p50_ms=$([ -n "$p50" ] && wrk_ms "$p50" || echo NA) p99_ms=$([ -n "$p99" ] && wrk_ms "$p99" || echo NA)"
    line="$line errors=$(( ${sock:-0} + ${non2xx:-0} )) socket_errors=${sock:-0} non2xx=${non2xx:-0}"
    if [ -n "$c0" ] && [ -n "$c1" ] && [ -n "$reqs" ] && [ "$reqs" -gt 0 ]; then
        line="$line srv_cpu_us_per_req=$(awk -v d=$((c1 - c0)) -v t="$clk_tck" -v n="$reqs" 'BEGIN { printf "%.2f", d / t * 1e6 / n }')"
        line="$line srv_cpu_pct=$(awk -v d=$((c1 - c0)) -v t="$clk_tck" -v s="$wrk_secs" 'BEGIN { printf "%.0f", 100 * d / t / s }')"
    fi
    echo "$tag status=$status $line" | tee -a "$results_b" >&2
}

if [[ " $parts " == *" b "* ]]; then
    active=()
    for s in "${servers[@]}"; do [ -z "${skipped[s:$s]:-}" ] && active+=("$s"); done
    log "part B: ${active[*]} under wrk -t1 (${wrk_secs} s after ${warmup} s warm-up), $runs_b round(s); servers on CPU $server_cpu, wrk on CPU $client_cpu"
    for round in $(seq "$runs_b"); do
        order=("${active[@]}")
        if [ $((round % 2)) = 0 ]; then order=(); for ((i = ${#active[@]} - 1; i >= 0; i--)); do order+=("${active[i]}"); done; fi
        log "round $round/$runs_b: ${order[*]}"
        for path in "${paths[@]}"; do
            for conns in "${conn_counts[@]}"; do
                for s in "${order[@]}"; do measure_server "$round" "$s" "$conns" "$path"; done
            done
        done
    done
    log "raw lines: $results_b"
fi

# ---- the tables -----------------------------------------------------------------------------

awk_lib='
function med(s,    a, n, i, j, t) {
    n = split(s, a, " ")
    if (n == 0) return "NA"
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function lo(s,    a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0; return m }
function hi(s,    a, n, i, m) { n = split(s, a, " "); m = a[1] + 0; for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
function num(x) { return x ~ /^[0-9]+([.][0-9]+)?$/ }
function fmt(s, f) { return s == "" ? "NA" : sprintf(f, med(s)) }
function parse(    i, k, v) {
    delete f
    for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
}'
skipped_list() { # c|s → "name: reason" lines
    local k
    for k in "${!skipped[@]}"; do
        if [[ "$k" == "$1:"* ]]; then echo "- ${k#*:}: ${skipped[$k]}"; fi
    done | sort
}

rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$root" diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
tables="$out/tables-$stamp.md"
{
if [ "$smoke" = 1 ]; then echo "**Smoke run (HTTP_SMOKE=1): not for publishing.**"; echo; fi
if [ "$busy_before" -gt 10 ]; then
    echo "**The machine was not idle: other work used ${busy_before}% of all CPUs just before the runs, and may have taken CPU from these figures.**"; echo
fi
if [ -s "$results_a" ]; then
    echo "### $count concurrent GETs from one client thread"
    echo
    echo "$(date -u +%Y-%m-%d), Spindle $rev: each client fetches \`/\` (13 bytes) $count times, all at once, from a Go net/http server (GOMAXPROCS=1) on CPU $server_cpu; the client on CPU $client_cpu; median of $runs_a interleaved run(s) (errors: sum). CPU = the client's user + system time. Ratios are a client's median over aiohttp (limit=0)'s and over Go's: below 1 is less."
    echo
    awk -v order="${clients[*]}" "$awk_lib"'
    {
        parse(); key = f["client"]; runs[key]++
        if (f["status"] != "ok") bad[key] = bad[key] " run " f["run"] ": " f["status"] ";"
        err[key] += f["errors"]
        if (num(f["wall_ms"])) wall[key] = wall[key] " " f["wall_ms"]
        if (num(f["rps"])) rps[key] = rps[key] " " f["rps"]
        if (num(f["p50_ms"])) p50[key] = p50[key] " " f["p50_ms"]
        if (num(f["p99_ms"])) p99[key] = p99[key] " " f["p99_ms"]
        if (num(f["peak_rss_kib"])) rss[key] = rss[key] " " f["peak_rss_kib"] / 1024
        if (num(f["cpu_ms"]) && num(f["wall_ms"])) cpu[key] = cpu[key] " " f["cpu_ms"]
        if (num(f["rss_per_request_bytes"])) rpr[key] = rpr[key] " " f["rss_per_request_bytes"]
    }
    function ratio(a, b) { return (a == "" || b == "" || med(b) == 0) ? "NA" : sprintf("%.2f", med(a) / med(b)) }
    END {
        n = split(order, C, " "); base0 = "aiohttp-limit0"; baseg = "go"
        print "| client | wall ms | req/s | p50 ms | p99 ms | peak RSS MiB | CPU ms | errors | wall vs aiohttp (limit=0) | wall vs Go | RSS vs aiohttp (limit=0) | RSS vs Go | CPU vs aiohttp (limit=0) | CPU vs Go |"
        print "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        for (i = 1; i <= n; i++) {
            k = C[i]; if (!(k in runs)) continue
            name = k == "aiohttp" ? "aiohttp (default connector, limit=100)" : k == "aiohttp-limit0" ? "aiohttp (limit=0)" : k == "go" ? "Go net/http (GOMAXPROCS=1)" : k == "spindle-async" ? "spindle fetch --mode async" : k == "spindle-fiber" ? "spindle fetch --mode fiber" : k == "fetchmany-async" ? "Examples/FetchMany (tasks)" : "Examples/FetchMany (fibers)"
            printf "| %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", name, fmt(wall[k], "%.1f"), fmt(rps[k], "%.0f"), fmt(p50[k], "%.1f"), fmt(p99[k], "%.1f"), fmt(rss[k], "%.1f"), fmt(cpu[k], "%.0f"), err[k] + 0,
                ratio(wall[k], wall[base0]), ratio(wall[k], wall[baseg]), ratio(rss[k], rss[base0]), ratio(rss[k], rss[baseg]), ratio(cpu[k], cpu[base0]), ratio(cpu[k], cpu[baseg])
            if (rpr[k] != "") extra = extra sprintf("- %s: RSS per request %s bytes (its own rss_per_request_bytes, median)\n", name, fmt(rpr[k], "%.0f"))
            if (k in bad) notes = notes sprintf("- %s:%s\n", name, bad[k])
        }
        if (extra != "") { print ""; printf "%s", extra }
        if (notes != "") { print ""; print "Runs that did not complete cleanly (their figures, if any, are in the medians above):"; printf "%s", notes }
    }' "$results_a"
    if [ -n "$(skipped_list c)" ]; then echo; echo "Skipped clients:"; skipped_list c; fi
    echo
fi
if [ -s "$results_b" ]; then
    echo "### Servers under wrk"
    echo
    echo "$(date -u +%Y-%m-%d), Spindle $rev: \`wrk -t1 -cC -d${wrk_secs}s --latency\` on CPU $client_cpu after a ${warmup} s warm-up, each server fresh and on CPU $server_cpu with one thread of work; median of $runs_b interleaved round(s) (errors: sum of socket errors and non-2xx answers). Server CPU = its utime + stime over the measured run, per request and as % of one core."
    echo
    awk -v order="${servers[*]}|${conn_counts[*]}|${paths[*]}" "$awk_lib"'
    {
        parse(); key = f["path"] SUBSEP f["conns"] SUBSEP f["server"]; runs[key]++
        if (f["status"] != "ok") bad[key] = bad[key] " round " f["run"] ": " f["status"] ";"
        if (f["status"] == "nostart") next
        err[key] += f["errors"]
        if (num(f["rps"])) rps[key] = rps[key] " " f["rps"]
        if (num(f["p50_ms"])) p50[key] = p50[key] " " f["p50_ms"]
        if (num(f["p99_ms"])) p99[key] = p99[key] " " f["p99_ms"]
        if (num(f["srv_cpu_us_per_req"])) cpu[key] = cpu[key] " " f["srv_cpu_us_per_req"]
        if (num(f["srv_cpu_pct"])) pct[key] = pct[key] " " f["srv_cpu_pct"]
    }
    END {
        split(order, o, "|"); ns = split(o[1], S, " "); nc = split(o[2], C, " "); np = split(o[3], P, " ")
        print "| path | conns | server | req/s (median) | req/s (min–max) | p50 ms | p99 ms | errors | server CPU µs/req | server CPU % |"
        print "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|"
        for (p = 1; p <= np; p++) for (c = 1; c <= nc; c++) for (s = 1; s <= ns; s++) {
            key = P[p] SUBSEP C[c] SUBSEP S[s]; if (!(key in runs)) continue
            range = rps[key] == "" ? "NA" : sprintf("%.0f–%.0f", lo(rps[key]), hi(rps[key]))
            name = S[s] == "go" ? "go (net/http)" : S[s] == "hyper" ? "hyper 0.14" : S[s] == "nio" ? "SwiftNIO (NIOHTTP1)" : S[s] == "hummingbird" ? "Hummingbird 2" : S[s]
            printf "| `%s` | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", P[p], C[c], name, fmt(rps[key], "%.0f"), range, fmt(p50[key], "%.2f"), fmt(p99[key], "%.2f"), err[key] + 0, fmt(cpu[key], "%.2f"), fmt(pct[key], "%.0f")
            if (key in bad) notes = notes sprintf("- %s %s `%s`:%s\n", name, C[c], P[p], bad[key])
        }
        if (notes != "") { print ""; print "Runs that did not complete cleanly (their figures, if any, are in the medians above):"; printf "%s", notes }
    }' "$results_b"
    if [ -n "$(skipped_list s)" ]; then echo; echo "Skipped servers:"; skipped_list s; fi
fi
} | tee "$tables"
log "tables: $tables"

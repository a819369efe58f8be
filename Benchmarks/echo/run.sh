#!/usr/bin/env bash
# Echo-server comparison: the same echo protocol served by Spindle (async tasks and
# fibers), SwiftNIO, Go and Tokio, each driven in turn by one load generator (Go, in its
# own process) with 100 and 1000 concurrent connections. Prints one table of requests/s
# and p50/p99 latency. Peers come from Debian (golang-go, librust-tokio-dev; cargo uses
# Debian's crate directory offline) and the local Swift package mirror (swift-nio).
# Never run by CI.
#
#   Benchmarks/echo/run.sh [SECONDS] [SIZE] [RUNS]
# Each (server, connections) pair runs RUNS times (default 3), servers interleaved so
# machine drift hits them alike; the median run (by requests/s) is reported.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-5}"
size="${2:-64}"
runs="${3:-3}"
out="$here/.build-echo"
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"

log() { echo "$@" >&2; }

if ! command -v go >/dev/null || [ ! -d /usr/share/cargo/registry ] || ! ls /usr/share/cargo/registry | grep -q '^tokio-[0-9]'; then
    log "installing golang-go and librust-tokio-dev from Debian…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go librust-tokio-dev >/dev/null
fi

log "building the load generator and the Go server…"
(cd "$here" && GOCACHE="$out/gocache" GO111MODULE=off go build -o "$out/loadgen" loadgen/main.go)
(cd "$here" && GOCACHE="$out/gocache" GO111MODULE=off go build -o "$out/go-echo" go-server/main.go)

log "building the Tokio server (offline, Debian's crates)…"
mkdir -p "$out/cargo-home"
cat > "$out/cargo-home/config.toml" <<CFG
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
CFG
(cd "$here/tokio-server" && CARGO_HOME="$out/cargo-home" CARGO_TARGET_DIR="$out/cargo-target" cargo build --release -q)
tokio_bin="$out/cargo-target/release/tokio-echo"

log "building the SwiftNIO server…"
swift build -c release --package-path "$here/nio-server" --scratch-path "$out/nio" >/dev/null
nio_bin="$out/nio/release/nio-echo"

log "building Spindle's echo server…"
swift build -c release --package-path "$root" --product echo-server >/dev/null
spindle_bin="$root/.build/release/echo-server"

port=7400
start_server() { # name → pid in $server_pid
    port=$((port + 1))
    case "$1" in
        spindle-async) "$spindle_bin" async "127.0.0.1:$port" >/dev/null 2>&1 & ;;
        spindle-fiber) "$spindle_bin" fiber "127.0.0.1:$port" >/dev/null 2>&1 & ;;
        nio) "$nio_bin" 127.0.0.1 "$port" >/dev/null 2>&1 & ;;
        go) "$out/go-echo" -addr "127.0.0.1:$port" >/dev/null 2>&1 & ;;
        tokio) "$tokio_bin" "127.0.0.1:$port" >/dev/null 2>&1 & ;;
    esac
    server_pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
        sleep 0.05
    done
    log "$1 did not start"; exit 1
}

declare -A results
for conns in 100 1000; do
    for run in $(seq "$runs"); do
        for server in spindle-async spindle-fiber nio go tokio; do
            start_server "$server"
            line=$("$out/loadgen" -addr "127.0.0.1:$port" -c "$conns" -size "$size" -d "${secs}s" -warmup 1s)
            kill -TERM "$server_pid" 2>/dev/null || true
            wait "$server_pid" 2>/dev/null || true
            log "  $server $conns run $run: $line"
            results["$server $conns"]+="$line"$'\n'
        done
    done
done

printf "%-15s %6s %12s %10s %10s %7s\n" server conns "requests/s" "p50 µs" "p99 µs" errors
for conns in 100 1000; do
    for server in spindle-async spindle-fiber nio go tokio; do
        median=$(printf "%s" "${results["$server $conns"]}" | sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }')
        read -r rps p50 p99 errs <<< "$median"
        printf "%-15s %6s %12s %10s %10s %7s\n" "$server" "$conns" "$rps" "$p50" "$p99" "$errs"
    done
done
